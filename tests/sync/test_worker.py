"""The sync worker against a scripted upstream, on SQLite and PostgreSQL.

The local node is the real app (writes through its FHIR API fill the outbox); the upstream is
``FakeUpstream``, a SATUSEHAT look-alike that needs a bearer token and records every request.
Tests taking ``node``/``make_node`` run in both sending modes (one request per resource, and
transaction Bundles); ``test_one_by_one_*`` and ``test_bundles_*`` are about one mode.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from server import create_app
from server.cli import main
from server.services import sync
from server.services.sync.transport import Reply, TransportError
from server.services.sync.upstream import Upstream
from server.services.sync.worker import SyncWorker
from server.storage import sync as outbox
from server.storage.schema import SyncOutbox
from tests.helpers import put
from tests.sync.fakes import BASE, TOKEN_URL, FakeUpstream, Request, lose_reply, outcome_reply

ORG = "100026"  # the facility's Organization id at the upstream
NIK = "https://fhir.kemkes.go.id/id/nik"
SYS_IDS = "http://sys-ids.kemkes.go.id"
OUTBOX = SyncOutbox.__table__


class Clock:
    """The worker's clock: real time at first, moved on by the tests."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Node:
    """The local node, its upstream and the worker's clock."""

    app: Any
    fake: FakeUpstream
    clock: Clock

    @property
    def context(self):
        return self.app.extensions["ilp"]

    @property
    def client(self):
        return self.app.test_client()

    def worker(self) -> SyncWorker:
        upstream = Upstream(self.context.settings, self.fake)
        return SyncWorker(
            self.context, upstream, name="test-host:1", now=self.clock, jitter=lambda: 0.0
        )

    def drain(self):
        return self.worker().drain()

    def write(self, resource: dict[str, Any]) -> str:
        path = f"/fhir/{resource['resourceType']}/{resource['id']}"
        response = put(self.client, path, resource)
        assert response.status_code in (200, 201), response.get_json()
        return f"{resource['resourceType']}/{resource['id']}"

    def delete(self, reference: str) -> None:
        assert self.client.delete(f"/fhir/{reference}").status_code == 204

    def rows(self) -> list[dict[str, Any]]:
        with self.context.engine.connect() as connection:
            found = connection.execute(sa.select(OUTBOX).order_by(OUTBOX.c.seq)).mappings().all()
        return [dict(row) for row in found]

    def states(self) -> dict[str, str]:
        """The state of each resource's newest outbox row."""
        return {f"{r['res_type']}/{r['res_id']}": r["state"] for r in self.rows()}

    def upstream_id(self, reference: str) -> str | None:
        with self.context.unit_of_work() as uow:
            return outbox.upstream_id(uow.connection, *reference.split("/"))

    def status(self) -> dict[str, Any]:
        return sync.status(self.context)

    def problem(self, reference: str) -> dict[str, Any]:
        [found] = [p for p in self.status()["problems"] if p["resource"] == reference]
        return found


def sync_settings(settings, **overrides):
    values = {
        "upstream_url": BASE,
        "upstream_token_url": TOKEN_URL,
        "upstream_client_id": "puskesmas-1",
        "upstream_client_secret": "secret",
        "upstream_organization_id": ORG,
        "sync_max_attempts": 3,
        **overrides,
    }
    return dataclasses.replace(settings, **values)


@pytest.fixture
def node_factory(settings):
    """Nodes that send one request per resource (the default, SATUSEHAT's REST calls)."""
    apps = []

    def make(**overrides) -> Node:
        application = create_app(sync_settings(settings, **overrides))
        apps.append(application)
        return Node(application, FakeUpstream(), Clock())

    yield make
    for application in apps:
        application.extensions["ilp"].engine.dispose()


@pytest.fixture(params=[1, 20], ids=["one-by-one", "bundles"])
def make_node(request, node_factory):
    """Nodes of each sending mode: one request per resource, or transaction Bundles."""
    return lambda **overrides: node_factory(**{"sync_bundle_size": request.param, **overrides})


@pytest.fixture
def node(make_node):
    return make_node()


# resources -------------------------------------------------------------------------------------


def patient(res_id="pat-1", nik="3201234567890001"):
    body = {
        "resourceType": "Patient",
        "id": res_id,
        "name": [{"text": "Siti Aminah"}],
        "birthDate": "1990-04-01",
    }
    if nik:
        body["identifier"] = [{"system": NIK, "value": nik}]
    return body


