"""End to end: transactions and batches over real HTTP to gunicorn (2 workers).

A Posyandu visit sent as an EMR sends it, parsed back with fhirclient's R4 Bundle
model; concurrent senders through both workers; a failing transaction.  Once on SQLite
and once on PostgreSQL (see conftest.py).
"""

from __future__ import annotations

import secrets
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from fhirclient.models.bundle import Bundle
from fhirclient.models.observation import Observation
from fhirclient.models.operationoutcome import OperationOutcome

pytestmark = pytest.mark.e2e

NIK = "https://fhir.kemkes.go.id/id/nik"
FHIR_JSON = "application/fhir+json"


def _visit(nik: str, weighings: int = 3) -> dict:
    child, visit = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    entries = [
        {
            "fullUrl": child,
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": NIK, "value": nik}],
                "name": [{"family": "Lestari"}],
                "birthDate": "2024-02-11",
            },
            "request": {
                "method": "POST",
                "url": "Patient",
                "ifNoneExist": f"identifier={NIK}|{nik}",
            },
        },
        {
            "fullUrl": visit,
            "resource": {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": child},
            },
            "request": {"method": "POST", "url": "Encounter"},
        },
    ]
    for month in range(weighings):
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                    "subject": {"reference": child},
                    "encounter": {"reference": visit},
                    "valueQuantity": {"value": 8.0 + month / 2, "unit": "kg"},
                },
                "request": {"method": "POST", "url": "Observation"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _post(fhir_base: str, body: dict) -> requests.Response:
    return requests.post(fhir_base, json=body, headers={"Content-Type": FHIR_JSON}, timeout=30)


def _nik() -> str:
    return str(secrets.randbelow(9 * 10**15) + 10**15)


def test_posyandu_visit_transaction_links_every_entry(fhir_base):
    response = _post(fhir_base, _visit(_nik()))

    assert response.status_code == 200, response.text
    answer = Bundle(response.json())  # fhirclient validates the response shape
    assert answer.type == "transaction-response"
    assert [e.response.status for e in answer.entry] == ["201 Created"] * 5
    patient_url, encounter_url = answer.entry[0].fullUrl, answer.entry[1].fullUrl
    patient_ref = "/".join(patient_url.split("/")[-2:])
    for item in answer.entry[2:]:
        stored = Observation(requests.get(item.fullUrl, timeout=10).json())
        assert stored.subject.reference == patient_ref
        assert stored.encounter.reference == "/".join(encounter_url.split("/")[-2:])


def test_concurrent_visits_of_one_child_through_both_workers(fhir_base):
    nik = _nik()
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: _post(fhir_base, _visit(nik, 1)), range(8)))

    assert [r.status_code for r in responses] == [200] * 8
    found = requests.get(f"{fhir_base}/Patient", params={"identifier": f"{NIK}|{nik}"}, timeout=10)
    assert len(found.json().get("entry", [])) == 1


def test_failed_transaction_answers_an_outcome_and_stores_nothing(fhir_base):
    nik = _nik()
    body = _visit(nik)
    body["entry"][3]["resource"]["subject"]["reference"] = "urn:uuid:nobody"

    response = _post(fhir_base, body)

    assert response.status_code == 400
    outcome = OperationOutcome(response.json())
    assert outcome.issue[0].expression == ["Bundle.entry[3].resource.subject.reference"]
    found = requests.get(f"{fhir_base}/Patient", params={"identifier": f"{NIK}|{nik}"}, timeout=10)
    assert "entry" not in found.json()


def test_batch_reports_each_entry(fhir_base):
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "metadata"}},
            {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
        ],
    }
    response = _post(fhir_base, batch)

    assert response.status_code == 200
    answer = Bundle(response.json())
    assert [e.response.status for e in answer.entry] == ["200 OK", "404 Not Found"]
    assert answer.entry[1].response.outcome.resource_type == "OperationOutcome"
