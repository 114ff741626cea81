"""Authenticated load: facility-bound clients against gunicorn, with correctness rules.

A fresh database (SQLite, or PostgreSQL with ``--db postgresql``) is served by gunicorn
(2 workers) with ILP_AUTH on.  A small district is set up: a Dinkes Organization and
``--puskesmas`` Puskesmas below it (``partOf``), each with a client bound to it (``ilp clients
add pkm-<n> --organization pkm-<n>``) that seeds its own Patients, Encounters and Observations,
and a national client bound to nothing.  Then ``--clients`` threads, each acting for one
Puskesmas with a token of its own (renewed before it expires; ILP_TOKEN_LIFETIME is short so
that happens during the run), run for ``--duration`` seconds a mix of reads, searches, creates,
updates and transaction Bundles in their own facility, and deliberate attempts on other
Puskesmas' resources.  Afterwards the national client reads back every acknowledged write and
counts the AuditEvents.

Rules, each failure making the exit status 1: no 5xx and no status other than the one intended
for the operation (403 only for the cross-facility attempts; searches across facilities answer
200 with nothing foreign); no search entry of another facility; reads of a thread's own writes
at the version acknowledged; every acknowledged write readable afterwards at the acknowledged
version with the content sent; no refused write stored; at least one AuditEvent per
acknowledged write interaction (a transaction is one) and one per refusal.  Prints a summary
and rewrites its subsection of docs/benchmarks.md (``--no-docs`` to skip).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from crud import (
    BIN,
    DOCS,
    LABELS,
    ROOT,
    Server,
    cpu_by_pid,
    database_kinds,
    git_commit,
    machine,
    postgres_pids,
    write_subsection,
)

SECTION = "## Load (authenticated)"
INTRO = (
    "Facility-bound clients with bearer tokens against gunicorn (2 sync workers) on loopback,"
    " with correctness rules checked during and after the run (bench/load.py). Each subsection"
    " is one configuration, rewritten when the script runs it again."
)
TOKEN_PATH = "/oauth2/v1/accesstoken?grant_type=client_credentials"
FHIR_JSON = "application/fhir+json"
TIMEOUT = 60  # seconds; a request this slow counts as an error
NIK = "https://fhir.kemkes.go.id/id/nik"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
HL7 = "http://terminology.hl7.org/CodeSystem"
ILP = "https://fhir.ilp-gateway.id/CodeSystem"
ADMIN = "https://fhir.kemkes.go.id/r4/StructureDefinition/administrativeCode"
LOCAL = "https://load.ilp-gateway.test/id"  # identifiers of the resources this script writes
DINKES = "dinkes-load"
SEED_REGISTRAR = 99  # NIK digits 3-4 of seeded Patients; the threads use their number
FAMILIES = ("Siti", "Budi", "Dewi", "Agus", "Wati", "Hadi", "Rina", "Yusuf", "Putri", "Rahmat")
GIVEN = ("Ayu", "Bayu", "Citra", "Dimas", "Eka", "Fitri", "Gilang", "Indah", "Joko", "Lestari")
# LOINC code: display, UCUM unit, range of values
MEASURES = {
    "29463-7": ("Body weight", "kg", 3.0, 90.0),
    "8302-2": ("Body height", "cm", 45.0, 180.0),
}
TYPES = ("Patient", "Encounter", "Observation")
Entries = list[tuple[str, dict[str, Any], str, str]]  # (fullUrl, resource, method, url)
# Operation kind: weight in the mix.  "cross-*" act on another Puskesmas' resources.
MIX = {
    "read": 22,
    "search-name": 8,
    "search-subject": 10,
    "search-include": 6,
    "create": 14,
    "update": 10,
    "transaction": 5,
    "cross-read": 8,
    "cross-update": 4,
    "cross-create": 4,
    "cross-transaction": 2,
    "cross-search": 4,
}


# --- payloads -------------------------------------------------------------------------------


def ref(resource_type: str, res_id: str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{res_id}"}


def local_identifier(value: str) -> dict[str, str]:
    return {"system": LOCAL, "value": value}


def organization(res_id: str, name: str, part_of: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Organization", "id": res_id, "active": True}
    body["name"] = name
    if part_of:
        body["partOf"] = ref("Organization", part_of)
    return body


def patient(facility: int, registrar: int, serial: int, rng: random.Random) -> dict[str, Any]:
    """A Patient of Puskesmas ``facility`` with a well-formed NIK, unique by its kecamatan
    digits (``registrar``: 1-99, ``facility``) and ``serial``."""
    family, given, female = rng.choice(FAMILIES), rng.choice(GIVEN), rng.random() < 0.5
    born = datetime.date(rng.randint(1950, 2025), rng.randint(1, 12), rng.randint(1, 28))
    day = born.day + 40 if female else born.day  # NIK: 40 added to a woman's day of birth
    nik = f"52{registrar:02d}{facility:02d}{day:02d}{born:%m%y}{serial % 10000:04d}"
    village = [
        {"url": "province", "valueCode": "52"},
        {"url": "city", "valueCode": f"52{registrar:02d}"},
        {"url": "district", "valueCode": f"52{registrar:02d}{facility:02d}"},
        {"url": "village", "valueCode": f"52{registrar:02d}{facility:02d}2001"},
    ]
    return {
        "resourceType": "Patient",
        "identifier": [{"use": "official", "system": NIK, "value": nik}],
        "active": True,
        "name": [{"use": "official", "text": f"{given} {family}", "family": family}],
        "gender": "female" if female else "male",
        "birthDate": born.isoformat(),
        "address": [{"extension": [{"url": ADMIN, "extension": village}], "country": "ID"}],
        "managingOrganization": ref("Organization", f"pkm-{facility}"),
    }


def encounter(facility: int, subject: str, day: int) -> dict[str, Any]:
    """An adult's visit to Puskesmas ``facility``; ``subject``: ``Patient/x`` or a urn:uuid."""
    attender = {"system": f"{HL7}/v3-ParticipationType", "code": "ATND", "display": "attender"}
    nurse = {"system": f"{ILP}/ilp-participant-role", "code": "perawat", "display": "Perawat"}
    klaster = {"system": f"{ILP}/ilp-klaster", "code": "3", "display": "Klaster 3: Usia Dewasa"}
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": f"{HL7}/v3-ActCode", "code": "AMB", "display": "ambulatory"},
        "type": [{"coding": [{"system": f"{ILP}/ilp-siklus-hidup", "code": "dewasa"}]}],
        "serviceType": {"coding": [klaster]},
        "subject": {"reference": subject},
        "participant": [
            {
                "type": [{"coding": [attender, nurse]}],
                "individual": ref("Practitioner", f"nakes-pkm-{facility}"),
            }
        ],
        "period": {
            "start": f"2026-11-{day:02d}T09:00:00+07:00",
            "end": f"2026-11-{day:02d}T09:30:00+07:00",
        },
        "serviceProvider": ref("Organization", f"pkm-{facility}"),
    }