def practitioner(res_id="nakes-1", nik="3201234567890099"):
    return {
        "resourceType": "Practitioner",
        "id": res_id,
        "identifier": [{"system": NIK, "value": nik}],
        "name": [{"text": "Bidan Rina"}],
    }


def organization(res_id="posy-1", part_of=None):
    body = {"resourceType": "Organization", "id": res_id, "name": "Posyandu Mawar"}
    if part_of:
        body["partOf"] = {"reference": part_of}
    return body


def location(res_id="loc-1", organization_id="posy-1"):
    return {
        "resourceType": "Location",
        "id": res_id,
        "name": "Balai Desa",
        "managingOrganization": {"reference": f"Organization/{organization_id}"},
    }


def encounter(res_id="enc-1", patient_id="pat-1", **extra):
    return {
        "resourceType": "Encounter",
        "id": res_id,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": "2026-11-02T09:00:00+07:00", "end": "2026-11-02T09:20:00+07:00"},
        **extra,
    }


def observation(res_id="obs-1", patient_id="pat-1", encounter_id="enc-1", value=12.4):
    body = {
        "resourceType": "Observation",
        "id": res_id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": "2026-11-02T09:30:00+07:00",
        "valueQuantity": {
            "value": value,
            "unit": "kg",
            "system": "http://unitsofmeasure.org",
            "code": "kg",
        },
    }
    if encounter_id:
        body["encounter"] = {"reference": f"Encounter/{encounter_id}"}
    return body


def known_upstream(fake: FakeUpstream, res_type: str, nik: str, upstream_id: str) -> str:
    """A person SATUSEHAT already knows by NIK."""
    return fake.add(
        {"resourceType": res_type, "id": upstream_id, "identifier": [{"system": NIK, "value": nik}]}
    )


