"""``$validate`` on a type and an instance (resource-operation-validate.html).

The answer is 200 with an OperationOutcome whether or not the resource is valid; only a
request that cannot be answered (bad JSON, unknown profile or mode, absent instance) is an
error status.
"""

from __future__ import annotations

import copy
from pathlib import Path

import orjson
import pytest

from tests.helpers import FHIR_JSON, post, put

EXAMPLES = Path(__file__).resolve().parents[2] / "profiles" / "examples"
ILP = "https://fhir.ilp-gateway.id/StructureDefinition/"
VALIDATE = "http://hl7.org/fhir/OperationDefinition/Resource-validate"


def example(name):
    return orjson.loads((EXAMPLES / f"{name}.json").read_bytes())


def parameters(resource=None, **values):
    found = [{"name": "resource", "resource": resource}] if resource is not None else []
    kinds = {"mode": "valueCode", "profile": "valueUri"}
    found += [{"name": name, kinds[name]: value} for name, value in values.items()]
    return {"resourceType": "Parameters", "parameter": found}


def short_nik_patient():
    patient = example("Patient-ilp-patient-example")
    patient["identifier"][0]["value"] = "526001120125000"
    return patient


def issues_of(response):
    return [
        (issue["severity"], issue.get("expression", [None])[0], issue["diagnostics"])
        for issue in response.json["issue"]
    ]


def assert_clean(response):
    assert response.status_code == 200, response.json
    assert response.json["resourceType"] == "OperationOutcome"
    assert issues_of(response) == [("information", None, "No issues detected")]


def test_a_valid_ilp_example_as_raw_resource(ilp_client):
    resource = example("Observation-ilp-obs-body-weight-example")
    assert_clean(post(ilp_client, "/fhir/Observation/$validate", resource))


def test_a_valid_ilp_example_in_parameters(ilp_client):
    resource = example("Organization-ilp-pustu-example")
    assert_clean(post(ilp_client, "/fhir/Organization/$validate", parameters(resource)))


def test_a_broken_example_gives_200_with_the_issue_and_its_expression(ilp_client):
    response = post(ilp_client, "/fhir/Patient/$validate", parameters(short_nik_patient()))

    assert response.status_code == 200
    severity, expression, diagnostics = issues_of(response)[0]
    assert (severity, expression) == ("error", "Patient.identifier[0].value")
    assert "ilp-nik-1" in diagnostics


def test_the_ilp_profiles_of_a_write_apply_without_a_claim(ilp_client):
    observation = example("Observation-ilp-obs-body-weight-example")
    del observation["meta"]
    observation["valueQuantity"]["code"] = "g"

    response = post(ilp_client, "/fhir/Observation/$validate", observation)

    assert response.status_code == 200
    assert ("error", "Observation.value.ofType(Quantity).code") in {
        issue[:2] for issue in issues_of(response)
    }


def test_base_validation_applies_to_every_type(client):
    practitioner = {"resourceType": "Practitioner", "gender": "x"}  # a required binding

    response = post(client, "/fhir/Practitioner/$validate", practitioner)

    assert response.status_code == 200
    assert issues_of(response)[0][:2] == ("error", "Practitioner.gender")


def test_a_coding_system_of_the_wrong_json_type_is_an_issue_not_a_fault(client):
    # Found by tests/fuzz: the binding check looked (system, code) up in a set, and a list as
    # the system is unhashable (a 500).
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": ["http://loinc.org"], "code": "29463-7"}]},
    }
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": {"x": 1}, "code": "AMB"},
    }
    for resource, path in ((observation, "Observation.code"), (encounter, "Encounter.class")):
        response = post(client, f"/fhir/{resource['resourceType']}/$validate", resource)
        assert response.status_code == 200, response.json
        expressions = [expression for _, expression, _ in issues_of(response)]
        assert any(e and e.startswith(path) for e in expressions), issues_of(response)


def test_the_profile_parameter(client):
    patient = example("Patient-ilp-patient-example")
    del patient["meta"], patient["name"]

    without = post(client, "/fhir/Patient/$validate", patient)
    given = post(
        client, "/fhir/Patient/$validate", parameters(patient, profile=ILP + "ilp-patient")
    )
    in_query = post(client, f"/fhir/Patient/$validate?profile={ILP}ilp-patient", patient)

    assert [s for s, _, _ in issues_of(without)] == ["information"]
    for response in (given, in_query):
        assert response.status_code == 200
        assert any(s == "error" and "Patient.name" in d for s, _, d in issues_of(response))


