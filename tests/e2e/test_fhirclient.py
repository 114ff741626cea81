"""End to end: the independent SMART ``fhirclient`` library against gunicorn over HTTP.

Every test talks to a real server process (see conftest.py), once on SQLite and
once on PostgreSQL, through fhirclient's R4 models and, where the client library
hides the HTTP details, through plain ``requests``.
"""

from __future__ import annotations

import secrets

import pytest
import requests
from fhirclient.client import FHIRClient
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.codeableconcept import CodeableConcept
from fhirclient.models.fhirdatetime import FHIRDateTime
from fhirclient.models.fhirreference import FHIRReference
from fhirclient.models.observation import Observation
from fhirclient.models.operationoutcome import OperationOutcome
from fhirclient.models.patient import Patient
from fhirclient.models.quantity import Quantity

pytestmark = pytest.mark.e2e

NIK = "https://fhir.kemkes.go.id/id/nik"
FHIR_JSON = "application/fhir+json"
VITAL_SIGNS = {
    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
    "code": "vital-signs",
}
BODY_WEIGHT = {"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}
KILOGRAMS = {"value": 61.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}


@pytest.fixture(scope="module")
def server(fhir_base):
    """fhirclient's handle on the running server."""
    return FHIRClient(settings={"app_id": "ilp-e2e", "api_base": fhir_base}).server


def _new_nik() -> str:
    return str(secrets.randbelow(9 * 10**15) + 10**15)  # 16 digits, unique per test


@pytest.fixture
def patient(server):
    """A Patient created through fhirclient, as the server returned it."""
    nik = _new_nik()
    new = Patient(
        {
            "identifier": [{"system": NIK, "value": nik}],
            "name": [{"family": "Wulandari", "given": ["Sri"]}],
            "gender": "female",
            "birthDate": "1990-04-17",
        }
    )
    created = Patient(new.create(server))
    assert created.id, "the create response carries the new resource with its id"
    return created


def test_capability_statement_parses_and_lists_patient_interactions(server):
    capability = CapabilityStatement.read_from("metadata", server)

    assert capability.fhirVersion == "4.0.1"
    assert [rest.mode for rest in capability.rest] == ["server"]
    by_type = {resource.type: resource for resource in capability.rest[0].resource}
    assert {"Patient", "Organization", "Observation", "Encounter", "Location"} <= set(by_type)
    interactions = {interaction.code for interaction in by_type["Patient"].interaction}
    assert {"read", "create", "update"} <= interactions


def test_create_read_update_patient(server, patient):
    read = Patient.read(patient.id, server)

    assert read.id == patient.id
    assert [(i.system, i.value) for i in read.identifier] == [(NIK, patient.identifier[0].value)]
    assert len(patient.identifier[0].value) == 16
    assert [(n.family, n.given) for n in read.name] == [("Wulandari", ["Sri"])]
    assert read.birthDate.as_json() == "1990-04-17"
    assert read.gender == "female"
    assert read.meta.versionId == "1"

    read.name[0].family = "Wulandari-Putri"
    read.update()
    reread = Patient.read(patient.id, server)

    assert [(n.family, n.given) for n in reread.name] == [("Wulandari-Putri", ["Sri"])]
    assert reread.meta.versionId == "2"
    assert reread.birthDate.as_json() == "1990-04-17"


def test_search_by_identifier_finds_exactly_that_patient(server, patient):
    nik = patient.identifier[0].value
    Patient({"identifier": [{"system": NIK, "value": _new_nik()}]}).create(server)  # a decoy

    search = Patient.where(struct={"identifier": f"{NIK}|{nik}"})
    found = list(search.perform_resources_iter(server))

    assert [(type(r), r.id) for r in found] == [(Patient, patient.id)]
    assert found[0].identifier[0].value == nik


def test_create_and_read_body_weight_observation(server, patient):
    weight = Observation()
    weight.status = "final"
    weight.category = [CodeableConcept({"coding": [VITAL_SIGNS]})]
    weight.code = CodeableConcept({"coding": [BODY_WEIGHT]})
    weight.subject = FHIRReference({"reference": f"Patient/{patient.id}"})
    weight.effectiveDateTime = FHIRDateTime("2024-05-01T08:30:00+07:00")
    weight.valueQuantity = Quantity(KILOGRAMS)
    created = Observation(weight.create(server))
    read = Observation.read(created.id, server)

    assert read.status == "final"
    assert [coding.as_json() for coding in read.code.coding] == [BODY_WEIGHT]
    assert read.subject.reference == f"Patient/{patient.id}"
    assert read.valueQuantity.as_json() == KILOGRAMS
    assert read.effectiveDateTime.as_json() == "2024-05-01T08:30:00+07:00"


def test_deleted_patient_reads_as_gone(server, fhir_base, patient):
    assert patient.delete(server) is None  # 204: no body

    response = requests.get(
        f"{fhir_base}/Patient/{patient.id}", headers={"Accept": FHIR_JSON}, timeout=10
    )

    assert response.status_code == 410
    assert response.headers["Content-Type"].startswith(FHIR_JSON)
    outcome = OperationOutcome(response.json())
    assert outcome.issue and outcome.issue[0].severity in ("error", "fatal")


def test_gzip_over_real_http(fhir_base):
    response = requests.get(
        f"{fhir_base}/metadata", headers={"Accept-Encoding": "gzip"}, timeout=10
    )

    assert response.status_code == 200
    assert response.headers.get("Content-Encoding") == "gzip"
    assert "Accept-Encoding" in response.headers.get("Vary", "")
    assert response.json()["resourceType"] == "CapabilityStatement"  # requests un-gzips


def test_invalid_observation_is_rejected_with_an_outcome(fhir_base):
    invalid = {
        "resourceType": "Observation",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "valueQuantity": {"value": 61.5, "unit": "kg"},
    }
    response = requests.post(
        f"{fhir_base}/Observation", json=invalid, headers={"Content-Type": FHIR_JSON}, timeout=10
    )

    assert response.status_code == 400
    outcome = OperationOutcome(response.json())
    assert [issue.expression for issue in outcome.issue] == [["Observation.status"]]
    assert outcome.issue[0].severity == "error"