def references(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [r for item in value.values() for r in references(item)]
    if isinstance(value, list):
        return [r for item in value for r in references(item)]
    return []


def created(request: Request) -> str | None:
    """``Type/id`` a POST created or matched upstream, from its answer."""
    if request.method != "POST" or request.reply is None or request.reply.status >= 300:
        return None
    location = request.reply.headers.get("location") or request.reply.headers.get(
        "content-location"
    )
    parts = location.split("/")
    return f"{parts[-4]}/{parts[-3]}"


def facility_identifier(body: dict[str, Any], res_type: str) -> str | None:
    system = f"{SYS_IDS}/{res_type.lower()}/{ORG}"
    values = [i["value"] for i in body.get("identifier", []) if i.get("system") == system]
    return values[0] if len(values) == 1 else None


# the happy path --------------------------------------------------------------------------------


def write_visit(node: Node) -> None:
    """A Posyandu visit, dependants written before what they reference."""
    node.write(observation())
    node.write(
        encounter(
            participant=[{"individual": {"reference": "Practitioner/nakes-1"}}],
            location=[{"location": {"reference": "Location/loc-1"}}],
            serviceProvider={"reference": "Organization/posy-1"},
        )
    )
    node.write(location())
    node.write(organization())
    node.write(practitioner())
    node.write(patient())


def test_one_by_one_a_visit_goes_up_dependencies_first_with_upstream_references(node_factory):
    node = node_factory()
    patient_up = known_upstream(node.fake, "Patient", "3201234567890001", "P02478375538")
    nakes_up = known_upstream(node.fake, "Practitioner", "3201234567890099", "N10000001")
    write_visit(node)

    report = node.drain()

    assert (report.sent, report.failed, report.parked, report.postponed) == (6, 0, 0, 0)
    assert set(node.states().values()) == {"sent"}
    # persons are looked up by NIK, never created
    assert node.fake.fhir("POST", "Patient") == [] and node.fake.fhir("POST", "Practitioner") == []
    assert node.upstream_id("Patient/pat-1") == patient_up
    assert node.upstream_id("Practitioner/nakes-1") == nakes_up
    # every reference sent names a resource the upstream already had
    known = {f"Patient/{patient_up}", f"Practitioner/{nakes_up}", f"Organization/{ORG}"}
    for request in node.fake.fhir("POST"):
        assert set(references(request.body)) <= known, request.body
        known.add(created(request))
    assert [created(r).split("/")[0] for r in node.fake.fhir("POST")] == [
        "Organization",
        "Location",
        "Encounter",
        "Observation",
    ]
    sent = node.fake.fhir("POST", "Observation")[0].body
    assert sent["subject"] == {"reference": f"Patient/{patient_up}"}
    assert sent["encounter"] == {"reference": f"Encounter/{node.upstream_id('Encounter/enc-1')}"}


def test_a_visit_arrives_whole_with_upstream_references(node):
    patient_up = known_upstream(node.fake, "Patient", "3201234567890001", "P02478375538")
    nakes_up = known_upstream(node.fake, "Practitioner", "3201234567890099", "N10000001")
    write_visit(node)

    report = node.drain()

    assert (report.sent, report.failed, report.parked, report.postponed) == (6, 0, 0, 0)
    assert node.fake.sent("POST", "Patient") == [] and node.fake.sent("POST", "Practitioner") == []
    local_ids = {"enc-1", "obs-1", "loc-1", "posy-1", "pat-1", "nakes-1"}
    for (res_type, res_id), body in node.fake.store.items():
        for reference in references(body):
            assert (
                tuple(reference.split("/")) in node.fake.store or reference == f"Organization/{ORG}"
            )
            assert reference.split("/")[1] not in local_ids, f"{res_type}/{res_id}: {reference}"
    [upstream_observation] = node.fake.resources("Observation")
    assert upstream_observation["subject"] == {"reference": f"Patient/{patient_up}"}
    [upstream_encounter] = node.fake.resources("Encounter")
    assert upstream_encounter["participant"][0]["individual"] == {
        "reference": f"Practitioner/{nakes_up}"
    }
    assert upstream_observation["encounter"] == {
        "reference": f"Encounter/{upstream_encounter['id']}"
    }
    for key in ("Observation/obs-1", "Encounter/enc-1", "Location/loc-1", "Organization/posy-1"):
        res_type, res_id = key.split("/")
        assert (
            facility_identifier(node.fake.store[(res_type, node.upstream_id(key))], res_type)
            == res_id
        )


def test_each_new_resource_is_sent_once(node):
    known_upstream(node.fake, "Patient", "3201234567890001", "P02478375538")
    known_upstream(node.fake, "Practitioner", "3201234567890099", "N10000001")
    write_visit(node)

    node.drain()

    sent = [
        (r.method, r.path.rsplit("/fhir-r4/v1/", 1)[1].split("/")[0])
        for r in node.fake.sent()
        if r.method != "GET"
    ]
    assert sorted(sent) == [
        ("POST", "Encounter"),
        ("POST", "Location"),
        ("POST", "Observation"),
        ("POST", "Organization"),
    ]


def test_times_go_in_utc_and_the_local_store_keeps_its_zone(node):
    known_upstream(node.fake, "Patient", "3201234567890001", "P1")
    node.write(patient())
    node.write(encounter())
    node.write(observation())

    node.drain()

    sent_encounter = node.fake.sent("POST", "Encounter")[0].body
    sent_observation = node.fake.sent("POST", "Observation")[0].body
    assert sent_encounter["period"] == {
        "start": "2026-11-02T02:00:00+00:00",
        "end": "2026-11-02T02:20:00+00:00",
    }
    assert sent_observation["effectiveDateTime"] == "2026-11-02T02:30:00+00:00"
    local = node.client.get("/fhir/Observation/obs-1").get_json()
    assert local["effectiveDateTime"] == "2026-11-02T09:30:00+07:00"


def test_creates_carry_the_facility_identifier_conditionally(node):
    known_upstream(node.fake, "Patient", "3201234567890001", "P1")
    node.write(patient())
    node.write(encounter())

    node.drain()

    [post] = node.fake.sent("POST", "Encounter")
    system = f"{SYS_IDS}/encounter/{ORG}"
    assert facility_identifier(post.body, "Encounter") == "enc-1"
    assert post.header["if-none-exist"] == f"identifier={system}|enc-1"
    assert "id" not in post.body and "meta" not in post.body
    assert all(r.token for r in node.fake.fhir())


def test_a_second_drain_sends_nothing(node):
    known_upstream(node.fake, "Patient", "3201234567890001", "P1")
    node.write(patient())
    node.write(encounter())
    node.drain()
    sent_before = len(node.fake.requests)

    report = node.drain()

    assert report.claimed == 0
    assert len(node.fake.requests) == sent_before


def test_small_batches_still_send_everything(make_node):
    node = make_node(sync_batch_size=2)
    known_upstream(node.fake, "Patient", "3201234567890001", "P1")
    node.write(patient())
    for n in range(5):
        node.write(observation(f"obs-{n}", encounter_id=None))

    report = node.drain()

    assert report.sent == 6
    assert len(node.fake.resources("Observation")) == 5


def test_the_facility_organization_is_mapped_never_sent(make_node):
    node = make_node(sync_facility="pkm-1")
    known_upstream(node.fake, "Patient", "3201234567890001", "P1")
    node.write(organization("pkm-1"))
    node.write(organization("posy-1", part_of="Organization/pkm-1"))
    node.write(patient())
    node.write(encounter(serviceProvider={"reference": "Organization/pkm-1"}))

    node.drain()

    assert node.upstream_id("Organization/pkm-1") == ORG
    [posyandu] = node.fake.resources("Organization")
    assert posyandu["partOf"] == {"reference": f"Organization/{ORG}"}
    assert node.fake.resources("Encounter")[0]["serviceProvider"] == {
        "reference": f"Organization/{ORG}"
    }


def test_an_organization_without_part_of_is_placed_under_the_facility(node):
    node.write(organization("posy-1"))

    node.drain()

    assert node.fake.resources("Organization")[0]["partOf"] == {"reference": f"Organization/{ORG}"}


def test_a_cycle_is_completed_by_a_second_send(node):
    known_upstream(node.fake, "Patient", "3201234567890001", "P1")
    node.write(patient())
    node.write(encounter(diagnosis=[{"condition": {"reference": "Condition/cond-1"}, "rank": 1}]))
    node.write(
        {
            "resourceType": "Condition",
            "id": "cond-1",
            "subject": {"reference": "Patient/pat-1"},
            "encounter": {"reference": "Encounter/enc-1"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "E44.0"}]},
        }
    )

    node.drain()

    encounter_up = node.upstream_id("Encounter/enc-1")
    condition_up = node.upstream_id("Condition/cond-1")
    [sent_encounter] = node.fake.resources("Encounter")
    [sent_condition] = node.fake.resources("Condition")
    assert sent_encounter["diagnosis"] == [
        {"condition": {"reference": f"Condition/{condition_up}"}, "rank": 1}
    ]
    assert sent_condition["encounter"] == {"reference": f"Encounter/{encounter_up}"}
    assert set(node.states().values()) == {"sent"}
    assert node.drain().claimed == 0