def observation(
    code: str, facility: int, subject: str, visit: str, rng: random.Random
) -> dict[str, Any]:
    """A vital sign of ``subject`` during the Encounter ``visit`` (reference strings): a weight
    names its Puskesmas as performer, a height a nurse (it belongs to its Encounter's owner)."""
    display, unit, low, high = MEASURES[code]
    codings = [{"system": LOINC, "code": code, "display": display}]
    if code == "8302-2":
        codings.append({"system": LOINC, "code": "8308-9", "display": "Body height --standing"})
    performer = ("Organization", f"pkm-{facility}") if code == "29463-7" else None
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {"coding": [{"system": f"{HL7}/observation-category", "code": "vital-signs"}]}
        ],
        "code": {"coding": codings, "text": display},
        "subject": {"reference": subject},
        "encounter": {"reference": visit},
        "effectiveDateTime": "2026-11-02T09:15:00+07:00",
        "performer": [ref(*(performer or ("Practitioner", f"nakes-pkm-{facility}")))],
        "valueQuantity": {
            "value": round(rng.uniform(low, high), 1),
            "unit": unit,
            "system": UCUM,
            "code": unit,
        },
    }


def revised(body: dict[str, Any], version: int) -> dict[str, Any]:
    """A changed copy of ``body`` for its ``version`` (never equal to the previous one)."""
    new = copy.deepcopy(body)
    if new["resourceType"] == "Patient":
        new["telecom"] = [{"system": "phone", "value": f"+62812{version:07d}", "use": "mobile"}]
    elif new["resourceType"] == "Encounter":
        new["length"] = {"value": 30 + version, "unit": "min", "system": UCUM, "code": "min"}
    else:
        new["valueQuantity"]["value"] = round(new["valueQuantity"]["value"] + 0.1, 1)
    return new


def transaction(entries: Entries) -> dict[str, Any]:
    """A transaction Bundle of (fullUrl, resource, method, url) entries."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": full_url, "resource": body, "request": {"method": method, "url": url}}
            for full_url, body, method, url in entries
        ],
    }


LOCATION = re.compile(r"([A-Za-z]+)/([A-Za-z0-9\-.]{1,64})/_history/(\d+)$")


def written_by_transaction(
    data: Any, entries: Entries
) -> list[tuple[str, str, int, dict[str, Any]]]:
    """(type, id, version, body as it should now be stored) per entry of a transaction-response
    Bundle, ``urn:uuid`` references resolved; ValueError when ``data`` is not such a Bundle."""
    try:
        responses = [entry["response"] for entry in data["entry"]]
        statuses = [response["status"] for response in responses]
        found = [LOCATION.search(response["location"]) for response in responses]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a transaction-response Bundle ({exc!r})") from None
    if len(found) != len(entries) or not all(found):
        raise ValueError(f"{len(entries)} entries sent, locations answered: {found}")
    if not all(status.startswith(("200", "201")) for status in statuses):
        raise ValueError(f"entry statuses {statuses}")
    located = [(m[1], m[2], int(m[3])) for m in found if m]
    text = json.dumps([body for _, body, _, _ in entries])
    for (full_url, *_), (resource_type, res_id, _) in zip(entries, located, strict=True):
        if full_url.startswith("urn:"):
            text = text.replace(json.dumps(full_url), json.dumps(f"{resource_type}/{res_id}"))
    bodies = json.loads(text)
    return [(t, i, v, body) for (t, i, v), body in zip(located, bodies, strict=True)]


def content(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without what the server sets (``id``, ``meta``), for comparing versions."""
    return {key: value for key, value in body.items() if key not in ("id", "meta")}


def direct_owner(body: dict[str, Any]) -> str | None:
    """The Organization a Patient or Encounter names as its owner."""
    element = {"Patient": "managingOrganization", "Encounter": "serviceProvider"}
    target = (body.get(element.get(body.get("resourceType", ""), "")) or {}).get("reference", "")
    return target.removeprefix("Organization/") if target.startswith("Organization/") else None


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Answer:
    """One HTTP exchange (status 0: no answer, the text says why)."""

    method: str
    path: str
    status: int
    seconds: float
    text: str
    retry_after: float = 0.0  # seconds, of a 429

    @property
    def data(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    def describe(self) -> str:
        return f"{self.method} {self.path} -> {self.status}: {self.text[:400]}"


@dataclass
class Tally:
    """What one kind of operation did: requests, errors, statuses and latencies (seconds)."""

    count: int = 0
    errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.count += other.count
        self.errors += other.errors
        self.statuses.update(other.statuses)
        self.seconds.extend(other.seconds)

    def percentile(self, q: float) -> float:
        """The ``q`` quantile of the latencies, in milliseconds (nearest rank)."""
        ordered = sorted(self.seconds)
        return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered)) - 1))] * 1000


