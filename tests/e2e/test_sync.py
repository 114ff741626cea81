"""End to end: ``ilp sync`` from a Puskesmas node to a national node, both gunicorn on loopback.

The national node runs in national mode (``docs/national-mode.md``): SATUSEHAT's token endpoint
and ``/fhir-r4/v1`` behind a bearer token, its own SQLite file, no outbox, the ILP profiles
enforced as by default.  It is seeded with what SATUSEHAT would already know: the facility's
Organization and, as its master patient index, every Patient and Practitioner with a NIK
(POSTed without references, so national ids differ from local ones).

- ``test_import_then_sync``: the demo district imported at the Puskesmas through the mappers
  (``ilp demo export DIR --import``), then ``ilp sync once`` with persons looked up by NIK.
  Every resource that can go up is on the national node exactly once, found by its
  ``sys-ids.kemkes.go.id`` identifier, with its references rewritten to the national ids of
  what the Puskesmas referenced and its times in UTC; persons without a NIK, and everything
  that hangs on them, are parked with their reason; a second run sends nothing.
- ``test_crash_and_concurrency``: a smaller demo district (``ilp demo load``) on PostgreSQL,
  persons created upstream (as between ILP nodes), one request per resource and transaction
  Bundles: ``ilp sync run`` killed with SIGKILL at random moments while it sends (22 times),
  one worker and then two at once (``SKIP LOCKED`` claims), restarted each time, then
  ``ilp sync once``: nothing lost, nothing twice upstream, every reference national.  The
  claims of killed workers last ten minutes, so the test also shows that restarts free them.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from server.services.sync.prepare import facility_system, has_identifier
from server.storage.schema import Resource, ResourceVersion, SyncIdMap, SyncOutbox
from tests.conftest import fresh_postgres_database
from tests.e2e.conftest import ILP, ROOT, _free_port, gunicorn

pytestmark = pytest.mark.e2e

NIK = "https://fhir.kemkes.go.id/id/nik"
PERSONS = ("Patient", "Practitioner")
# The facility: the demo's Puskesmas of kecamatan 526001 and its synthetic SATUSEHAT id.
ORGANIZATION_ID = "10526001"
FACILITY_CODE = "pkm-526001"
CLIENT_ID = "puskesmas-526001"
NO_NIK = f"has no NIK ({NIK}) to look up upstream"
# a dateTime or instant with a time zone
DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})")
KILLS_ALONE, KILLS_TOGETHER = 6, 8  # SIGKILLs with one worker, then with two at once
CRASH_OBSERVATIONS = 1200  # about 1,800 resources: enough to outlast the kills
HOST = socket.gethostname()  # workers are named host:pid

_R = Resource.__table__
_O = SyncOutbox.__table__

Key = tuple[str, str]
_DROP = object()


# processes ------------------------------------------------------------------------------------


def _environment(database_url: str, **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ILP_")}
    env.update(ILP_DATABASE_URL=database_url, ILP_LOG_LEVEL="WARNING")
    # /fhir-r4/v1 still needs tokens (national mode); /fhir is read by the test itself
    env.update(ILP_AUTH="off", ILP_RATE_LIMIT="0")
    # every resource is counted upstream; tests/indicators covers the derived z-scores
    env.update(ILP_DERIVE_GROWTH="off")
    env.update({f"ILP_{name.upper()}": value for name, value in settings.items()})
    return env


def _ilp(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [str(ILP), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"ilp {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


class National:
    """The national node's root URL, its database and an authenticated session."""

    def __init__(self, root: str, database_url: str, secret: str) -> None:
        self.root, self.database_url, self.secret = root, database_url, secret
        self.fhir = f"{root}/fhir-r4/v1"
        self.session = requests.Session()
        answer = self.session.post(
            f"{root}/oauth2/v1/accesstoken?grant_type=client_credentials",
            data={"client_id": CLIENT_ID, "client_secret": secret},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        self.session.headers.update(
            {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
        )

    def sender(self, env: dict[str, str], facility: str, persons: str) -> dict[str, str]:
        """``env`` and the ``ILP_UPSTREAM_*``, ``ILP_SYNC_*`` settings of a node sending here."""
        return {
            **env,
            "ILP_UPSTREAM_URL": self.fhir,
            "ILP_UPSTREAM_TOKEN_URL": f"{self.root}/oauth2/v1/accesstoken",
            "ILP_UPSTREAM_CLIENT_ID": CLIENT_ID,
            "ILP_UPSTREAM_CLIENT_SECRET": self.secret,
            "ILP_UPSTREAM_ORGANIZATION_ID": ORGANIZATION_ID,
            "ILP_SYNC_FACILITY": facility,
            "ILP_SYNC_PERSONS": persons,
        }


@contextlib.contextmanager
def _national_node(folder: Path) -> Iterator[National]:
    """gunicorn (2 workers) in national mode on its own SQLite file, without an outbox."""
    port, secret = _free_port(), secrets.token_hex(32)
    database_url = f"sqlite:///{folder / 'national.sqlite3'}"
    env = _environment(
        database_url,
        base_url=f"http://127.0.0.1:{port}/fhir",
        national_clients=f"{CLIENT_ID}:{secret}",
        outbox="false",
    )
    _ilp(env, "db", "upgrade")
    log_path = folder / "national.log"
    ready = f"http://127.0.0.1:{port}/fhir/metadata"
    with gunicorn(env, port, log_path, ready, stdout_to_log=True):
        yield National(f"http://127.0.0.1:{port}", database_url, secret)


# databases ------------------------------------------------------------------------------------


def _dump(database_url: str) -> dict[Key, dict[str, Any]]:
    """Every live resource of a database, by (type, id)."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(_R.c.res_type, _R.c.res_id, _R.c.content).where(_R.c.deleted.is_(False))
            ).all()
    finally:
        engine.dispose()
    return {(row.res_type, row.res_id): row.content for row in rows}


def _query(database_url: str, statement: Any) -> list[Any]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(statement).all())
    finally:
        engine.dispose()


def _version_count(database_url: str) -> int:
    return _query(database_url, sa.select(sa.func.count()).select_from(ResourceVersion))[0][0]


def _id_map(database_url: str) -> dict[Key, str]:
    table = SyncIdMap.__table__
    rows = _query(database_url, sa.select(table.c.res_type, table.c.res_id, table.c.upstream_id))
    return {(row.res_type, row.res_id): row.upstream_id for row in rows}


# FHIR content ---------------------------------------------------------------------------------


def _references(value: Any) -> list[Key]:
    """Every ``Type/id`` reference in a resource, as (type, id); fails on any other shape."""
    found: list[Key] = []
    if isinstance(value, dict):
        reference = value.get("reference")
        if isinstance(reference, str):
            target = reference.split("/")
            assert len(target) == 2, f"not a Type/id reference: {reference}"
            found.append((target[0], target[1]))
        for item in value.values():
            found += _references(item)
    elif isinstance(value, list):
        for item in value:
            found += _references(item)
    return found


def _date_times(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, value) of every dateTime/instant with a zone, ``meta`` left out."""
    if isinstance(value, dict):
        return [
            found
            for key, item in value.items()
            if not (path == "" and key == "meta")
            for found in _date_times(item, f"{path}.{key}")
        ]
    if isinstance(value, list):
        return [found for item in value for found in _date_times(item, path)]
    if isinstance(value, str) and DATETIME.fullmatch(value):
        return [(path, value)]
    return []


def _nik(resource: dict[str, Any]) -> str | None:
    return next((i["value"] for i in resource.get("identifier", []) if i["system"] == NIK), None)


def _without_references(value: Any, top: bool = True) -> Any:
    """The resource with every reference left out, with the smallest part that holds it."""
    if isinstance(value, dict):
        if "reference" in value:
            return _DROP
        kept = {}
        for key, item in value.items():
            new = _without_references(item, False)
            if new is _DROP:
                if not top:
                    return _DROP
                continue
            kept[key] = new
        return kept
    if isinstance(value, list):
        items = [new for new in (_without_references(item, False) for item in value)]
        kept_items = [item for item in items if item is not _DROP]
        return kept_items if kept_items or not value else _DROP
    return value


def _register_facility(national: National) -> None:
    """The facility's Organization, registered at the national platform before any sync."""
    answer = national.session.put(
        f"{national.fhir}/Organization/{ORGANIZATION_ID}",
        json={"resourceType": "Organization", "id": ORGANIZATION_ID, "name": "Puskesmas"},
    )
    assert answer.status_code == 201, answer.text


def _seed_persons(national: National, local: dict[Key, dict[str, Any]]) -> dict[Key, str]:
    """SATUSEHAT's master patient index: every local person with a NIK, without references.

    Returns the national id of each seeded local person.
    """
    seeded = {}
    for (res_type, res_id), resource in local.items():
        if res_type not in PERSONS or not _nik(resource):
            continue
        body = _without_references(resource)
        del body["id"], body["meta"]
        answer = national.session.post(f"{national.fhir}/{res_type}", json=body)
        assert answer.status_code == 201, answer.text
        seeded[(res_type, res_id)] = answer.json()["id"]
        assert seeded[(res_type, res_id)] != res_id
    return seeded


def _by_facility_identifier(national: dict[Key, dict[str, Any]]) -> dict[Key, list[str]]:
    """National ids by (type, local id), from the ``sys-ids`` identifier of the facility."""
    found: dict[Key, list[str]] = defaultdict(list)
    for (res_type, res_id), resource in national.items():
        system = facility_system(res_type, ORGANIZATION_ID)
        for identifier in resource.get("identifier", []):
            if identifier.get("system") == system:
                found[(res_type, identifier["value"])].append(res_id)
    return found


def _hanging_on(local: dict[Key, dict[str, Any]], roots: set[Key]) -> set[Key]:
    """``roots`` and every resource that references one of them, directly or not.

    Persons are looked up upstream, never sent: what they reference does not hold them back.
    """
    hanging = set(roots)
    references = {k: set(_references(r)) for k, r in local.items() if k[0] not in PERSONS}
    while True:
        more = {key for key, targets in references.items() if targets & hanging} - hanging
        if not more:
            return hanging
        hanging |= more


def _check_upstream(
    local: dict[Key, dict[str, Any]],
    national: dict[Key, dict[str, Any]],
    sent: set[Key],
    national_id: dict[Key, str],
) -> None:
    """Each sent resource's national copy: references translated, the same moments in UTC."""
    shifted = 0  # local times in another zone (WITA)
    for key in sent:
        res_type, res_id = key
        copy = national[(res_type, national_id[key])]
        expected = [(t, national_id[(t, i)]) for t, i in _references(local[key])]
        if res_type == "Organization" and "partOf" not in local[key]:
            expected.append(("Organization", ORGANIZATION_ID))  # under the facility upstream
        assert Counter(_references(copy)) == Counter(expected), f"references of {key}"
        before, after = _date_times(local[key]), _date_times(copy)
        assert [path for path, _ in before] == [path for path, _ in after], key
        for (path, old), (_, new) in zip(before, after, strict=True):
            assert new.endswith(("Z", "+00:00")), f"{key} {path} not in UTC: {new}"
            assert datetime.fromisoformat(old) == datetime.fromisoformat(new), f"{key} {path}"
            shifted += not old.endswith(("Z", "+00:00"))
    assert shifted > len(sent) // 2  # visit and measurement times: not a vacuous check
    for key, resource in national.items():
        for target in _references(resource):
            assert target in national, f"{key[0]}/{key[1]} references {target}, not on the node"


def _status(env: dict[str, str]) -> dict[str, Any]:
    return json.loads(_ilp(env, "sync", "status", "--json", "--limit", "1000000"))


# the sync of an imported district ---------------------------------------------------------------


@pytest.fixture(scope="module")
def imported_district(tmp_path_factory):
    """A Puskesmas database holding the demo district imported through the mappers."""
    folder = tmp_path_factory.mktemp("imported")
    environment = _environment(f"sqlite:///{folder / 'puskesmas.sqlite3'}")
    _ilp(environment, "db", "upgrade")
    _ilp(environment, "demo", "export", str(folder / "files"), "--import")
    return folder / "puskesmas.sqlite3"


def test_import_then_sync(imported_district, tmp_path):
    """SATUSEHAT's way: one request per resource, persons looked up by NIK."""
    shutil.copy(imported_district, tmp_path / "puskesmas.sqlite3")
    puskesmas_url = f"sqlite:///{tmp_path / 'puskesmas.sqlite3'}"
    puskesmas = _environment(puskesmas_url)
    local = _dump(puskesmas_url)
    (facility,) = [
        key[1]
        for key, resource in local.items()
        if key[0] == "Organization"
        and any(i["value"] == FACILITY_CODE for i in resource.get("identifier", []))
    ]

    with _national_node(tmp_path) as national:
        _register_facility(national)
        seeded = _seed_persons(national, local)
        seeded_versions = _version_count(national.database_url)
        sync = national.sender(puskesmas, facility, "lookup")
        report = _ilp(sync, "sync", "once")
        assert "failed 0" in report, report
        upstream = _dump(national.database_url)
        status = _status(sync)

        # Parked: the persons without a NIK, and whatever references them (directly or not).
        no_nik = {k for k, r in local.items() if k[0] in PERSONS and not _nik(r)}
        parked = _hanging_on(local, no_nik)
        assert no_nik and len(parked) > len(no_nik)
        assert status["outbox"]["pending"] == status["outbox"]["failed"] == 0, status["outbox"]
        problems = status["problems"]
        assert {p["state"] for p in problems} == {"parked"}
        assert {tuple(p["resource"].split("/")) for p in problems} == parked
        names = {f"{t}/{i}" for t, i in no_nik}
        for problem in problems:
            # "waits for Encounter/e: waits for Practitioner/k: Practitioner/k has no NIK (...)"
            person, _, reason = problem["reason"].rpartition(": ")[2].partition(" ")
            assert person in names and reason == NO_NIK, problem

        # Everything else is there, once, under national ids.
        sent = set(local) - parked
        assert status["outbox"]["sent"] >= len(sent)
        found = _by_facility_identifier(upstream)
        national_id = {("Organization", facility): ORGANIZATION_ID}
        for key in sent:
            if key[0] in PERSONS:
                national_id[key] = seeded[key]  # looked up by NIK, never created
            elif key[1] != facility:
                assert has_identifier(key[0])
                assert len(found[key]) == 1, f"{key}: {found[key]} upstream"
                national_id[key] = found[key][0]
        created = Counter(t for t, i in sent if t not in PERSONS and i != facility)
        expected = created + Counter(t for t, _ in seeded) + Counter(["Organization"])
        assert Counter(t for t, _ in upstream) == expected
        assert {k: national_id[k] for k in _id_map(puskesmas_url)} == _id_map(puskesmas_url)
        assert not set(upstream) & set(local)  # national ids everywhere
        _check_upstream(local, upstream, sent - {("Organization", facility)}, national_id)

        # Nothing is left to send: a second run sends nothing and writes nothing upstream.
        assert _version_count(national.database_url) > seeded_versions
        versions = _version_count(national.database_url)
        again = _ilp(sync, "sync", "once")
        assert again.strip() == "sent 0, postponed 0, failed 0, parked 0"
        assert _version_count(national.database_url) == versions


# crashes and concurrent workers ----------------------------------------------------------------


class _Workers:
    """``ilp sync run`` processes, started and SIGKILLed; what each kill left claimed."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env, self.folder = env, folder
        self.running: list[subprocess.Popen[str]] = []
        self.logs: dict[int, Path] = {}
        self.kills = self.mid_batch = 0

    def start(self, count: int) -> None:
        """Start ``count`` workers at once; return when each is about to claim."""
        started = []
        for _ in range(count):
            log_path = self.folder / f"worker-{len(self.logs)}.log"
            with log_path.open("w") as log:
                process = subprocess.Popen(
                    [str(ILP), "sync", "run", "--idle", "0.2"],
                    cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=log, text=True,
                )  # fmt: skip
            self.logs[process.pid] = log_path
            started.append(process)
        for process in started:
            assert process.stdout is not None
            line = process.stdout.readline()  # printed once it is about to claim
            assert line.startswith("ilp sync: sending to"), self._failure(process)
            self.running.append(process)

    def kill_one(self, chance: random.Random) -> None:
        process = self.running.pop(chance.randrange(len(self.running)))
        assert process.poll() is None, self._failure(process)
        os.kill(process.pid, signal.SIGKILL)
        _reap(process)
        self.kills += 1
        claimed = _query(
            self.env["ILP_DATABASE_URL"],
            sa.select(sa.func.count())
            .select_from(_O)
            .where(_O.c.state == "pending", _O.c.claimed_by == f"{HOST}:{process.pid}"),
        )[0][0]
        self.mid_batch += claimed > 0

    def kill_all(self) -> None:
        for process in self.running:
            process.kill()
            _reap(process)
        self.running = []

    def _failure(self, process: subprocess.Popen[str]) -> str:
        process.kill()
        _reap(process)
        return f"ilp sync run exited:\n{self.logs[process.pid].read_text()}"


def _reap(process: subprocess.Popen[str]) -> None:
    process.wait()
    if process.stdout is not None:
        process.stdout.close()


# SATUSEHAT's one request per resource, and transaction Bundles (between ILP nodes)
BUNDLE_SIZES = [pytest.param("1", id="one-by-one"), pytest.param("25", id="bundles")]


@pytest.mark.parametrize("bundle_size", BUNDLE_SIZES)
def test_crash_and_concurrency(bundle_size, tmp_path):
    seed = secrets.randbits(32)
    chance = random.Random(seed)
    with (
        fresh_postgres_database("ilp_e2e_sync") as puskesmas_url,
        _national_node(tmp_path) as national,
    ):
        puskesmas = _environment(puskesmas_url, sync_bundle_size=bundle_size)
        _ilp(puskesmas, "demo", "load", "--observations", str(CRASH_OBSERVATIONS))
        local = _dump(puskesmas_url)
        facility = ("Organization", FACILITY_CODE)
        _register_facility(national)
        sync = national.sender(puskesmas, FACILITY_CODE, "create")
        sync["ILP_SYNC_BATCH_SIZE"] = "20" if bundle_size == "1" else "50"  # 2 Bundles a batch
        workers = _Workers(sync, tmp_path)
        try:
            for _ in range(KILLS_ALONE):
                workers.start(1)
                time.sleep(chance.uniform(0.05, 0.8))
                workers.kill_one(chance)
            for _ in range(KILLS_TOGETHER // 2):  # two at once, claiming with SKIP LOCKED
                workers.start(2)
                time.sleep(chance.uniform(0.05, 0.8))
                workers.kill_one(chance)
                time.sleep(chance.uniform(0.0, 0.5))
                workers.kill_one(chance)
        finally:
            workers.kill_all()
        before_last = _status(sync)["outbox"]
        _ilp(sync, "sync", "once")
        upstream = _dump(national.database_url)
        status = _status(sync)
        national_id = _id_map(puskesmas_url)

    # The kills fell while batches were out, and the work was far from done when they ended.
    assert workers.mid_batch >= workers.kills * 3 // 4, f"{workers.mid_batch}, seed {seed}"
    assert before_last["pending"] > 0 and before_last["sent"] > 0, f"{before_last}, seed {seed}"
    # Nothing lost: every row sent, every resource mapped and found upstream by its identifier.
    assert status["outbox"] == {"pending": 0, "sent": len(local), "failed": 0, "parked": 0}
    assert status["problems"] == []
    found = _by_facility_identifier(upstream)
    assert set(national_id) == set(local)
    for key in set(local) - {facility}:
        # Nothing twice: one national resource per local one, the one the id map names.
        assert found[key] == [national_id[key]], f"{key}: {found[key]} upstream"
    assert national_id[facility] == ORGANIZATION_ID
    assert sum(map(len, found.values())) == len(local) - 1
    assert Counter(t for t, _ in upstream) == Counter(t for t, _ in local)
    _check_upstream(local, upstream, set(local) - {facility}, national_id)