# persons ---------------------------------------------------------------------------------------


def test_an_unknown_nik_parks_the_patient_and_what_refers_to_it(node):
    node.write(patient())
    node.write(observation(encounter_id=None))

    report = node.drain()

    assert report.parked == 2 and report.sent == 0
    assert node.states() == {"Patient/pat-1": "parked", "Observation/obs-1": "parked"}
    assert "NIK 3201234567890001 is not known upstream" in node.problem("Patient/pat-1")["reason"]
    assert "waits for Patient/pat-1" in node.problem("Observation/obs-1")["reason"]
    assert node.fake.sent("POST") == []
    assert node.fake.fhir("GET", "Patient")[0].query == {"identifier": f"{NIK}|3201234567890001"}


def test_a_patient_without_nik_is_parked(node):
    node.write(patient(nik=None))

    node.drain()

    assert node.states() == {"Patient/pat-1": "parked"}
    assert "no NIK" in node.problem("Patient/pat-1")["reason"]
    assert node.fake.fhir() == []


def test_a_visit_by_a_kader_without_nik_waits_for_the_kader(node):
    """The Encounter needs its participant upstream: it is parked, saying whom it waits for."""
    known_upstream(node.fake, "Patient", "3201234567890001", "P-UP")
    node.write(patient())
    kader = {**practitioner("kader-1"), "identifier": [{"system": "urn:kader", "value": "k1"}]}
    node.write(kader)
    node.write(encounter(participant=[{"individual": {"reference": "Practitioner/kader-1"}}]))

    node.drain()

    assert node.states()["Practitioner/kader-1"] == "parked"
    assert node.states()["Encounter/enc-1"] == "parked"
    assert "waits for Practitioner/kader-1" in node.problem("Encounter/enc-1")["reason"]
    assert node.fake.resources("Encounter") == []