class Recorder:
    """The tallies of one thread by operation kind, and the first problems it saw."""

    SAMPLES = 20

    def __init__(self, throttling: bool = False) -> None:
        self.throttling = throttling  # ILP_RATE_LIMIT on: a 429 is the limiter's answer
        self.tallies: dict[str, Tally] = {}
        self.problems: list[str] = []

    def record(self, kind: str, answer: Answer, problem: str | None) -> None:
        if answer.status == 429 and self.throttling:
            problem = None
        tally = self.tallies.setdefault(kind, Tally())
        tally.count += 1
        tally.statuses[answer.status] += 1
        tally.seconds.append(answer.seconds)
        if problem is not None:
            tally.errors += 1
            if len(self.problems) < self.SAMPLES:
                self.problems.append(f"{kind}: {problem}")

    def merge(self, other: Recorder) -> None:
        for kind, tally in other.tallies.items():
            self.tallies.setdefault(kind, Tally()).add(tally)
        room = self.SAMPLES - len(self.problems)
        self.problems.extend(other.problems[: max(0, room)])


class Client:
    """One OAuth2 client's HTTP session: a bearer token renewed before it expires."""

    def __init__(
        self, origin: str, client_id: str, secret: str, recorder: Recorder, patient: bool = False
    ) -> None:
        self.origin, self.client_id, self.secret = origin, client_id, secret
        self.recorder = recorder
        self.patient = patient  # waits out 429s (set-up and verification) instead of failing
        self.session = requests.Session()
        self.token = ""
        self.renew_at = 0.0

    def renew_if_due(self) -> bool:
        """A new token when the current one expires within 10 s; False when none was given."""
        if time.monotonic() < self.renew_at:
            return True
        started = time.monotonic()
        form = {"client_id": self.client_id, "client_secret": self.secret}
        answer = self._send("POST", TOKEN_PATH, form, {})
        data = answer.data
        ok = answer.status == 200 and isinstance(data, dict) and "access_token" in data
        self.recorder.record("token", answer, None if ok else answer.describe())
        if ok:
            lifetime = float(data["expires_in"])
            self.token, self.renew_at = (
                data["access_token"],
                started + lifetime - min(10, lifetime / 4),
            )
        return ok

    def fhir(self, method: str, path: str, body: dict[str, Any] | None = None) -> Answer:
        """``method`` on ``/fhir/<path>`` with the token (``path`` "": the system level)."""
        headers = {"Authorization": f"Bearer {self.token}", "Accept": FHIR_JSON}
        data = None
        if body is not None:
            headers["Content-Type"] = FHIR_JSON
            data = json.dumps(body).encode()
        return self._send(method, "/fhir/" + path if path else "/fhir", data, headers)

    def _send(self, method: str, path: str, data: Any, headers: dict[str, str]) -> Answer:
        for _ in range(30):
            answer = self._exchange(method, path, data, headers)
            if answer.status != 429 or not self.patient:
                return answer
            time.sleep(answer.retry_after)
        return answer

    def _exchange(self, method: str, path: str, data: Any, headers: dict[str, str]) -> Answer:
        started = time.perf_counter()
        try:
            response = self.session.request(
                method, self.origin + path, data=data, headers=headers, timeout=TIMEOUT
            )
            status, text = response.status_code, response.text
            wait = response.headers.get("Retry-After", "1")
        except requests.RequestException as exc:
            status, text, wait = 0, f"{type(exc).__name__}: {exc}", "0"
        seconds = time.perf_counter() - started
        return Answer(method, path, status, seconds, text, float(wait) if wait.isdigit() else 1.0)


# --- the district ---------------------------------------------------------------------------


@dataclass
class Facility:
    """A Puskesmas: its client's secret and its resources' ids by type (seeded; all)."""

    number: int
    secret: str
    seeded: dict[str, list[str]] = field(default_factory=lambda: {t: [] for t in TYPES})
    ids: dict[str, list[str]] = field(default_factory=lambda: {t: [] for t in TYPES})

    @property
    def org(self) -> str:
        return f"pkm-{self.number}"


@dataclass
class Written:
    version: int
    body: dict[str, Any]


@dataclass
class Ledger:
    """What one thread (or the set-up) had acknowledged, refused and left uncertain."""

    written: dict[tuple[str, str], Written] = field(default_factory=dict)
    interactions: int = 0  # acknowledged write requests; a transaction counts once
    refusals: int = 0  # 403 answers, each of which should leave an AuditEvent
    refused: list[tuple[str, str]] = field(default_factory=list)  # (type, identifier value)
    versions: int = 0  # resource versions acknowledged
    uncertain: int = 0  # writes that got no answer: neither acknowledged nor refused


@dataclass
class District:
    """The Dinkes, its Puskesmas and what every thread acknowledged."""

    origin: str
    national: str  # the secret of the client bound to no facility
    facilities: list[Facility]
    throttling: bool = False  # ILP_RATE_LIMIT on: clients may get 429 and wait
    setup: Ledger = field(default_factory=Ledger)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)  # (type, id) -> org

    def acknowledge(self, ledger: Ledger, org: str, key: tuple[str, str], written: Written) -> None:
        ledger.written[key] = written
        ledger.versions += 1
        self.owners[key] = org


def add_client(server: Server, client_id: str, organization: str | None = None) -> str:
    """``ilp clients add`` as an operator runs it; the new client's secret."""
    command = [str(BIN / "ilp"), "clients", "add", client_id, "--json"]
    if organization:
        command += ["--organization", organization]
    done = subprocess.run(command, env=server.env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[1:])} failed:\n{done.stderr}")
    secret: str = json.loads(done.stdout)["client_secret"]
    return secret


