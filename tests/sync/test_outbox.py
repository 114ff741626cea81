"""The outbox: one row per write in the write's own transaction; claims, leases, re-queueing.

Runs on SQLite and PostgreSQL (``client``/``app`` come from ``db_url``).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from server import create_app
from server.config import Settings
from server.services.sync.worker import SyncWorker
from server.storage import sync as outbox
from server.storage.schema import SyncOutbox, metadata
from tests.conftest import BASE_URL, NO_PROFILE_ENFORCEMENT, NO_SECURITY
from tests.helpers import created_id, patient, post, put

OUTBOX = SyncOutbox.__table__
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)


@pytest.fixture
def pg_app(postgres_url):
    """An app on PostgreSQL only: for what SQLite's single writer cannot show."""
    application = create_app(
        Settings(
            database_url=postgres_url, base_url=BASE_URL, **NO_PROFILE_ENFORCEMENT, **NO_SECURITY
        )
    )
    yield application
    engine = application.extensions["ilp"].engine
    with engine.begin() as connection:
        connection.exec_driver_sql(f"TRUNCATE {', '.join(metadata.tables)} RESTART IDENTITY")
    engine.dispose()


def rows(app):
    """(type, id, version, state) of every outbox row, oldest first."""
    with app.extensions["ilp"].engine.connect() as connection:
        found = connection.execute(
            sa.select(
                OUTBOX.c.res_type, OUTBOX.c.res_id, OUTBOX.c.version_id, OUTBOX.c.state
            ).order_by(OUTBOX.c.seq)
        ).all()
    return [tuple(row) for row in found]


def seqs(app):
    with app.extensions["ilp"].engine.connect() as connection:
        return list(connection.execute(sa.select(OUTBOX.c.seq).order_by(OUTBOX.c.seq)).scalars())


def change(app, seq, **values):
    with app.extensions["ilp"].engine.begin() as connection:
        connection.execute(sa.update(OUTBOX).where(OUTBOX.c.seq == seq).values(**values))


def claim(app, worker="host:1", now=T0, limit=50, lease=LEASE):
    with app.extensions["ilp"].unit_of_work(write=True) as uow:
        return outbox.claim(uow.connection, worker, now, limit, lease)


def write_patients(client, count):
    return [
        created_id(post(client, "/fhir/Patient", patient(nik=f"32010100000000{i:02d}")))
        for i in range(count)
    ]


def transaction(*entries):
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def entry(method, url, resource=None, full_url=None, **request):
    item = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        item["resource"] = resource
    if full_url is not None:
        item["fullUrl"] = full_url
    return item


# one row per write ---------------------------------------------------------------------------


def test_create_update_patch_and_delete_each_append_one_row(client, app):
    pid = created_id(post(client, "/fhir/Patient", patient()))
    assert rows(app) == [("Patient", pid, 1, "pending")]

    put(client, f"/fhir/Patient/{pid}", patient(family="Sari", id=pid))
    patched = client.patch(
        f"/fhir/Patient/{pid}",
        json=[{"op": "replace", "path": "/name/0/family", "value": "Ani"}],
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert patched.status_code == 200
    assert client.delete(f"/fhir/Patient/{pid}").status_code == 204

    assert rows(app) == [("Patient", pid, v, "pending") for v in (1, 2, 3, 4)]


def test_update_as_create_appends_one_row(client, app):
    put(client, "/fhir/Patient/p-1", patient(id="p-1"))

    assert rows(app) == [("Patient", "p-1", 1, "pending")]


def test_writes_that_change_nothing_append_nothing(client, app):
    pid = created_id(post(client, "/fhir/Patient", patient()))
    same = put(client, f"/fhir/Patient/{pid}", patient(id=pid))
    matched = post(
        client,
        "/fhir/Patient",
        patient(),
        **{"If-None-Exist": "identifier=https://fhir.kemkes.go.id/id/nik|3201234567890001"},
    )
    client.delete(f"/fhir/Patient/{pid}")
    again = client.delete(f"/fhir/Patient/{pid}")

    assert same.status_code == 200 and matched.status_code == 200 and again.status_code == 204
    assert rows(app) == [("Patient", pid, 1, "pending"), ("Patient", pid, 2, "pending")]


def test_refused_writes_append_nothing(client, app):
    invalid = post(client, "/fhir/Patient", {"resourceType": "Patient", "active": "yes"})
    mismatched = put(client, "/fhir/Patient/p-1", patient(id="p-2"))

    assert invalid.status_code >= 400 and mismatched.status_code == 400
    assert rows(app) == []


def test_a_transaction_appends_one_row_per_entry(client, app):
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": patient_url},
    }
    response = post(
        client,
        "/fhir",
        transaction(
            entry("POST", "Patient", patient(), full_url=patient_url),
            entry("POST", "Encounter", encounter),
            entry("PUT", "Organization/pkm-1", {"resourceType": "Organization", "id": "pkm-1"}),
        ),
    )

    assert response.status_code == 200, response.get_json()
    found = rows(app)
    assert sorted((t, v, s) for t, _, v, s in found) == [
        ("Encounter", 1, "pending"),
        ("Organization", 1, "pending"),
        ("Patient", 1, "pending"),
    ]
    assert ("Organization", "pkm-1", 1, "pending") in found