def test_a_nik_matching_two_patients_upstream_is_parked(node):
    known_upstream(node.fake, "Patient", "3201234567890001", "P1")
    known_upstream(node.fake, "Patient", "3201234567890001", "P2")
    node.write(patient())

    node.drain()

    assert node.states() == {"Patient/pat-1": "parked"}
    assert "matches 2" in node.problem("Patient/pat-1")["reason"]


def test_requeue_after_the_patient_is_registered_upstream_sends_everything(node):
    node.write(patient())
    node.write(observation(encounter_id=None))
    node.drain()
    known_upstream(node.fake, "Patient", "3201234567890001", "P9")

    assert sync.requeue(node.context) == 2
    report = node.drain()

    assert report.sent == 2
    assert node.states() == {"Patient/pat-1": "sent", "Observation/obs-1": "sent"}
    assert node.fake.resources("Observation")[0]["subject"] == {"reference": "Patient/P9"}
    assert node.status()["problems"] == []


def test_persons_are_created_when_told_to(make_node):
    node = make_node(sync_persons="create")
    node.write(patient())
    node.write(observation(encounter_id=None))

    node.drain()

    [post] = node.fake.sent("POST", "Patient")
    assert post.header["if-none-exist"] == f"identifier={NIK}|3201234567890001"
    patient_up = node.upstream_id("Patient/pat-1")
    assert node.fake.resources("Observation")[0]["subject"] == {
        "reference": f"Patient/{patient_up}"
    }


def test_a_looked_up_patient_is_never_deleted_upstream(node):
    # SATUSEHAT's Patient is the national record of a person, not this facility's to delete
    known_upstream(node.fake, "Patient", "3201234567890001", "P1")
    node.write(patient())
    node.drain()
    node.delete("Patient/pat-1")

    node.drain()

    assert node.fake.sent("DELETE") == []
    assert ("Patient", "P1") in node.fake.store
    assert node.states() == {"Patient/pat-1": "sent"}


# refusals ----------------------------------------------------------------------------------------


def test_a_refusal_fails_the_row_and_keeps_the_outcome(node):
    known_upstream(node.fake, "Patient", "3201234567890001", "P1")
    node.fake.reply(
        "POST",
        r"/Encounter$",
        outcome_reply(400, "required", "Encounter.class is required"),
        repeat=True,
    )
    node.write(patient())
    node.write(encounter())

    report = node.drain()

    assert report.failed == 1
    assert node.states()["Encounter/enc-1"] == "failed"
    problem = node.problem("Encounter/enc-1")
    assert problem["state"] == "failed"
    assert "400" in problem["reason"] and "Encounter.class is required" in problem["reason"]
    assert problem["outcome"]["issue"][0]["code"] == "required"
    assert node.status()["outbox"] == {"pending": 0, "sent": 1, "failed": 1, "parked": 0}


def test_what_refers_to_a_refused_resource_waits_for_it(node):
    known_upstream(node.fake, "Patient", "3201234567890001", "P1")
    node.fake.reply(
        "POST",
        r"/Encounter$",
        outcome_reply(422, "invariant", "period.end before start"),
        repeat=True,
    )
    node.write(patient())
    node.write(observation())  # refers to the Encounter, written after it
    node.write(encounter())

    node.drain()

    assert node.states() == {
        "Patient/pat-1": "sent",
        "Observation/obs-1": "parked",
        "Encounter/enc-1": "failed",
    }
    assert "waits for Encounter/enc-1" in node.problem("Observation/obs-1")["reason"]
    assert node.fake.resources("Observation") == []


def test_requeue_after_a_fix_sends(node):
    known_upstream(node.fake, "Patient", "3201234567890001", "P1")
    node.fake.reply("POST", r"/Encounter$", outcome_reply(400, "required", "no"), repeat=True)
    node.write(patient())
    node.write(encounter())
    node.drain()
    seq = node.problem("Encounter/enc-1")["seq"]
    node.fake.clear_rules()  # fixed upstream (a code system registered, say)

    assert sync.requeue(node.context, [seq]) == 1
    report = node.drain()

    assert report.sent == 1
    assert node.states()["Encounter/enc-1"] == "sent"
    assert len(node.fake.resources("Encounter")) == 1