def set_up(server: Server, args: argparse.Namespace) -> District:
    """Clients, the Organizations (national client) and each Puskesmas' seed (its own client)."""
    national = add_client(server, "national")
    district = District(f"http://{server.bind}", national, [], throttling=args.rate_limit > 0)
    for number in range(1, args.puskesmas + 1):
        secret = add_client(server, f"pkm-{number}", f"pkm-{number}")
        district.facilities.append(Facility(number, secret))
    base = f"http://{server.bind}/fhir"
    orgs = [organization(DINKES, "Dinas Kesehatan (load test)", None)]
    orgs += [organization(f.org, f"Puskesmas {f.number}", DINKES) for f in district.facilities]
    entries = [
        (f"{base}/Organization/{o['id']}", o, "PUT", f"Organization/{o['id']}") for o in orgs
    ]
    _post_setup(district, "national", district.national, None, entries)
    rng = random.Random(args.seed)
    for facility in district.facilities:
        entries = _seed_entries(base, facility, args.patients, rng)
        _post_setup(district, facility.org, facility.secret, facility, entries)
    return district


def _seed_entries(base: str, facility: Facility, patients: int, rng: random.Random) -> Entries:
    org, number, resources = facility.org, facility.number, []
    for k in range(1, patients + 1):
        p, e = f"{org}-p{k}", f"{org}-e{k}"
        resources.append(patient(number, SEED_REGISTRAR, k, rng) | {"id": p})
        resources.append(encounter(number, f"Patient/{p}", 1 + k % 28) | {"id": e})
        for suffix, code in (("w", "29463-7"), ("h", "8302-2")):
            body = observation(code, number, f"Patient/{p}", f"Encounter/{e}", rng)
            resources.append(body | {"id": f"{org}-o{k}{suffix}"})
    for body in resources:
        body["identifier"] = [*body.get("identifier", []), local_identifier(f"seed-{body['id']}")]
    return [
        (f"{base}/{r['resourceType']}/{r['id']}", r, "PUT", f"{r['resourceType']}/{r['id']}")
        for r in resources
    ]


def _post_setup(
    district: District,
    client_id: str,
    secret: str,
    facility: Facility | None,
    entries: Entries,
) -> None:
    recorder = Recorder()
    client = Client(district.origin, client_id, secret, recorder, patient=True)
    if not client.renew_if_due():
        raise RuntimeError(f"no token for {client_id}: {recorder.problems}")
    answer = client.fhir("POST", "", transaction(entries))
    if answer.status != 200:
        raise RuntimeError(f"set-up transaction of {client_id} failed: {answer.describe()}")
    district.setup.interactions += 1
    for resource_type, res_id, version, body in written_by_transaction(answer.data, entries):
        owner = res_id if resource_type == "Organization" else client_id
        district.acknowledge(district.setup, owner, (resource_type, res_id), Written(version, body))
        if facility is not None:
            facility.seeded[resource_type].append(res_id)
            facility.ids[resource_type].append(res_id)


# --- the load -------------------------------------------------------------------------------


