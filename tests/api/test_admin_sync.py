"""GET /admin/sync: the outbox as an operator sees it, without a shell on the server."""

from __future__ import annotations

from datetime import UTC, datetime

from server.services import sync
from server.storage import sync as outbox


def _patient(client, nik):
    body = {
        "resourceType": "Patient",
        "identifier": [{"system": "https://fhir.kemkes.go.id/id/nik", "value": nik}],
    }
    response = client.post("/fhir/Patient", json=body, content_type="application/fhir+json")
    assert response.status_code == 201
    return response.headers["Location"].split("/")[-3]


def test_counts_every_write_as_pending(client):
    _patient(client, "3271010101900001")
    _patient(client, "3271010101900002")
    body = client.get("/admin/sync").get_json()
    assert body["outbox"] == {"pending": 2, "sent": 0, "failed": 0, "parked": 0}
    assert body["mapped"] == 0
    assert body["problems"] == []


def test_shows_a_parked_row_with_its_reason_and_requeue_clears_it(app, client):
    res_id = _patient(client, "3271010101900003")
    context = app.extensions["ilp"]
    with context.unit_of_work(write=True) as uow:
        last = outbox.latest_seq(uow.connection, "Patient", res_id)
        outbox.settle(
            uow.connection,
            "Patient",
            res_id,
            last,
            outbox.PARKED,
            datetime.now(UTC),
            reason="NIK 3271010101900003 is not known upstream",
        )
    body = client.get("/admin/sync?limit=5").get_json()
    assert body["outbox"]["parked"] == 1
    [problem] = body["problems"]
    assert problem["resource"] == f"Patient/{res_id}"
    assert problem["state"] == "parked"
    assert "not known upstream" in problem["reason"]
    assert sync.requeue(context) == 1
    assert client.get("/admin/sync").get_json()["outbox"]["pending"] == 1


def test_a_bad_limit_is_an_operation_outcome(client):
    response = client.get("/admin/sync?limit=zero")
    assert response.status_code == 400
    assert response.get_json()["resourceType"] == "OperationOutcome"