def test_a_reference_to_a_resource_missing_here_is_explained(node):
    known_upstream(node.fake, "Patient", "3201234567890001", "P1")
    node.write(patient())
    node.write(observation(encounter_id="enc-never-written"))

    node.drain()

    assert node.states()["Observation/obs-1"] == "parked"
    reason = node.problem("Observation/obs-1")["reason"]
    assert "Encounter/enc-never-written" in reason
    assert "does not exist" in reason  # not "the upstream refused": it was never sent


def test_a_reference_to_a_deleted_resource_parks(node):
    known_upstream(node.fake, "Patient", "3201234567890001", "P1")
    node.write(patient())
    node.write(encounter())
    node.delete("Encounter/enc-1")
    node.write(observation())

    node.drain()

    assert node.states()["Observation/obs-1"] == "parked"
    assert "deleted" in node.problem("Observation/obs-1")["reason"]


# transient failures ----------------------------------------------------------------------------


def not_before(node: Node, reference: str) -> datetime:
    res_type, res_id = reference.split("/")
    [row] = [r for r in node.rows() if (r["res_type"], r["res_id"]) == (res_type, res_id)]
    value = row["not_before"]
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_503_postpones_with_growing_backoff_then_gives_up(node):
    node.fake.reply(
        "POST", r"/Organization$", outcome_reply(503, "transient", "maintenance"), repeat=True
    )
    node.write(organization())

    first = node.drain()

    assert (first.postponed, first.sent) == (1, 0)
    assert node.states() == {"Organization/posy-1": "pending"}
    first_wait = not_before(node, "Organization/posy-1") - node.clock.now
    assert first_wait > timedelta(0)
    problem = node.problem("Organization/posy-1")
    assert problem["state"] == "pending" and "503" in problem["reason"]
    assert node.drain().claimed == 0  # not due yet: nothing is sent
    assert len(node.fake.fhir("POST")) == 1

    node.clock.advance(hours=2)
    node.drain()
    second_wait = not_before(node, "Organization/posy-1") - node.clock.now
    assert second_wait > first_wait

    node.clock.advance(hours=2)
    report = node.drain()  # the third attempt of three

    assert report.failed == 1
    assert node.states() == {"Organization/posy-1": "failed"}
    assert "gave up after 3 attempts" in node.problem("Organization/posy-1")["reason"]


def test_429_retry_after_is_honoured(node):
    node.fake.reply("POST", r"/Organization$", Reply(429, b"", {"retry-after": "120"}))
    node.write(organization())

    node.drain()

    assert not_before(node, "Organization/posy-1") == node.clock.now + timedelta(seconds=120)
    node.clock.advance(seconds=119)
    assert node.drain().claimed == 0
    node.clock.advance(seconds=1)
    assert node.drain().sent == 1


def test_no_answer_postpones(node):
    node.fake.reply("POST", r"/Organization$", TransportError("timed out"))
    node.write(organization())

    report = node.drain()

    assert report.postponed == 1
    assert "timed out" in node.problem("Organization/posy-1")["reason"]
    node.clock.advance(hours=1)
    assert node.drain().sent == 1
    assert len(node.fake.resources("Organization")) == 1


def test_one_by_one_a_lost_answer_does_not_create_twice(node_factory):
    # The upstream created the Encounter but the answer timed out.  This upstream ignores
    # If-None-Exist, so the retry must look the facility identifier up before creating.
    node = node_factory()
    node.fake.conditional_create = False
    known_upstream(node.fake, "Patient", "3201234567890001", "P1")
    node.fake.reply("POST", r"/Encounter$", lose_reply)
    node.write(patient())
    node.write(encounter())

    node.drain()
    node.clock.advance(hours=1)
    node.write(encounter(status="cancelled"))  # changed meanwhile: the retry sends this state
    report = node.drain()

    assert report.sent == 2
    [upstream_encounter] = node.fake.resources("Encounter")
    assert upstream_encounter["status"] == "cancelled"
    assert node.upstream_id("Encounter/enc-1") == upstream_encounter["id"]
    lookup = node.fake.fhir("GET", "Encounter")[0]
    assert lookup.query == {"identifier": f"{SYS_IDS}/encounter/{ORG}|enc-1"}