class Worker(threading.Thread):
    """One EMR of a Puskesmas: the mix of operations until the deadline."""

    def __init__(self, number: int, district: District, deadline: float, seed: int) -> None:
        super().__init__(name=f"load-{number}", daemon=True)
        self.number, self.district, self.deadline = number, district, deadline
        self.facility = district.facilities[(number - 1) % len(district.facilities)]
        self.others = [f for f in district.facilities if f is not self.facility]
        self.rng = random.Random(seed * 1000 + number)
        self.recorder, self.ledger = Recorder(district.throttling), Ledger()
        self.client = Client(
            district.origin, self.facility.org, self.facility.secret, self.recorder
        )
        self.mine: list[tuple[str, str]] = []  # what this thread created: only it updates them
        self.sequence = 0
        self.crash: str | None = None

    def run(self) -> None:
        kinds, weights = list(MIX), list(MIX.values())
        try:
            while time.monotonic() < self.deadline:
                if not self.client.renew_if_due():
                    time.sleep(1)
                    continue
                kind = self.rng.choices(kinds, weights)[0]
                getattr(self, "op_" + kind.replace("-", "_"))(kind)
        except Exception as exc:  # a bug of this script: reported, fails the run
            self.crash = f"{self.name}: {type(exc).__name__}: {exc}"

    # helpers

    def settle(self, kind: str, answer: Answer, expect: int, problem: str | None = None) -> bool:
        """Record ``answer``; True when it had the ``expect``-ed status and no ``problem``."""
        if answer.status != expect:
            problem = answer.describe()
        if answer.status == 401:  # the token was refused before it expired: a new one
            self.client.renew_at = 0.0
        if answer.status == 0 and answer.method != "GET":
            self.ledger.uncertain += 1
        self.recorder.record(kind, answer, problem)
        if answer.status == 429:  # as a well-behaved client does
            time.sleep(min(answer.retry_after, 5.0))
        return problem is None

    def new_resource(self, resource_type: str, facility: Facility) -> dict[str, Any]:
        """A new resource of ``facility``, naming its Patients and Encounters, with an
        identifier unique in the run."""
        self.sequence += 1
        number, ids = (
            facility.number,
            facility.seeded if facility is not self.facility else facility.ids,
        )
        if resource_type == "Patient":
            body = patient(number, self.number, self.sequence, self.rng)
        elif resource_type == "Encounter":
            subject = f"Patient/{self.rng.choice(ids['Patient'])}"
            body = encounter(number, subject, self.rng.randint(1, 28))
        else:
            visit = f"Encounter/{self.rng.choice(ids['Encounter'])}"
            subject = f"Patient/{self.rng.choice(ids['Patient'])}"
            body = observation(self.rng.choice(list(MEASURES)), number, subject, visit, self.rng)
        value = f"{self.facility.org}-{self.number}-{self.sequence}"
        body["identifier"] = [*body.get("identifier", []), local_identifier(value)]
        return body

    def acknowledge(
        self, resource_type: str, res_id: str, version: int, body: dict[str, Any]
    ) -> None:
        key = (resource_type, res_id)
        if key not in self.ledger.written:
            self.mine.append(key)
            self.facility.ids[resource_type].append(res_id)
        self.district.acknowledge(self.ledger, self.facility.org, key, Written(version, body))

    def foreign(self, answer: Answer) -> str | None:
        """A problem when a searchset holds a resource of another facility."""
        for entry in (answer.data or {}).get("entry", []):
            found = entry.get("resource", {})
            key = (found.get("resourceType", ""), found.get("id", ""))
            owner = self.district.owners.get(key) or direct_owner(found)
            if owner is not None and owner != self.facility.org:
                where = f"{key[0]}/{key[1]} of {owner} seen by {self.facility.org}"
                return f"{where}: {answer.describe()[:200]}"
        return None

    def refusal(self, kind: str, answer: Answer) -> None:
        """Record an answer that must be 403 with an OperationOutcome ``forbidden``."""
        problem = None
        if answer.status == 403:
            self.ledger.refusals += 1
            issues = (answer.data or {}).get("issue", [])
            if not any(issue.get("code") == "forbidden" for issue in issues):
                problem = f"403 without an issue 'forbidden': {answer.describe()}"
        self.settle(kind, answer, 403, problem)

    # operations in the facility

    def op_read(self, kind: str) -> None:
        mine = self.mine and self.rng.random() < 0.5
        if mine:
            resource_type, res_id = self.rng.choice(self.mine)
        else:
            resource_type = self.rng.choice(TYPES)
            res_id = self.rng.choice(self.facility.ids[resource_type])
        answer = self.client.fhir("GET", f"{resource_type}/{res_id}")
        problem, known = None, self.ledger.written.get((resource_type, res_id))
        if answer.status == 200 and known is not None:
            found = answer.data or {}
            version = found.get("meta", {}).get("versionId")
            if version != str(known.version) or content(found) != content(known.body):
                problem = f"own write read at version {version} (acknowledged {known.version}"
                problem += f" or other content): {answer.describe()}"
        self.settle(kind, answer, 200, problem)

    def op_search_name(self, kind: str) -> None:
        query = urllib.parse.urlencode({"name": self.rng.choice(FAMILIES), "_count": 20})
        answer = self.client.fhir("GET", f"Patient?{query}")
        self.settle(kind, answer, 200, self.foreign(answer) if answer.status == 200 else None)

    def op_search_subject(self, kind: str) -> None:
        subject = f"Patient/{self.rng.choice(self.facility.ids['Patient'])}"
        query = urllib.parse.urlencode({"subject": subject, "_count": 20})
        answer = self.client.fhir("GET", f"Observation?{query}")
        self.settle(kind, answer, 200, self.foreign(answer) if answer.status == 200 else None)

    def op_search_include(self, kind: str) -> None:
        code = f"{LOINC}|{self.rng.choice(list(MEASURES))}"
        query = urllib.parse.urlencode(
            {"code": code, "_include": "Observation:subject", "_count": 20}
        )
        answer = self.client.fhir("GET", f"Observation?{query}")
        self.settle(kind, answer, 200, self.foreign(answer) if answer.status == 200 else None)

    def op_create(self, kind: str) -> None:
        resource_type = self.rng.choice(TYPES)
        body = self.new_resource(resource_type, self.facility)
        answer = self.client.fhir("POST", resource_type, body)
        stored = answer.data or {}
        problem = None
        if answer.status == 201 and not (
            stored.get("id") and stored.get("meta", {}).get("versionId")
        ):
            problem = f"201 without id and versionId: {answer.describe()}"
        if self.settle(kind, answer, 201, problem):
            self.ledger.interactions += 1
            self.acknowledge(resource_type, stored["id"], int(stored["meta"]["versionId"]), body)

    def op_update(self, kind: str) -> None:
        if not self.mine:
            return self.op_create("create")
        resource_type, res_id = self.rng.choice(self.mine)
        known = self.ledger.written[(resource_type, res_id)]
        body = revised(known.body, known.version + 1) | {"id": res_id}
        answer = self.client.fhir("PUT", f"{resource_type}/{res_id}", body)
        version = (answer.data or {}).get("meta", {}).get("versionId")
        problem = None
        if answer.status == 200 and version != str(known.version + 1):
            problem = f"version {version} after {known.version}: {answer.describe()}"
        if answer.status == 200:  # acknowledged, whatever version it says
            self.ledger.interactions += 1
            self.acknowledge(resource_type, res_id, int(version) if version else 0, body)
        self.settle(kind, answer, 200, problem)

    def op_transaction(self, kind: str) -> None:
        number = self.facility.number
        p, e, w, h = (f"urn:uuid:{uuid.uuid4()}" for _ in range(4))
        entries: Entries = [
            (p, self.new_resource("Patient", self.facility), "POST", "Patient"),
            (e, encounter(number, p, self.rng.randint(1, 28)), "POST", "Encounter"),
            (w, observation("29463-7", number, p, e, self.rng), "POST", "Observation"),
            (h, observation("8302-2", number, p, e, self.rng), "POST", "Observation"),
        ]
        answer = self.client.fhir("POST", "", transaction(entries))
        problem, results = None, []
        if answer.status == 200:
            try:
                results = written_by_transaction(answer.data, entries)
            except ValueError as exc:
                problem = f"{exc}: {answer.describe()}"
            self.ledger.interactions += 1
        for resource_type, res_id, version, body in results:
            self.acknowledge(resource_type, res_id, version, body)
        self.settle(kind, answer, 200, problem)

    # operations on another Puskesmas' resources: 403, or nothing foreign in a search

    def other_seeded(self, resource_type: str) -> tuple[Facility, str]:
        other = self.rng.choice(self.others)
        return other, self.rng.choice(other.seeded[resource_type])

    def op_cross_read(self, kind: str) -> None:
        resource_type = self.rng.choice(TYPES)
        _, res_id = self.other_seeded(resource_type)
        self.refusal(kind, self.client.fhir("GET", f"{resource_type}/{res_id}"))

    def op_cross_update(self, kind: str) -> None:
        resource_type = self.rng.choice(TYPES)
        _, res_id = self.other_seeded(resource_type)
        seeded = self.district.setup.written[(resource_type, res_id)]
        body = revised(seeded.body, 2) | {"id": res_id}
        self.refusal(kind, self.client.fhir("PUT", f"{resource_type}/{res_id}", body))

    def op_cross_create(self, kind: str) -> None:
        resource_type = self.rng.choice(TYPES)
        body = self.new_resource(resource_type, self.rng.choice(self.others))
        self.ledger.refused.append((resource_type, body["identifier"][-1]["value"]))
        self.refusal(kind, self.client.fhir("POST", resource_type, body))

    def op_cross_transaction(self, kind: str) -> None:
        """A Patient of one's own and an update of another's Encounter: refused whole."""
        own = self.new_resource("Patient", self.facility)
        self.ledger.refused.append(("Patient", own["identifier"][-1]["value"]))
        _, res_id = self.other_seeded("Encounter")
        theirs = revised(self.district.setup.written[("Encounter", res_id)].body, 2)
        entries: Entries = [
            (f"urn:uuid:{uuid.uuid4()}", own, "POST", "Patient"),
            (
                f"{self.district.origin}/fhir/Encounter/{res_id}",
                theirs,
                "PUT",
                f"Encounter/{res_id}",
            ),
        ]
        self.refusal(kind, self.client.fhir("POST", "", transaction(entries)))

    def op_cross_search(self, kind: str) -> None:
        other, res_id = self.other_seeded("Patient")
        if self.rng.random() < 0.5:
            query = urllib.parse.urlencode({"subject": f"Patient/{res_id}"})
            answer = self.client.fhir("GET", f"Observation?{query}")
        else:
            nik = self.district.setup.written[("Patient", res_id)].body["identifier"][0]["value"]
            answer = self.client.fhir(
                "GET", "Patient?" + urllib.parse.urlencode({"identifier": f"{NIK}|{nik}"})
            )
        problem = None
        if answer.status == 200 and (answer.data or {}).get("entry"):
            problem = f"{other.org}'s resources seen by {self.facility.org}: {answer.describe()}"
        self.settle(kind, answer, 200, problem)


