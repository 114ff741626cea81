"""Structural validation of writes: 400 OperationOutcomes naming the element (FHIRPath)."""

from __future__ import annotations

import pytest

from tests.helpers import patient, post

OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2026-11-02T09:30:00+07:00",
    "valueQuantity": {
        "value": 12.4,
        "unit": "kg",
        "system": "http://unitsofmeasure.org",
        "code": "kg",
    },
}


def _without(resource, key):
    return {k: v for k, v in resource.items() if k != key}


@pytest.mark.parametrize(
    "resource, code, expression",
    [
        (_without(OBSERVATION, "status"), "required", "Observation.status"),
        (_without(OBSERVATION, "code"), "required", "Observation.code"),
        ({**OBSERVATION, "foo": 1}, "structure", "Observation.foo"),
        (
            {**OBSERVATION, "effectiveDateTime": "2026-13-02"},
            "value",
            "Observation.effectiveDateTime",
        ),
        (
            {**OBSERVATION, "valueQuantity": {"value": "12,4"}},
            "value",
            "Observation.valueQuantity.value",
        ),
        (
            {**OBSERVATION, "component": [{"valueString": "x"}]},
            "required",
            "Observation.component[0].code",
        ),
        ({**OBSERVATION, "subject": "Patient/p1"}, "structure", "Observation.subject"),
        ({**OBSERVATION, "category": {"text": "vital"}}, "structure", "Observation.category"),
        (
            {**OBSERVATION, "valueQuantity": {"value": 12.4, "code": True}},
            "structure",
            "Observation.valueQuantity.code",
        ),
        ({**OBSERVATION, "category": []}, "structure", "Observation.category"),
        ({**OBSERVATION, "identifier": [{}]}, "structure", "Observation.identifier[0]"),
        ({**OBSERVATION, "id": "bad id!"}, "value", "Observation.id"),
        (
            {**OBSERVATION, "contained": [{"resourceType": "Patient", "id": "p" * 65}]},
            "value",
            "Observation.contained[0].id",
        ),
    ],
)
def test_invalid_observation_is_400_with_fhirpath(client, resource, code, expression):
    response = post(client, "/fhir/Observation", resource)
    assert response.status_code == 400
    issues = response.get_json()["issue"]
    assert any(i["code"] == code and i["expression"] == [expression] for i in issues), issues
    assert all(i["severity"] == "error" and i["diagnostics"] for i in issues)


@pytest.mark.parametrize(
    "resource, expression",
    [
        (patient(active="true"), "Patient.active"),
        (patient(multipleBirthInteger="2"), "Patient.multipleBirthInteger"),
        (patient(birthDate="2021-02-30"), "Patient.birthDate"),
        (patient(name=[{"family": ""}]), "Patient.name[0].family"),
        (patient(contact=[{"name": {"family": 7}}]), "Patient.contact[0].name.family"),
        (
            patient(_birthDate={"extension": [{"url": "http://x", "valueCode": ""}]}),
            "Patient.birthDate.extension[0].valueCode",
        ),
    ],
)
def test_wrong_json_types_and_bad_primitives_are_rejected(client, resource, expression):
    response = post(client, "/fhir/Patient", resource)
    assert response.status_code == 400
    assert [expression] in [i.get("expression") for i in response.get_json()["issue"]]


def test_update_with_overlong_id_is_400_not_a_database_error(client):
    rid = "x" * 65
    response = client.put(f"/fhir/Patient/{rid}", json={**patient(), "id": rid})
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["Patient.id"]


def test_choice_with_two_types_is_rejected(client):
    response = post(client, "/fhir/Observation", {**OBSERVATION, "valueString": "12"})
    assert response.status_code == 400
    assert "choice" in response.get_json()["issue"][0]["diagnostics"]


def test_diagnostics_never_show_pydantic_text(client):
    response = post(client, "/fhir/Observation", {**_without(OBSERVATION, "status"), "x": 1})
    text = response.get_data(as_text=True)
    for pydantic_word in ("pydantic", "Field required", "Extra inputs", "errors.pydantic.dev"):
        assert pydantic_word not in text


def test_rejected_write_stores_nothing(client):
    post(client, "/fhir/Observation", _without(OBSERVATION, "status"))
    assert "entry" not in client.get("/fhir/_history").get_json()


def test_valid_observation_with_primitive_extension_is_accepted(client):
    resource = {
        **OBSERVATION,
        "_status": {
            "extension": [{"url": "http://x", "valueString": "a", "_valueString": {"id": "s1"}}]
        },
    }
    assert post(client, "/fhir/Observation", resource).status_code == 201
