"""The CapabilityStatement tells the truth about what works (http.html#capabilities)."""

from __future__ import annotations

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from server.fhir.registry import SUPPORTED
from tests.helpers import patient, post


def test_capability_statement_is_valid_r4(client):
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    body = response.get_json()
    CapabilityStatement.model_validate(body)
    assert body["fhirVersion"] == "4.0.1"
    assert body["kind"] == "instance"
    assert "application/fhir+json" in body["format"]


def test_capability_statement_lists_every_registered_type(client):
    rest = client.get("/fhir/metadata").get_json()["rest"][0]
    listed = {r["type"]: r for r in rest["resource"]}
    assert set(listed) == set(SUPPORTED)
    patient_support = listed["Patient"]
    codes = {i["code"] for i in patient_support["interaction"]}
    assert {"read", "vread", "update", "patch", "delete", "create", "history-instance"} <= codes
    names = {p["name"] for p in patient_support["searchParam"]}
    assert {"_id", "_lastUpdated", "identifier", "name", "birthdate", "organization"} <= names
    assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch", "history-system"}
    assert "code" not in names  # an Observation parameter


def test_every_listed_search_parameter_is_accepted(client):
    rest = client.get("/fhir/metadata").get_json()["rest"][0]
    samples = {"date": "2026", "number": "1", "quantity": "1", "composite": None, "special": None}
    for resource in rest["resource"]:
        for param in resource["searchParam"]:
            value = samples.get(param["type"], "x")
            if value is None:
                continue
            response = client.get(f"/fhir/{resource['type']}?{param['name']}={value}&_count=1")
            assert response.status_code == 200, (resource["type"], param["name"], response.json)


def test_every_listed_interaction_answers(client):
    rest = client.get("/fhir/metadata").get_json()["rest"][0]
    for resource in rest["resource"]:
        type_name = resource["type"]
        assert client.get(f"/fhir/{type_name}?_count=1").status_code == 200
        assert client.get(f"/fhir/{type_name}/_history?_count=1").status_code == 200
        assert client.get(f"/fhir/{type_name}/missing").status_code == 404
    assert post(client, "/fhir/Patient", patient()).status_code == 201