def test_bundles_a_lost_answer_does_not_create_twice(node_factory):
    # The whole transaction went through but its answer was lost: the retry's conditional
    # creates (ifNoneExist on the facility identifier) match what is there.
    node = node_factory(sync_bundle_size=20)
    known_upstream(node.fake, "Patient", "3201234567890001", "P1")
    node.fake.reply("POST", r"/fhir-r4/v1$", lose_reply)
    node.write(patient())
    node.write(encounter())
    node.write(observation())

    node.drain()
    assert node.states()["Encounter/enc-1"] == "pending"  # postponed: no answer
    node.clock.advance(hours=1)
    node.drain()

    assert set(node.states().values()) == {"sent"}
    assert len(node.fake.resources("Encounter")) == 1
    assert len(node.fake.resources("Observation")) == 1
    [upstream_observation] = node.fake.resources("Observation")
    assert upstream_observation["encounter"] == {
        "reference": f"Encounter/{node.upstream_id('Encounter/enc-1')}"
    }


def test_bundles_a_refused_bundle_fails_only_its_culprit(node_factory):
    node = node_factory(sync_bundle_size=20)
    node.fake.reply(
        "POST", r"/Location$", outcome_reply(422, "code-invalid", "physicalType"), repeat=True
    )
    node.write(organization("posy-1"))
    node.write(organization("posy-2"))
    node.write(location("loc-1", "posy-2"))

    report = node.drain()

    assert (report.sent, report.failed) == (2, 1)
    assert node.states() == {
        "Organization/posy-1": "sent",
        "Organization/posy-2": "sent",
        "Location/loc-1": "failed",
    }
    assert node.problem("Location/loc-1")["outcome"]["issue"][0]["code"] == "code-invalid"
    assert len(node.fake.resources("Organization")) == 2
    assert node.fake.resources("Location") == []


def test_bundles_the_report_of_a_postponed_bundle_counts_what_was_postponed(node_factory):
    # `ilp sync once` prints this report: a Patient only looked up (sent, it needs no entry)
    # must not be counted as postponed with the Bundle that failed.
    node = node_factory(sync_bundle_size=20)
    known_upstream(node.fake, "Patient", "3201234567890001", "P1")
    node.fake.reply("POST", r"/fhir-r4/v1$", Reply(503))
    node.write(patient())
    node.write(encounter())

    report = node.drain()

    assert node.states() == {"Patient/pat-1": "sent", "Encounter/enc-1": "pending"}
    assert (report.sent, report.postponed) == (1, 1)


def test_bundles_group_a_batch_into_few_requests(node_factory):
    node = node_factory(sync_bundle_size=4)
    for n in range(10):
        node.write(organization(f"posy-{n}"))

    report = node.drain()

    assert report.sent == 10
    assert len(node.fake.fhir("POST")) == 3  # 4 + 4 + 2 entries
    assert len(node.fake.resources("Organization")) == 10


def test_a_dependency_failing_transiently_postpones_the_dependant(node):
    known_upstream(node.fake, "Patient", "3201234567890001", "P1")
    node.fake.reply("POST", r"/Encounter$", outcome_reply(502, "transient", "gateway"), repeat=True)
    node.write(patient())
    node.write(observation())
    node.write(encounter())

    node.drain()

    assert node.states() == {
        "Patient/pat-1": "sent",
        "Observation/obs-1": "pending",
        "Encounter/enc-1": "pending",
    }
    assert "502" in node.problem("Observation/obs-1")["reason"]
    node.fake.clear_rules()  # the gateway is back
    node.clock.advance(hours=1)
    node.drain()
    assert set(node.states().values()) == {"sent"}
    assert len(node.fake.resources("Encounter")) == 1
    assert len(node.fake.resources("Observation")) == 1


def test_a_revoked_token_is_renewed(node):
    worker = node.worker()  # one worker: its token is cached
    node.write(organization("posy-1"))
    worker.drain()
    node.fake.expire_tokens()  # revoked upstream long before expires_in
    node.write(organization("posy-2"))

    report = worker.drain()

    assert report.sent == 1
    assert len(node.fake.token_requests) == 2
    assert len(node.fake.resources("Organization")) == 2


