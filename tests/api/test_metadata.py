"""The CapabilityStatement tells the truth about what works (http.html#capabilities)."""

from __future__ import annotations

import json

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from server.fhir.registry import SUPPORTED
from server.fhir.searchparams import from_definitions
from server.services.capability import capability_statement, supported_profiles
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


ILP = "https://fhir.ilp-gateway.id/StructureDefinition/"


def test_ilp_profiles_are_listed_as_supported_profiles(client):
    rest = client.get("/fhir/metadata").get_json()["rest"][0]
    listed = {r["type"]: r.get("supportedProfile", []) for r in rest["resource"]}
    assert {ILP + "ilp-patient"} <= set(listed["Patient"])
    assert {ILP + "ilp-encounter"} <= set(listed["Encounter"])
    assert {ILP + "ilp-location", ILP + "ilp-wilayah"} <= set(listed["Location"])
    assert {
        ILP + "ilp-organization",
        ILP + "ilp-puskesmas",
        ILP + "ilp-pustu",
        ILP + "ilp-posyandu",
    } <= set(listed["Organization"])
    assert listed["Condition"] == []  # no ILP profile constrains it
    everything = [url for urls in listed.values() for url in urls]
    assert not any(url.endswith(("ilp-mother", "administrativeCode")) for url in everything)


def test_supported_profiles_are_the_folders_resource_constraints(tmp_path):
    def definition(name, kind, derivation, type_name):
        body = {
            "resourceType": "StructureDefinition",
            "url": f"https://example.org/StructureDefinition/{name}",
            "kind": kind,
            "derivation": derivation,
            "type": type_name,
        }
        (tmp_path / f"StructureDefinition-{name}.json").write_text(json.dumps(body))

    definition("b-patient", "resource", "constraint", "Patient")
    definition("a-patient", "resource", "constraint", "Patient")
    definition("an-extension", "complex-type", "constraint", "Extension")
    definition("a-new-type", "resource", "specialization", "Basic")

    assert supported_profiles(tmp_path) == {
        "Patient": (
            "https://example.org/StructureDefinition/a-patient",
            "https://example.org/StructureDefinition/b-patient",
        )
    }
    statement = capability_statement(
        "http://example.org/fhir",
        allow_update_create=True,
        search_params=from_definitions(SUPPORTED, []),
        profiles_dir=tmp_path,
    )
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert resources["Patient"]["supportedProfile"] == list(supported_profiles(tmp_path)["Patient"])
    assert "supportedProfile" not in resources["Observation"]