# --- after the run --------------------------------------------------------------------------


@dataclass
class Verification:
    """What the national client found after the run."""

    checked: int = 0
    lost: list[str] = field(default_factory=list)  # acknowledged, not there
    stale: list[str] = field(default_factory=list)  # there at another version or content
    refused_stored: list[str] = field(default_factory=list)  # refused, yet stored
    audit_written: int = 0  # AuditEvents of writes (outcome 0)
    audit_refused: int = 0  # AuditEvents of refusals (outcome 4)


def verify(district: District, ledgers: list[Ledger], recorder: Recorder) -> Verification:
    """Read back every acknowledged write and look for every refused one, as the national
    client; count the AuditEvents."""
    client = Client(district.origin, "national", district.national, recorder, patient=True)
    if not client.renew_if_due():
        raise RuntimeError(f"no token for the national client: {recorder.problems}")
    expected: dict[tuple[str, str], Written] = {}
    for ledger in ledgers:
        expected.update(ledger.written)
    result = Verification(checked=len(expected))
    by_type: dict[str, list[str]] = {}
    for resource_type, res_id in expected:
        by_type.setdefault(resource_type, []).append(res_id)
    for resource_type, ids in sorted(by_type.items()):
        for start in range(0, len(ids), 100):
            chunk = ids[start : start + 100]
            stored = _search(client, resource_type, {"_id": ",".join(chunk), "_count": len(chunk)})
            for res_id in chunk:
                _compare(
                    result,
                    f"{resource_type}/{res_id}",
                    stored.get(res_id),
                    expected[(resource_type, res_id)],
                )
    refused = [item for ledger in ledgers for item in ledger.refused]
    for resource_type in TYPES:
        values = [value for kind, value in refused if kind == resource_type]
        for start in range(0, len(values), 50):
            tokens = ",".join(f"{LOCAL}|{value}" for value in values[start : start + 50])
            found = _search(client, resource_type, {"identifier": tokens, "_count": 100})
            result.refused_stored += [f"{resource_type}/{res_id}" for res_id in found]
    result.audit_written = _count(client, "AuditEvent", {"outcome": "0"})
    result.audit_refused = _count(client, "AuditEvent", {"outcome": "4"})
    return result


def _compare(
    result: Verification, name: str, stored: dict[str, Any] | None, known: Written
) -> None:
    if stored is None:
        result.lost.append(f"{name} (version {known.version})")
        return
    version = stored.get("meta", {}).get("versionId")
    if version != str(known.version) or content(stored) != content(known.body):
        result.stale.append(f"{name}: version {version}, acknowledged {known.version}")