# updates and deletes ---------------------------------------------------------------------------


def test_an_update_is_a_put_of_the_current_state_to_the_upstream_id(node):
    node.write(organization())
    node.drain()
    upstream_id = node.upstream_id("Organization/posy-1")

    node.write({**organization(), "name": "Posyandu Melati"})
    node.write({**organization(), "name": "Posyandu Anggrek"})
    report = node.drain()

    assert report.sent == 2  # two rows, one request
    [update] = node.fake.sent("PUT")
    assert update.url == f"{BASE}/Organization/{upstream_id}"
    assert update.body["id"] == upstream_id
    assert update.body["name"] == "Posyandu Anggrek"
    assert facility_identifier(update.body, "Organization") == "posy-1"
    assert len(node.fake.resources("Organization")) == 1


def test_a_delete_deletes_the_upstream_id(node):
    node.write(organization())
    node.drain()
    upstream_id = node.upstream_id("Organization/posy-1")

    node.delete("Organization/posy-1")
    node.drain()

    [delete] = node.fake.sent("DELETE")
    assert delete.url == f"{BASE}/Organization/{upstream_id}"
    assert node.fake.resources("Organization") == []
    assert node.states() == {"Organization/posy-1": "sent"}


def test_created_and_deleted_before_a_sync_sends_nothing(node):
    node.write(organization())
    node.delete("Organization/posy-1")

    report = node.drain()

    assert report.sent == 2
    assert node.fake.fhir() == []


# the command -----------------------------------------------------------------------------------


@pytest.fixture
def command_env(monkeypatch, db_url):
    values = {
        "ILP_DATABASE_URL": db_url,
        "ILP_UPSTREAM_URL": BASE,
        "ILP_UPSTREAM_TOKEN_URL": TOKEN_URL,
        "ILP_UPSTREAM_CLIENT_ID": "puskesmas-1",
        "ILP_UPSTREAM_CLIENT_SECRET": "secret",
        "ILP_UPSTREAM_ORGANIZATION_ID": ORG,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    fake = FakeUpstream()
    monkeypatch.setattr(sync, "HttpTransport", lambda: fake)
    return fake


def test_ilp_sync_once_status_and_retry(node_factory, command_env, capsys):
    node = node_factory()
    fake = command_env
    known_upstream(fake, "Patient", "3201234567890001", "P1")
    node.write(patient())
    node.write(patient("pat-2", nik="3201234567890002"))

    assert main(["sync", "once"]) == 0
    assert capsys.readouterr().out.strip() == "sent 1, postponed 0, failed 0, parked 1"

    assert main(["sync", "status"]) == 0
    text = capsys.readouterr().out
    assert f"upstream: {BASE}" in text
    assert "pending 0, sent 1, failed 0, parked 1" in text
    assert "Patient/pat-2 parked" in text and "not known upstream" in text

    assert main(["sync", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["mapped"] == 1
    [problem] = status["problems"]
    assert problem["resource"] == "Patient/pat-2"

    known_upstream(fake, "Patient", "3201234567890002", "P2")
    assert main(["sync", "retry", "--id", str(problem["seq"])]) == 0
    assert "queued again: 1" in capsys.readouterr().err
    assert main(["sync", "once"]) == 0
    assert capsys.readouterr().out.strip() == "sent 1, postponed 0, failed 0, parked 0"
    assert node.upstream_id("Patient/pat-2") == "P2"


def test_ilp_sync_once_without_an_upstream_says_so(monkeypatch, db_url, capsys):
    monkeypatch.setenv("ILP_DATABASE_URL", db_url)

    assert main(["sync", "once"]) == 1
    assert "ILP_UPSTREAM_URL is not set" in capsys.readouterr().err
    assert main(["sync", "status"]) == 0
    assert "(ILP_UPSTREAM_URL not set)" in capsys.readouterr().out


def test_ilp_sync_retry_of_everything(node_factory, command_env, capsys):
    node = node_factory()
    node.write(patient())
    node.write(patient("pat-2", nik="3201234567890002"))
    assert main(["sync", "once"]) == 0
    capsys.readouterr()

    assert main(["sync", "retry"]) == 0

    assert "queued again: 2" in capsys.readouterr().err
    assert node.status()["outbox"] == {"pending": 2, "sent": 0, "failed": 0, "parked": 0}