@pytest.mark.parametrize(
    "profile, message",
    [
        ("https://example.org/StructureDefinition/nothing", "is not known to this server"),
        (ILP + "ilp-obs-body-weight", "is for Observation, not Patient"),
    ],
)
def test_a_profile_that_cannot_be_used_is_refused(client, profile, message):
    body = parameters(example("Patient-ilp-patient-example"), profile=profile)

    response = post(client, "/fhir/Patient/$validate", body)

    assert response.status_code == 400
    issue = response.json["issue"][0]
    assert issue["code"] == "not-found"
    assert profile in issue["diagnostics"] and message in issue["diagnostics"]


def test_mode_create_validates_the_resource(ilp_client):
    resource = example("Encounter-ilp-encounter-pustu-example")
    assert_clean(post(ilp_client, "/fhir/Encounter/$validate?mode=create", resource))
    assert_clean(post(ilp_client, "/fhir/Encounter/$validate", parameters(resource, mode="create")))


def test_mode_update_needs_the_id_of_the_url(ilp_client):
    patient = example("Patient-ilp-patient-example")
    url = "/fhir/Patient/ilp-patient-example/$validate"

    assert_clean(post(ilp_client, url, parameters(patient, mode="update")))
    other = post(
        ilp_client, "/fhir/Patient/someone-else/$validate", parameters(patient, mode="update")
    )
    del patient["id"]
    missing = post(ilp_client, "/fhir/Patient/$validate", parameters(patient, mode="update"))

    for response in (other, missing):
        assert response.status_code == 200
        assert issues_of(response)[0][:2] == ("error", "Patient.id")
    assert "differs" in issues_of(other)[0][2]


def test_mode_delete_checks_that_the_resource_exists(ilp_client):
    patient = example("Patient-ilp-patient-example")
    assert put(ilp_client, "/fhir/Patient/ilp-patient-example", patient).status_code == 201

    found = post(
        ilp_client, "/fhir/Patient/ilp-patient-example/$validate", parameters(mode="delete")
    )
    absent = ilp_client.post("/fhir/Patient/nobody/$validate?mode=delete")
    type_level = ilp_client.post("/fhir/Patient/$validate?mode=delete")

    assert found.status_code == 200
    assert issues_of(found)[0][0] == "information"
    assert "may be deleted" in issues_of(found)[0][2]
    assert absent.status_code == 404
    assert type_level.status_code == 400


def test_an_instance_without_body_validates_the_stored_resource(client, ilp_client):
    broken = short_nik_patient()
    assert put(client, "/fhir/Patient/ilp-patient-example", broken).status_code == 201

    response = ilp_client.post("/fhir/Patient/ilp-patient-example/$validate")

    assert response.status_code == 200
    assert issues_of(response)[0][:2] == ("error", "Patient.identifier[0].value")
    assert ilp_client.post("/fhir/Patient/nobody/$validate").status_code == 404


def test_a_bundle_is_validated_with_its_entries(ilp_client):
    patient = short_nik_patient()
    del patient["meta"]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": patient, "request": {"method": "POST", "url": "Patient"}}],
    }

    response = post(ilp_client, "/fhir/Bundle/$validate", bundle)

    assert response.status_code == 200
    assert ("error", "Bundle.entry[0].resource.identifier[0].value") in {
        issue[:2] for issue in issues_of(response)
    }


@pytest.mark.parametrize(
    "body, expected",
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "JSON object"),
        (orjson.dumps({"resourceType": "Observation", "status": "final"}), "does not match"),
        (orjson.dumps(parameters(mode="replace")), "mode must be one of"),
        (orjson.dumps(parameters(mode="create")), "needs a resource"),
        (
            orjson.dumps({"resourceType": "Parameters", "parameter": [{"name": "profiles"}]}),
            "not 'profiles'",
        ),
    ],
)
def test_requests_that_cannot_be_answered_are_400(client, body, expected):
    response = client.post(
        "/fhir/Patient/$validate", data=body, headers={"Content-Type": FHIR_JSON}
    )
    assert response.status_code == 400
    assert expected in response.json["issue"][0]["diagnostics"]


def test_an_unknown_type_is_404(client):
    response = post(client, "/fhir/Medication/$validate", {"resourceType": "Medication"})
    assert response.status_code == 404


def test_the_capability_statement_lists_the_operation(client):
    statement = client.get("/fhir/metadata").json
    for resource in statement["rest"][0]["resource"]:
        assert {"name": "validate", "definition": VALIDATE} in resource["operation"]


def test_validation_does_not_store_anything(ilp_client):
    resource = copy.deepcopy(example("Patient-ilp-patient-example"))
    assert_clean(post(ilp_client, "/fhir/Patient/$validate", resource))
    assert ilp_client.get("/fhir/Patient/ilp-patient-example").status_code == 404