def _search(
    client: Client, resource_type: str, params: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    answer = client.fhir("GET", f"{resource_type}?{urllib.parse.urlencode(params)}")
    if answer.status != 200:
        raise RuntimeError(f"verification search failed: {answer.describe()}")
    entries = (answer.data or {}).get("entry", [])
    return {entry["resource"]["id"]: entry["resource"] for entry in entries}


def _count(client: Client, resource_type: str, params: dict[str, str]) -> int:
    query = urllib.parse.urlencode(params | {"_summary": "count"})
    answer = client.fhir("GET", f"{resource_type}?{query}")
    if answer.status != 200:
        raise RuntimeError(f"verification count failed: {answer.describe()}")
    return int((answer.data or {}).get("total", -1))


# --- running and reporting ------------------------------------------------------------------


@dataclass
class Outcome:
    """Everything one run measured."""

    seconds: float
    recorder: Recorder
    ledgers: list[Ledger]  # the set-up's first
    crashes: list[str]
    cpu: dict[str, float]  # % of one core: gunicorn, PostgreSQL, this process, the machine
    rss: list[float]  # MiB per gunicorn worker after the load
    verification: Verification = field(default_factory=Verification)
    kind: str = ""
    seeded: int = 0


def configure(server: Server, args: argparse.Namespace) -> None:
    """The server's settings for this run (over crud.Server's benchmark defaults)."""
    env = server.env
    env.update(ILP_AUTH="on", ILP_AUDIT="on", ILP_LOG_LEVEL="WARNING")
    env.update(ILP_RATE_LIMIT=str(args.rate_limit), ILP_TOKEN_LIFETIME=str(args.token_lifetime))
    if args.profiles:  # the server's defaults: ILP profiles enforced
        env.pop("ILP_ENFORCE_PROFILES", None)
        env.pop("ILP_ENFORCE_CLAIMED_PROFILES", None)
    else:
        env.update(ILP_ENFORCE_PROFILES="", ILP_ENFORCE_CLAIMED_PROFILES="false")


def run(kind: str, args: argparse.Namespace) -> Outcome:
    """Serve a fresh database, set the district up, run the load, verify; always clean up."""
    with tempfile.TemporaryDirectory(prefix="ilp-load-") as tmp:
        server = Server(kind, Path(tmp), args)
        configure(server, args)
        with server:
            print(f"{LABELS[kind]}: serving on {server.bind}; setting the district up", flush=True)
            district = set_up(server, args)
            seeded = len(district.setup.written)
            print(
                f"{seeded} resources seeded; {args.clients} clients, {args.duration} s", flush=True
            )
            outcome = load(server, district, args)
            print("verifying every acknowledged write", flush=True)
            outcome.verification = verify(district, outcome.ledgers, Recorder())
            outcome.kind, outcome.seeded = kind, seeded
            return outcome


def load(server: Server, district: District, args: argparse.Namespace) -> Outcome:
    """The clients' threads for ``args.duration`` seconds, and the CPU they and gunicorn used."""

    def postgres() -> dict[int, float]:
        return cpu_by_pid(postgres_pids(server.db)) if server.db else {}

    before = cpu_by_pid(server.worker_pids()), postgres(), _own_cpu(), _busy()
    started = time.monotonic()
    workers = [
        Worker(n, district, started + args.duration, args.seed) for n in range(1, args.clients + 1)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(1.0, started + args.duration + TIMEOUT + 60 - time.monotonic()))
    seconds = time.monotonic() - started
    cpu = {
        "workers": _used(before[0], cpu_by_pid(server.worker_pids())) / seconds * 100,
        "postgres": _used(before[1], postgres()) / seconds * 100,
        "client": (_own_cpu() - before[2]) / seconds * 100,
        "machine": (_busy() - before[3]) / seconds * 100,
    }
    recorder = Recorder()
    for worker in workers:
        recorder.merge(worker.recorder)
    return Outcome(
        seconds=seconds,
        recorder=recorder,
        ledgers=[district.setup, *(worker.ledger for worker in workers)],
        crashes=[w.crash or f"{w.name} still running" for w in workers if w.crash or w.is_alive()],
        cpu=cpu,
        rss=server.worker_rss_mib(),
    )


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _busy() -> float:
    """CPU seconds the whole machine spent busy (not idle, not waiting for I/O)."""
    busy = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return (sum(busy) - busy[3] - busy[4]) / os.sysconf("SC_CLK_TCK")


def _used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def rules(outcome: Outcome) -> list[tuple[str, bool, str]]:
    """(rule, met, figures) of the run."""
    tallies, check, ledgers = outcome.recorder.tallies, outcome.verification, outcome.ledgers
    server_errors = sum(n for t in tallies.values() for s, n in t.statuses.items() if s >= 500)
    errors = sum(t.errors for t in tallies.values())
    writes = sum(ledger.interactions for ledger in ledgers)
    refusals = sum(ledger.refusals for ledger in ledgers)
    refused = sum(len(ledger.refused) for ledger in ledgers)
    lost, stale = len(check.lost), len(check.stale)
    throttled = sum(t.statuses[429] for t in tallies.values())
    limited = f"; {throttled:,} answers 429 of the rate limiter, expected" if throttled else ""
    return [
        ("no 5xx", server_errors == 0, f"{server_errors} answers 5xx"),
        ("no unexpected status or content", errors == 0, f"{errors} errors{limited}"),
        (
            "every acknowledged write readable as acknowledged",
            not lost and not stale,
            f"{check.checked:,} resources checked, {lost} lost, {stale} changed",
        ),
        (
            "no refused write stored",
            not check.refused_stored,
            f"{len(check.refused_stored)} of {refused:,} refused creates found",
        ),
        (
            "an AuditEvent per acknowledged write interaction",
            check.audit_written >= writes,
            f"{check.audit_written:,} AuditEvents of writes for {writes:,} write interactions",
        ),
        (
            "an AuditEvent per refusal",
            check.audit_refused >= refusals,
            f"{check.audit_refused:,} AuditEvents of refusals for {refusals:,} answers 403",
        ),
        (
            "the load generator ran to the end",
            not outcome.crashes,
            "; ".join(outcome.crashes) or "yes",
        ),
    ]


def report(outcome: Outcome, args: argparse.Namespace, command: str) -> str:
    """The Markdown of one run: setup, a table per operation kind, totals and rules."""
    rate_limit = f"{args.rate_limit}/min" if args.rate_limit else "0 (off)"
    profiles = "enforced" if args.profiles else "off (ILP_ENFORCE_PROFILES empty)"
    lines = [
        f"- Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- Command: `{command}`",
        f"- Machine: {machine()}; Linux {platform.release()}",
        f"- Commit: {git_commit()}",
        f"- Setup: gunicorn {args.workers} sync workers, ILP_AUTH on, ILP_RATE_LIMIT"
        f" {rate_limit}, ILP_TOKEN_LIFETIME {args.token_lifetime} s (tokens renewed during"
        f" the run), ILP profiles {profiles}; a Dinkes and {args.puskesmas} Puskesmas below it,"
        f" each with a bound client that seeded {args.patients} Patients with an Encounter"
        f" and 2 Observations each ({outcome.seeded:,} resources); {args.clients} client"
        " threads (`requests` sessions in one Python process, on the same cores as the server),"
        f" each acting for one Puskesmas, for {args.duration} s.",
        "",
        "| Operation | Requests | Errors | Statuses | Median ms | p95 ms | p99 ms |",
        "|---|--:|--:|---|--:|--:|--:|",
    ]
    total = Tally()
    tallies = outcome.recorder.tallies
    for kind in ["token", *MIX]:
        if kind in tallies:
            lines.append(_row(kind, tallies[kind]))
            total.add(tallies[kind])
    lines.append(_row("all", total).replace("| all |", "| **all** |"))
    writes = sum(ledger.interactions for ledger in outcome.ledgers[1:])
    versions = sum(ledger.versions for ledger in outcome.ledgers[1:])
    uncertain = sum(ledger.uncertain for ledger in outcome.ledgers)
    rss, cpu = ", ".join(f"{m:.0f}" for m in outcome.rss), outcome.cpu
    postgres = f" PostgreSQL {cpu['postgres']:.0f} %," if outcome.kind == "postgresql" else ""
    others = max(0.0, cpu["machine"] - cpu["workers"] - cpu["postgres"] - cpu["client"])
    lines += [
        "",
        f"- Throughput: {total.count:,} requests in {outcome.seconds:.0f} s,"
        f" **{total.count / outcome.seconds:,.0f} requests/s**; {writes:,} write interactions"
        f" acknowledged ({writes / outcome.seconds:,.1f}/s), {versions:,} resource versions;"
        f" {uncertain} writes without an answer.",
        f"- CPU (share of one core; 200 % = the machine): gunicorn workers"
        f" {cpu['workers']:.0f} %,{postgres} load generator {cpu['client']:.0f} %, everything"
        f" else (other users of the machine) {others:.0f} %;"
        f" worker RSS after the run: {rss} MiB.",
    ]
    for rule, met, figures in rules(outcome):
        lines.append(f"- Rule, {rule}: {'met' if met else '**FAILED**'} ({figures})")
    check = outcome.verification
    problems = outcome.recorder.problems + check.lost[:10] + check.stale[:10]
    problems += check.refused_stored[:10]
    if problems:
        lines += ["", "First problems:", ""] + [f"- `{p[:300]}`" for p in problems]
    return "\n".join(lines) + "\n"


def _row(kind: str, tally: Tally) -> str:
    statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(tally.statuses.items()))
    return (
        f"| {kind} | {tally.count:,} | {tally.errors:,} | {statuses} | {tally.percentile(0.5):.1f}"
        f" | {tally.percentile(0.95):.1f} | {tally.percentile(0.99):.1f} |"
    )


