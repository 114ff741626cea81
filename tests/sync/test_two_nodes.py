"""Two real nodes: a local one (SQLite and PostgreSQL) syncing to one in national mode.

The upstream is this server with ``ILP_NATIONAL_CLIENTS`` (SATUSEHAT's token path and
``/fhir-r4/v1`` behind bearer tokens) on its own SQLite file; requests reach it through
``ForwardingTransport``.  Persons are created upstream (``sync_persons="create"``), as an ILP
node upstream expects.  Each test runs one-request-per-resource and transaction Bundles.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections import Counter
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from server import create_app
from server.config import Settings
from server.demo.district import DemoSize, generate
from server.services import demo, sync
from server.services.sync.prepare import facility_system
from server.storage import sync as outbox
from server.storage.schema import SyncIdMap, SyncOutbox
from tests.conftest import NO_PROFILE_ENFORCEMENT, NO_SECURITY
from tests.helpers import put
from tests.sync.fakes import ForwardingTransport

ORG = "100026"
CLIENT_ID, SECRET = "puskesmas-1", "s3cret:with-colon"
UPSTREAM = "http://national.test"
# 27 resources: the kabupaten, one kecamatan with its Puskesmas and one desa, one household
TINY = DemoSize(kecamatan=1, desa_per_kecamatan=1, households_per_desa=1, months=1)


def deriving(request) -> bool:
    """Whether the test is marked ``deriving``: both nodes derive z-scores."""
    return request.node.get_closest_marker("deriving") is not None


@pytest.fixture
def upstream_app(request, sqlite_template, tmp_path):
    path = tmp_path / "national.sqlite3"
    shutil.copy(sqlite_template, path)
    application = create_app(
        Settings(
            database_url=f"sqlite:///{path}",
            base_url=f"{UPSTREAM}/fhir",
            outbox=False,
            derive_growth=deriving(request),
            national_clients=f"{CLIENT_ID}:{SECRET}",
            **NO_PROFILE_ENFORCEMENT,
            **NO_SECURITY,
        )
    )
    # the facility's Organization, registered upstream before any sync
    response = put(
        application.test_client(),
        f"/fhir/Organization/{ORG}",
        {"resourceType": "Organization", "id": ORG, "name": "Puskesmas Contoh"},
    )
    assert response.status_code == 201
    yield application
    application.extensions["ilp"].engine.dispose()


@pytest.fixture(params=[1, 20], ids=["one-by-one", "bundles"])
def local_app(request, settings):
    application = create_app(
        dataclasses.replace(
            settings,
            upstream_url=f"{UPSTREAM}/fhir-r4/v1",
            upstream_token_url=f"{UPSTREAM}/oauth2/v1/accesstoken",
            upstream_client_id=CLIENT_ID,
            upstream_client_secret=SECRET,
            upstream_organization_id=ORG,
            sync_persons="create",
            sync_bundle_size=request.param,
            derive_growth=deriving(request),  # else it counts what was loaded
        )
    )
    yield application
    application.extensions["ilp"].engine.dispose()


@pytest.fixture
def transport(upstream_app):
    return ForwardingTransport(upstream_app.test_client())


def drain(local_app, transport):
    return sync.worker(local_app.extensions["ilp"], transport).drain()


def current_resources(app) -> dict[tuple[str, str], dict[str, Any]]:
    """Every resource that is not deleted, by (type, id)."""
    with app.extensions["ilp"].engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT res_type, res_id, content FROM resource WHERE NOT deleted")
        ).all()
    return {(t, i): (orjson.loads(c) if isinstance(c, str | bytes) else c) for t, i, c in rows}


def references(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [r for item in value.values() for r in references(item)]
    if isinstance(value, list):
        return [r for item in value for r in references(item)]
    return []


def by_facility_identifier(upstream) -> Counter[tuple[str, str]]:
    """How many upstream resources carry each (type, local id) as the facility identifier."""
    found: Counter[tuple[str, str]] = Counter()
    for (res_type, _), body in upstream.items():
        system = facility_system(res_type, ORG)
        for identifier in body.get("identifier", []):
            if identifier.get("system") == system:
                found[(res_type, identifier["value"])] += 1
    return found


def id_map(app) -> dict[tuple[str, str], str]:
    with app.extensions["ilp"].unit_of_work() as uow:
        return outbox.id_map(uow.connection)


def assert_in_step(local_app, upstream_app):
    """Every local resource upstream exactly once, under its mapped id; every reference resolves."""
    local = current_resources(local_app)
    upstream = current_resources(upstream_app)
    mapped = id_map(local_app)
    counts = by_facility_identifier(upstream)
    for key in local:
        assert counts[key] == 1, f"{key} is upstream {counts[key]} times"
        assert (key[0], mapped[key]) in upstream, f"{key} is mapped to a missing resource"
        assert facility_identifier(upstream[(key[0], mapped[key])]) == key[1]
    assert len(upstream) == len(local) + 1  # and the facility's Organization
    for (res_type, res_id), body in upstream.items():
        for reference in references(body):
            target = tuple(reference.split("/"))
            assert target in upstream, f"{res_type}/{res_id} names {reference}, not upstream"
    return local, upstream, mapped


def facility_identifier(body) -> str | None:
    system = facility_system(body["resourceType"], ORG)
    return next((i["value"] for i in body.get("identifier", []) if i["system"] == system), None)


def test_the_demo_district_arrives_complete_and_a_second_drain_sends_nothing(
    local_app, upstream_app, transport
):
    demo.load_demo(local_app.extensions["ilp"], TINY)
    generated = list(generate(TINY))

    report = drain(local_app, transport)

    assert (report.sent, report.failed, report.parked, report.postponed) == (
        len(generated),
        0,
        0,
        0,
    )
    local, upstream, _ = assert_in_step(local_app, upstream_app)
    assert len(local) == len(generated)
    status = sync.status(local_app.extensions["ilp"])
    assert status["outbox"] == {"pending": 0, "sent": len(generated), "failed": 0, "parked": 0}
    assert status["mapped"] == len(generated)
    # a visit time arrives in UTC; the local copy keeps its zone
    encounter = next(r for r in generated if r["resourceType"] == "Encounter")
    local_start = local[("Encounter", encounter["id"])]["period"]["start"]
    upstream_start = upstream[("Encounter", id_map(local_app)[("Encounter", encounter["id"])])][
        "period"
    ]["start"]
    assert local_start.endswith(("+07:00", "+08:00", "+09:00"))
    assert upstream_start.endswith("+00:00")

    sent_before = len(transport.requests)
    again = drain(local_app, transport)

    assert again.claimed == 0
    assert len(transport.requests) == sent_before


@pytest.mark.deriving
def test_nodes_that_both_derive_hold_one_zscore_of_each(local_app, upstream_app, transport):
    demo.load_demo(local_app.extensions["ilp"], TINY)
    drain(local_app, transport)
    local, upstream, _ = assert_in_step(local_app, upstream_app)

    def zscores(resources):  # (kind, subject's NIK-less key: the day) of each z-score
        return Counter(
            (body["code"]["coding"][0]["code"], body["effectiveDateTime"][:10])
            for (res_type, _), body in resources.items()
            if res_type == "Observation" and "derivedFrom" in body
        )

    assert sum(zscores(local).values()) > 0
    assert zscores(upstream) == zscores(local)  # the received ones, none derived again


def test_an_update_and_a_delete_propagate(local_app, upstream_app, transport):
    demo.load_demo(local_app.extensions["ilp"], TINY)
    drain(local_app, transport)
    mapped = id_map(local_app)
    local = current_resources(local_app)
    patient_id = next(i for t, i in local if t == "Patient")
    observation_id = next(i for t, i in local if t == "Observation")
    client = local_app.test_client()

    changed = {**local[("Patient", patient_id)], "gender": "other"}
    assert put(client, f"/fhir/Patient/{patient_id}", changed).status_code == 200
    assert client.delete(f"/fhir/Observation/{observation_id}").status_code == 204
    report = drain(local_app, transport)

    assert (report.sent, report.failed, report.parked) == (2, 0, 0)
    national = upstream_app.test_client()
    assert (
        national.get(f"/fhir/Patient/{mapped[('Patient', patient_id)]}").get_json()["gender"]
        == "other"
    )
    assert (
        national.get(f"/fhir/Observation/{mapped[('Observation', observation_id)]}").status_code
        == 410
    )
    assert_in_step(local_app, upstream_app)


def test_a_lost_id_map_sends_nothing_twice(local_app, upstream_app, transport):
    # A worker that sent everything and died before recording: every row back to pending,
    # no upstream ids known.  Conditional creates must find what is already there.
    demo.load_demo(local_app.extensions["ilp"], TINY)
    drain(local_app, transport)
    with local_app.extensions["ilp"].engine.begin() as connection:
        connection.execute(sa.delete(SyncIdMap.__table__))
        connection.execute(sa.update(SyncOutbox.__table__).values(state="pending", attempts=0))
    before = current_resources(upstream_app)

    report = drain(local_app, transport)

    assert report.failed == 0 and report.parked == 0
    _, upstream, _ = assert_in_step(local_app, upstream_app)
    assert set(upstream) == set(before)


def test_a_cycle_arrives_with_both_references(local_app, upstream_app, transport):
    client = local_app.test_client()
    nik = "https://fhir.kemkes.go.id/id/nik"
    put(
        client,
        "/fhir/Patient/pat-1",
        {"resourceType": "Patient", "id": "pat-1", "identifier": [{"system": nik, "value": "1"}]},
    )
    put(
        client,
        "/fhir/Encounter/enc-1",
        {
            "resourceType": "Encounter",
            "id": "enc-1",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": "Patient/pat-1"},
            "diagnosis": [{"condition": {"reference": "Condition/cond-1"}}],
        },
    )
    put(
        client,
        "/fhir/Condition/cond-1",
        {
            "resourceType": "Condition",
            "id": "cond-1",
            "subject": {"reference": "Patient/pat-1"},
            "encounter": {"reference": "Encounter/enc-1"},
        },
    )

    drain(local_app, transport)

    _, upstream, mapped = assert_in_step(local_app, upstream_app)
    encounter = upstream[("Encounter", mapped[("Encounter", "enc-1")])]
    condition = upstream[("Condition", mapped[("Condition", "cond-1")])]
    assert encounter["diagnosis"] == [
        {"condition": {"reference": f"Condition/{mapped[('Condition', 'cond-1')]}"}}
    ]
    assert condition["encounter"] == {"reference": f"Encounter/{mapped[('Encounter', 'enc-1')]}"}
    assert drain(local_app, transport).claimed == 0


def test_requests_carry_the_national_token(local_app, upstream_app, transport):
    demo.load_demo(local_app.extensions["ilp"], TINY)

    drain(local_app, transport)

    token_requests = [r for r in transport.requests if "accesstoken" in r.path]
    assert len(token_requests) == 1
    assert all(r.token for r in transport.fhir())
    assert all(r.reply.status < 400 for r in transport.requests)