def test_a_failed_transaction_appends_nothing(client, app):
    put(client, "/fhir/Organization/pkm-1", {"resourceType": "Organization", "id": "pkm-1"})
    before = rows(app)

    response = post(
        client,
        "/fhir",
        transaction(
            entry("POST", "Patient", patient()),
            entry("PUT", "Organization/pkm-2", {"resourceType": "Organization", "id": "pkm-2"}),
            # the last entry fails: nothing of the transaction may stay, outbox rows included
            entry(
                "PUT",
                "Organization/pkm-1",
                {"resourceType": "Organization", "id": "pkm-1", "name": "x"},
                ifMatch='W/"9"',
            ),
        ),
    )

    assert response.status_code == 412
    assert rows(app) == before
    assert client.get("/fhir/Organization/pkm-2").status_code == 404


def test_a_batch_appends_rows_for_the_entries_that_succeeded(client, app):
    response = post(
        client,
        "/fhir",
        {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                entry("PUT", "Patient/ok-1", patient(id="ok-1")),
                entry("PUT", "Patient/bad", patient(id="other")),
                entry("PUT", "Patient/ok-2", patient(id="ok-2", nik="3201234567890002")),
            ],
        },
    )

    assert response.status_code == 200
    assert rows(app) == [("Patient", "ok-1", 1, "pending"), ("Patient", "ok-2", 1, "pending")]


def test_outbox_off_appends_nothing(settings):
    application = create_app(dataclasses.replace(settings, outbox=False))
    client = application.test_client()
    try:
        pid = created_id(post(client, "/fhir/Patient", patient()))
        put(client, f"/fhir/Patient/{pid}", patient(family="Sari", id=pid))
        client.delete(f"/fhir/Patient/{pid}")

        assert client.get(f"/fhir/Patient/{pid}/_history").get_json()["total"] == 3
        assert rows(application) == []
    finally:
        application.extensions["ilp"].engine.dispose()


def test_conformance_resources_and_audit_events_stay_local(client, app):
    """A profile, a code list or the audit trail is not clinical data for the upstream."""
    value_set = {"resourceType": "ValueSet", "status": "draft", "url": "http://example.org/vs"}
    audit = {
        "resourceType": "AuditEvent",
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110"},
        "recorded": "2026-11-03T09:00:00+07:00",
        "agent": [{"requestor": True, "who": {"display": "kader"}}],
        "source": {"observer": {"display": "ILP Gateway"}},
    }
    post(client, "/fhir/ValueSet", value_set)
    post(client, "/fhir/AuditEvent", audit)
    pid = created_id(post(client, "/fhir/Patient", patient()))

    assert rows(app) == [("Patient", pid, 1, "pending")]


# claims ----------------------------------------------------------------------------------------


def test_claim_takes_due_rows_oldest_first_and_counts_the_attempt(client, app):
    write_patients(client, 4)
    first, second, third, fourth = seqs(app)
    change(app, second, not_before=T0 + timedelta(minutes=5))  # postponed
    change(app, third, claimed_by="other:2", claimed_until=T0 + timedelta(minutes=1))  # busy

    claimed = claim(app, "host:1", T0)

    assert [r.seq for r in claimed] == [first, fourth]
    assert [r.attempts for r in claimed] == [1, 1]
    assert [r.state for r in claimed] == ["pending", "pending"]
    assert claim(app, "host:3", T0 + timedelta(seconds=30)) == []  # all claimed or not due


def test_claim_respects_the_limit(client, app):
    write_patients(client, 5)
    all_seqs = seqs(app)

    assert [r.seq for r in claim(app, limit=2)] == all_seqs[:2]
    assert [r.seq for r in claim(app, limit=2)] == all_seqs[2:4]
    assert [r.seq for r in claim(app, limit=2)] == all_seqs[4:]