def title(kind: str, args: argparse.Namespace) -> str:
    """The subsection of one configuration: database, duration, what differs from defaults."""
    parts = [LABELS[kind], f"{args.duration} s"]
    if args.profiles:
        parts.append("profiles enforced")
    if args.rate_limit:
        parts.append(f"rate limit {args.rate_limit}/min")
    if (args.clients, args.puskesmas, args.patients) != (16, 8, 20):
        parts.append(f"{args.clients} clients, {args.puskesmas} Puskesmas of {args.patients}")
    return "### " + ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--duration", type=int, default=300, help="seconds of load (default 300)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent client threads")
    parser.add_argument("--puskesmas", type=int, default=8, help="Puskesmas, each a bound client")
    parser.add_argument("--patients", type=int, default=20, help="Patients seeded per Puskesmas")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--token-lifetime", type=int, default=120, help="ILP_TOKEN_LIFETIME, s")
    parser.add_argument(
        "--rate-limit", type=int, default=0, help="ILP_RATE_LIMIT (requests/minute; 0: off)"
    )
    parser.add_argument("--profiles", action="store_true", help="enforce the ILP profiles")
    parser.add_argument("--seed", type=int, default=1, help="of the random mix")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs")
    args = parser.parse_args()
    if args.puskesmas < 2 or args.clients < 1:
        parser.error("needs at least 2 Puskesmas (for cross-facility attempts) and 1 client")
    kind = database_kinds("bench/load.py", args.db, args.pg_url, wrk=False)[0]
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up as on Ctrl-C
    try:
        outcome = run(kind, args)
    except KeyboardInterrupt:
        sys.exit("interrupted; gunicorn stopped and the benchmark database dropped")
    body = report(outcome, args, " ".join([".venv/bin/python", "bench/load.py", *sys.argv[1:]]))
    print("\n" + title(kind, args) + "\n\n" + body)
    if not args.no_docs:
        write_subsection(SECTION, INTRO, title(kind, args), body)
        print(f"updated {DOCS.relative_to(ROOT)}")
    if not all(met for _, met, _ in rules(outcome)):
        sys.exit(1)


if __name__ == "__main__":
    main()
