"""End to end: authentication and facility-bound access under gunicorn on loopback.

gunicorn (2 workers) serves with ILP_AUTH on, on each database kind.  Clients are registered as
an operator does it, with ``ilp clients add`` (one bound to no facility, two bound to the
Puskesmas pkm-a and one to pkm-b; both Puskesmas hang below a Dinkes), and get their tokens
over HTTP from ``/oauth2/v1/accesstoken``.  Checked: no token or a forged one is 401; a
Puskesmas reads, searches and writes its own resources; another Puskesmas' resources answer
403 and stay as they were; every write leaves one AuditEvent (and every refusal one); and
``ilp clients revoke`` stops a token at once.  See docs/security.md.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
import requests

from tests.e2e.conftest import ILP, ROOT, _environment, _free_port, gunicorn

pytestmark = pytest.mark.e2e

TOKEN_PATH = "/oauth2/v1/accesstoken?grant_type=client_credentials"
FHIR_JSON = "application/fhir+json"
FAMILY = "Wibowo"  # every Patient here: a search by name finds those of both Puskesmas
# client id: the Organization it is bound to (None: every facility)
CLIENTS = {"national": None, "pkm-a": "pkm-a", "tablet-a": "pkm-a", "pkm-b": "pkm-b"}


def _ilp(env, *args):
    return subprocess.run(
        [str(ILP), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def _register_clients(env):
    """``ilp clients add ... --json`` for every client (at once); their secrets by id."""
    processes = {}
    for client_id, organization in CLIENTS.items():
        command = [str(ILP), "clients", "add", client_id, "--json"]
        command += ["--organization", organization] if organization else []
        processes[client_id] = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    secrets = {}
    for client_id, process in processes.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, f"ilp clients add {client_id} failed:\n{err}"
        secrets[client_id] = json.loads(out)["client_secret"]
    return secrets


@pytest.fixture(scope="module")
def node(database_url, tmp_path_factory):
    """(origin, environment, secrets by client id) of gunicorn with ILP_AUTH on."""
    port = _free_port()
    origin = f"http://127.0.0.1:{port}"
    env = _environment(database_url, f"{origin}/fhir") | {"ILP_AUTH": "on", "ILP_AUDIT": "on"}
    upgrade = _ilp(env, "db", "upgrade")
    assert upgrade.returncode == 0, f"ilp db upgrade failed:\n{upgrade.stderr}"
    log_path = tmp_path_factory.mktemp("gunicorn-auth") / "stderr.log"
    secrets = _register_clients(env)  # before serving: requests read the clients as they come
    with gunicorn(env, port, log_path, f"{origin}/fhir/metadata"):
        yield origin, env, secrets


def _token(origin, client_id, secret):
    return requests.post(
        origin + TOKEN_PATH, data={"client_id": client_id, "client_secret": secret}, timeout=30
    )


@pytest.fixture(scope="module")
def clients(node):
    """A session per client carrying its bearer token; the district set up through them."""
    origin, _, secrets = node
    sessions = {}
    for client_id, secret in secrets.items():
        answer = _token(origin, client_id, secret)
        assert answer.status_code == 200, answer.text
        assert answer.json()["expires_in"].isdigit()
        session = requests.Session()
        session.headers.update(
            Authorization=f"Bearer {answer.json()['access_token']}", Accept=FHIR_JSON
        )
        sessions[client_id] = session
    organizations = [
        {"resourceType": "Organization", "id": "dinkes", "name": "Dinkes"},
        _organization("pkm-a", part_of="dinkes"),
        _organization("pkm-b", part_of="dinkes"),
    ]
    setup = _put_all(sessions["national"], origin, organizations)
    assert setup.status_code == 200, setup.text
    for facility in ("pkm-a", "pkm-b"):
        answer = _put(sessions[facility], origin, _patient(facility, f"p-{facility}"))
        assert answer.status_code == 201, answer.text
    return sessions


def _organization(res_id, part_of):
    part = {"reference": f"Organization/{part_of}"}
    return {"resourceType": "Organization", "id": res_id, "name": res_id, "partOf": part}


def _patient(organization, res_id=None):
    body = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:e2e:auth", "value": uuid.uuid4().hex}],
        "name": [{"family": FAMILY, "given": [organization]}],
        "managingOrganization": {"reference": f"Organization/{organization}"},
    }
    return body | ({"id": res_id} if res_id else {})


def _put(session, origin, body):
    url = f"{origin}/fhir/{body['resourceType']}/{body['id']}"
    return session.put(url, json=body, headers={"Content-Type": FHIR_JSON}, timeout=30)


def _put_all(session, origin, resources, kind="transaction"):
    entries = [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in resources
    ]
    bundle = {"resourceType": "Bundle", "type": kind, "entry": entries}
    headers = {"Content-Type": FHIR_JSON}
    return session.post(f"{origin}/fhir", json=bundle, headers=headers, timeout=30)


def _audit_count(session, origin, outcome):
    query = {"outcome": outcome, "_summary": "count"}
    answer = session.get(f"{origin}/fhir/AuditEvent", params=query, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["total"]


def _forbidden(answer):
    assert answer.status_code == 403, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert answer.json()["issue"][0]["code"] == "forbidden"


def test_requests_without_a_valid_token_are_refused(node):
    origin, _, secrets = node
    anonymous = requests.get(f"{origin}/fhir/Patient", timeout=30)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert anonymous.json()["issue"][0]["code"] == "login"
    forged = requests.get(
        f"{origin}/fhir/Patient", headers={"Authorization": "Bearer forged"}, timeout=30
    )
    assert forged.status_code == 401
    assert 'error="invalid_token"' in forged.headers["WWW-Authenticate"]
    wrong = _token(origin, "pkm-a", secrets["pkm-b"])
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    assert requests.get(f"{origin}/fhir/metadata", timeout=30).status_code == 200


def test_a_puskesmas_reads_searches_and_writes_its_own_resources(node, clients):
    origin, a = node[0], clients["pkm-a"]
    assert a.get(f"{origin}/fhir/Patient/p-pkm-a", timeout=30).status_code == 200
    created = a.post(f"{origin}/fhir/Patient", json=_patient("pkm-a"), timeout=30)
    assert created.status_code == 201, created.text
    body = created.json()
    body["name"][0]["given"] = ["renamed"]
    updated = _put(a, origin, body)
    assert updated.status_code == 200, updated.text
    assert updated.json()["meta"]["versionId"] == "2"
    found = a.get(f"{origin}/fhir/Patient", params={"name": FAMILY}, timeout=30)
    owners = {e["resource"]["managingOrganization"]["reference"] for e in found.json()["entry"]}
    assert owners == {"Organization/pkm-a"}  # pkm-b's Patient of that name stays hidden


def test_another_puskesmas_resources_are_forbidden(node, clients):
    origin, b = node[0], clients["pkm-b"]
    url = f"{origin}/fhir/Patient/p-pkm-a"
    _forbidden(b.get(url, timeout=30))
    stolen = _patient("pkm-b", "p-pkm-a")  # moving pkm-a's Patient to pkm-b
    _forbidden(_put(b, origin, stolen))
    _forbidden(b.delete(url, timeout=30))
    _forbidden(b.post(f"{origin}/fhir/Patient", json=_patient("pkm-a"), timeout=30))
    own = _patient("pkm-b", f"p-{uuid.uuid4().hex[:8]}")
    _forbidden(_put_all(b, origin, [own, stolen]))  # refused whole
    assert b.get(f"{origin}/fhir/Patient/{own['id']}", timeout=30).status_code == 404
    unchanged = clients["pkm-a"].get(url, timeout=30)
    assert unchanged.status_code == 200
    assert unchanged.json()["meta"]["versionId"] == "1"
    assert unchanged.json()["managingOrganization"]["reference"] == "Organization/pkm-a"


def test_every_write_and_every_refusal_leaves_an_audit_event(node, clients):
    origin, a, national = node[0], clients["pkm-a"], clients["national"]
    writes, refusals = _audit_count(national, origin, "0"), _audit_count(national, origin, "4")
    created = a.post(f"{origin}/fhir/Patient", json=_patient("pkm-a"), timeout=30)
    assert created.status_code == 201, created.text
    patient = created.json()
    assert _put(a, origin, patient | {"gender": "female"}).status_code == 200
    pair = [_patient("pkm-a", f"p-{uuid.uuid4().hex[:8]}") for _ in range(2)]
    assert _put_all(a, origin, pair).status_code == 200  # one transaction: one event
    _forbidden(clients["pkm-b"].get(f"{origin}/fhir/Patient/{patient['id']}", timeout=30))
    assert _audit_count(national, origin, "0") == writes + 3
    assert _audit_count(national, origin, "4") == refusals + 1
    query = {"entity": f"Patient/{patient['id']}", "action": "C"}
    found = national.get(f"{origin}/fhir/AuditEvent", params=query, timeout=30).json()
    (event,) = [entry["resource"] for entry in found["entry"]]
    assert event["agent"][0]["who"]["identifier"]["value"] == "pkm-a"
    assert event["agent"][1]["who"]["reference"] == "Organization/pkm-a"
    versions = [entity["what"]["reference"] for entity in event["entity"]]
    assert versions == [f"Patient/{patient['id']}/_history/1"]


def test_a_revoked_client_token_fails_at_once(node, clients):
    origin, env, secrets = node
    tablet = clients["tablet-a"]
    url = f"{origin}/fhir/Patient/p-pkm-a"
    assert tablet.get(url, timeout=30).status_code == 200
    revoked = _ilp(env, "clients", "revoke", "tablet-a")
    assert revoked.returncode == 0, revoked.stderr
    for _ in range(4):  # each gunicorn worker, whichever answers
        refused = tablet.get(url, timeout=30)
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert _token(origin, "tablet-a", secrets["tablet-a"]).status_code == 401
    assert clients["pkm-a"].get(url, timeout=30).status_code == 200  # others go on