def test_a_claim_ends_with_its_lease_and_a_postponed_row_is_due_at_its_time(client, app):
    write_patients(client, 2)
    first, second = seqs(app)
    change(app, second, not_before=T0 + timedelta(minutes=5))
    assert [r.seq for r in claim(app, "host:1", T0)] == [first]  # leased for ten minutes

    assert claim(app, "host:2", T0 + timedelta(minutes=4)) == []
    assert [r.seq for r in claim(app, "host:2", T0 + timedelta(minutes=5))] == [second]
    retaken = claim(app, "host:2", T0 + timedelta(minutes=11))  # the first worker is gone

    assert [r.seq for r in retaken] == [first]
    assert retaken[0].attempts == 2


def test_finished_rows_are_never_claimed(client, app):
    write_patients(client, 3)
    for seq, state in zip(seqs(app), (outbox.SENT, outbox.FAILED, outbox.PARKED), strict=True):
        change(app, seq, state=state)

    assert claim(app) == []


def test_concurrent_claims_take_disjoint_rows(pg_app):
    app = pg_app
    write_patients(app.test_client(), 6)
    engine = app.extensions["ilp"].engine
    with engine.connect() as one, engine.connect() as two:
        one.begin()
        two.begin()
        two.exec_driver_sql("SET LOCAL lock_timeout = '3s'")  # waiting would be the bug
        first = outbox.claim(one, "host:1", T0, 3, LEASE)  # locked until `one` commits
        second = outbox.claim(two, "host:2", T0, 3, LEASE)
        one.commit()
        two.commit()

    assert [r.seq for r in first] == seqs(app)[:3]
    assert [r.seq for r in second] == seqs(app)[3:]


def test_many_workers_claim_every_row_exactly_once(pg_app):
    app = pg_app
    write_patients(app.test_client(), 30)
    taken: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def work(name):
        barrier.wait()
        while True:
            claimed = claim(app, name, T0, limit=2)
            if not claimed:
                return
            with lock:
                taken.extend(r.seq for r in claimed)

    threads = [threading.Thread(target=work, args=(f"host:{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(taken) == seqs(app)


def test_dead_workers_claims_are_released_and_live_ones_kept(client, app):
    write_patients(client, 3)
    dead, live, elsewhere = seqs(app)
    until = T0 + timedelta(minutes=10)
    change(app, dead, claimed_by="node-a:4001", claimed_until=until)
    change(app, live, claimed_by="node-a:4002", claimed_until=until)
    change(app, elsewhere, claimed_by="node-b:4001", claimed_until=until)

    with app.extensions["ilp"].unit_of_work(write=True) as uow:
        released = outbox.release_dead_claims(uow.connection, "node-a", lambda pid: pid == 4002)

    assert released == 1
    assert [r.seq for r in claim(app, "node-a:4003", T0)] == [dead]


def test_the_worker_releases_claims_of_exited_processes_on_its_host(client, app):
    write_patients(client, 2)
    dead, live = seqs(app)
    exited = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    until = datetime.now(UTC) + timedelta(minutes=10)
    change(app, dead, claimed_by=f"node-a:{exited.stdout.strip()}", claimed_until=until)
    change(app, live, claimed_by=f"node-a:{os.getpid()}", claimed_until=until)
    worker = SyncWorker(app.extensions["ilp"], upstream=None, name="node-a:1")

    assert worker.release_dead_claims() == 1
    assert [r.seq for r in claim(app, "node-a:1", datetime.now(UTC))] == [dead]


# re-queueing -----------------------------------------------------------------------------------


def test_requeue_puts_failed_and_parked_rows_back_with_fresh_attempts(client, app):
    write_patients(client, 4)
    sent, failed, parked, pending = seqs(app)
    change(app, sent, state=outbox.SENT, attempts=1)
    change(app, failed, state=outbox.FAILED, attempts=12, reason="gave up")
    change(app, parked, state=outbox.PARKED, attempts=1, not_before=T0 + timedelta(days=1))
    change(app, pending, attempts=3, not_before=T0 + timedelta(days=1))

    with app.extensions["ilp"].unit_of_work(write=True) as uow:
        assert outbox.requeue(uow.connection, T0) == 2

    claimed = claim(app, "host:1", T0)
    assert [(r.seq, r.attempts) for r in claimed] == [(failed, 1), (parked, 1)]
    with app.extensions["ilp"].unit_of_work() as uow:
        assert outbox.counts(uow.connection) == {"pending": 3, "sent": 1, "failed": 0, "parked": 0}


def test_requeue_of_named_rows_only(client, app):
    write_patients(client, 3)
    one, two, three = seqs(app)
    for seq in (one, two, three):
        change(app, seq, state=outbox.FAILED)

    with app.extensions["ilp"].unit_of_work(write=True) as uow:
        assert outbox.requeue(uow.connection, T0, [two, three, 999]) == 2

    assert [state for *_, state in rows(app)] == ["failed", "pending", "pending"]
