"""Writes must meet the ILP profiles that apply to them, with the default settings.

ILP_ENFORCE_PROFILES lists Organization, Location, Patient, Encounter and Observation by
default; ILP_ENFORCE_CLAIMED_PROFILES checks what ``meta.profile`` claims.  Errors refuse
the write with 422; warnings come back with ``Prefer: return=OperationOutcome``.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
from pathlib import Path

import orjson
import pytest

from server import create_app
from server.config import ConfigError
from server.demo.district import DemoSize
from server.services import demo
from server.services.context import ServiceContext
from server.storage.db import create_db_engine
from tests.helpers import FHIR_JSON, post, put

EXAMPLES = Path(__file__).resolve().parents[2] / "profiles" / "examples"
ILP = "https://fhir.ilp-gateway.id/StructureDefinition/"
# Referenced examples first, so that the order reads like a district being set up.
ORDER = ("Organization", "Location", "Practitioner", "Patient", "Encounter", "Observation")


def example(name):
    return orjson.loads((EXAMPLES / f"{name}.json").read_bytes())


def unclaimed(resource):
    """``resource`` without ``meta.profile``: what applies must be found from its content."""
    return {k: v for k, v in copy.deepcopy(resource).items() if k != "meta"}


def grams_weight():
    observation = unclaimed(example("Observation-ilp-obs-body-weight-example"))
    observation["valueQuantity"] = {
        "value": 8600,
        "unit": "g",
        "system": "http://unitsofmeasure.org",
        "code": "g",
    }
    return observation


def heart_rate():
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/ilp-patient-example"},
        "valueQuantity": {
            "value": 92,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }


def issues_of(response):
    return [
        (issue["severity"], issue.get("expression", [None])[0], issue["diagnostics"])
        for issue in response.json["issue"]
    ]


def test_every_ilp_example_is_accepted(ilp_client):
    paths = sorted(EXAMPLES.glob("*.json"), key=lambda p: ORDER.index(p.name.split("-")[0]))
    for path in paths:
        resource = orjson.loads(path.read_bytes())
        response = put(ilp_client, f"/fhir/{resource['resourceType']}/{resource['id']}", resource)
        assert response.status_code == 201, (path.name, response.json)


def test_examples_are_accepted_without_claiming_their_profile(ilp_client):
    for name in (
        "Organization-ilp-puskesmas-example",
        "Location-ilp-wilayah-example",
        "Patient-ilp-patient-bayi-example",
        "Encounter-ilp-encounter-posyandu-example",
        "Observation-ilp-obs-bp-panel-example",
    ):
        resource = unclaimed(example(name))
        response = put(ilp_client, f"/fhir/{resource['resourceType']}/{resource['id']}", resource)
        assert response.status_code == 201, (name, response.json)


def test_patient_without_nik_is_refused_naming_the_rule(ilp_client):
    patient = unclaimed(example("Patient-ilp-patient-example"))
    patient["identifier"] = [i for i in patient["identifier"] if not i["system"].endswith("/nik")]

    response = post(ilp_client, "/fhir/Patient", patient)

    assert response.status_code == 422
    assert response.json["resourceType"] == "OperationOutcome"
    severity, expression, diagnostics = issues_of(response)[0]
    assert (severity, expression) == ("error", "Patient")
    assert "ilp-pat-1" in diagnostics and "NIK" in diagnostics
    assert ilp_client.get("/fhir/Patient").json.get("total", 0) == 0


def test_a_short_nik_is_refused_at_its_element(ilp_client):
    patient = unclaimed(example("Patient-ilp-patient-example"))
    patient["identifier"][0]["value"] = "526001120125000"

    response = put(ilp_client, "/fhir/Patient/ilp-patient-example", patient)

    assert response.status_code == 422
    assert issues_of(response)[0][:2] == ("error", "Patient.identifier[0].value")
    assert "ilp-nik-1" in issues_of(response)[0][2]


def test_body_weight_in_grams_is_refused(ilp_client):
    response = post(ilp_client, "/fhir/Observation", grams_weight())

    assert response.status_code == 422
    found = {(severity, expression) for severity, expression, _ in issues_of(response)}
    assert ("error", "Observation.value.ofType(Quantity).code") in found
    assert ("error", "Observation.value.ofType(Quantity)") in found  # ilp-obs-weight-1


def test_an_observation_without_ilp_profile_is_accepted(ilp_client):
    response = post(ilp_client, "/fhir/Observation", heart_rate())
    assert response.status_code == 201, response.json


def test_a_transaction_with_one_bad_entry_stores_nothing(ilp_client):
    patient = example("Patient-ilp-patient-example")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": patient,
                "request": {"method": "PUT", "url": "Patient/ilp-patient-example"},
            },
            {"resource": grams_weight(), "request": {"method": "POST", "url": "Observation"}},
        ],
    }

    response = post(ilp_client, "/fhir", bundle)

    assert response.status_code == 422
    expressions = [expression for _, expression, _ in issues_of(response)]
    assert "Bundle.entry[1].resource.value.ofType(Quantity).code" in expressions
    assert issues_of(response)[0][2].startswith("Bundle.entry[1] (POST Observation)")
    assert ilp_client.get("/fhir/Patient/ilp-patient-example").status_code == 404


def test_a_batch_refuses_only_the_bad_entry(ilp_client):
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": heart_rate(), "request": {"method": "POST", "url": "Observation"}},
            {"resource": grams_weight(), "request": {"method": "POST", "url": "Observation"}},
        ],
    }

    response = post(ilp_client, "/fhir", bundle)

    assert response.status_code == 200
    first, second = (entry["response"] for entry in response.json["entry"])
    assert first["status"].startswith("201")
    assert second["status"].startswith("422")
    assert second["outcome"]["issue"][0]["expression"][0].startswith("Bundle.entry[1].resource")


def test_warnings_come_back_when_an_operation_outcome_is_preferred(ilp_client):
    patient = example("Patient-ilp-patient-example")
    patient["birthDate"] = "2025-01-13"  # the NIK says the 12th: ilp-pat-4, a warning
    patient["meta"]["profile"].append("https://example.org/StructureDefinition/unknown")

    response = put(
        ilp_client,
        "/fhir/Patient/ilp-patient-example",
        patient,
        Prefer="return=OperationOutcome",
    )

    assert response.status_code == 201
    found = issues_of(response)
    assert [severity for severity, _, _ in found] == ["warning", "warning", "information"]
    assert "ilp-pat-4" in found[0][2] + found[1][2]
    assert "https://example.org/StructureDefinition/unknown" in found[0][2] + found[1][2]
    plain = put(ilp_client, "/fhir/Patient/ilp-patient-example", patient)
    assert plain.status_code == 200 and plain.json["resourceType"] == "Patient"


def test_bundle_entries_report_warnings_when_an_operation_outcome_is_preferred(ilp_client):
    patient = example("Patient-ilp-patient-example")
    del patient["text"]  # dom-6: a resource should have narrative
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": patient, "request": {"method": "PUT", "url": "Patient/p1"}}],
    }
    patient["id"] = "p1"

    response = post(ilp_client, "/fhir", bundle, Prefer="return=OperationOutcome")

    assert response.status_code == 200
    outcome = response.json["entry"][0]["response"]["outcome"]
    assert [i["severity"] for i in outcome["issue"]] == ["warning", "information"]
    assert "dom-6" in outcome["issue"][0]["diagnostics"]


def test_a_patch_that_breaks_the_profile_is_refused(ilp_client):
    patient = example("Patient-ilp-patient-example")
    assert put(ilp_client, "/fhir/Patient/ilp-patient-example", patient).status_code == 201
    patch = [{"op": "replace", "path": "/identifier/0/value", "value": "123"}]

    response = ilp_client.patch(
        "/fhir/Patient/ilp-patient-example",
        data=orjson.dumps(patch),
        headers={"Content-Type": "application/json-patch+json"},
    )

    assert response.status_code == 422
    assert issues_of(response)[0][1] == "Patient.identifier[0].value"


def test_a_patch_entry_that_breaks_the_profile_fails_the_transaction(ilp_client):
    patient = example("Patient-ilp-patient-example")
    assert put(ilp_client, "/fhir/Patient/ilp-patient-example", patient).status_code == 201
    patch = [{"op": "remove", "path": "/birthDate"}]
    binary = {
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64.b64encode(orjson.dumps(patch)).decode(),
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": binary,
                "request": {"method": "PATCH", "url": "Patient/ilp-patient-example"},
            }
        ],
    }

    response = post(ilp_client, "/fhir", bundle)

    assert response.status_code == 422
    assert any("birthDate" in d for _, _, d in issues_of(response))


def test_a_claimed_profile_is_checked_on_any_type(ilp_client):
    practitioner = example("Practitioner-ilp-bidan-example")
    practitioner["meta"] = {"profile": [ILP + "ilp-patient"]}

    response = put(ilp_client, f"/fhir/Practitioner/{practitioner['id']}", practitioner)

    assert response.status_code == 422
    assert "is for Patient, not Practitioner" in issues_of(response)[0][2]


def test_claims_alone_are_checked_when_no_type_is_enforced(ilp_settings):
    app = create_app(dataclasses.replace(ilp_settings, enforce_profiles=""))
    client = app.test_client()
    claimed = example("Patient-ilp-patient-example")
    del claimed["birthDate"]
    try:
        assert put(client, "/fhir/Patient/ilp-patient-example", claimed).status_code == 422
        assert post(client, "/fhir/Patient", unclaimed(claimed)).status_code == 201
    finally:
        app.extensions["ilp"].engine.dispose()


def test_with_enforcement_off_anything_structurally_valid_is_accepted(client):
    assert post(client, "/fhir/Observation", grams_weight()).status_code == 201
    claimed = example("Patient-ilp-patient-example")
    claimed["identifier"] = [{"system": "https://fhir.kemkes.go.id/id/nik", "value": "1"}]
    assert post(client, "/fhir/Patient", claimed).status_code == 201
    assert (
        post(client, "/fhir/Patient", {"resourceType": "Patient", "active": True}).status_code
        == 201
    )


def test_structural_errors_still_answer_400(ilp_client):
    response = ilp_client.post(
        "/fhir/Patient",
        data=b'{"resourceType": "Patient", "birthDate": "2025-13-01"}',
        headers={"Content-Type": FHIR_JSON},
    )
    assert response.status_code == 400


def test_the_server_refuses_to_start_without_the_definitions(ilp_settings, tmp_path):
    with pytest.raises(ConfigError, match="ilp package fetch"):
        create_app(dataclasses.replace(ilp_settings, package_cache=str(tmp_path)))


def test_the_demo_district_meets_the_profiles(ilp_settings):
    tiny = DemoSize(kecamatan=1, desa_per_kecamatan=2, households_per_desa=2, months=2)
    engine = create_db_engine(ilp_settings)
    try:
        report = demo.load_demo(ServiceContext(ilp_settings, engine), tiny, validate=True)
    finally:
        engine.dispose()
    assert report.written > 0
