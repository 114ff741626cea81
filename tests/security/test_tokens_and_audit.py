"""Clients, tokens and the audit trail: refused tokens, hashed secrets, ``ilp clients``, and an
AuditEvent for every write and refusal, in the write's own transaction."""

from __future__ import annotations

import base64
import dataclasses
import json
import time

import sqlalchemy as sa

from server import create_app
from server.cli import main
from server.services import clients
from tests.security.conftest import bearer, bundle, observation, patient, token_response


def audit_events(district, query=""):
    response = district.client.get(
        f"/fhir/AuditEvent?_count=100{query}", headers=district.as_("national")
    )
    assert response.status_code == 200
    return [e["resource"] for e in response.get_json().get("entry", [])]


def test_requests_without_a_good_token_are_401(district):
    c = district.client
    missing = c.get("/fhir/Patient")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert missing.get_json()["issue"][0]["code"] == "login"
    for token in ("garbage", "a.b", district.headers["pkm-a"]["Authorization"][7:] + "x"):
        response = c.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_expired_tokens_are_refused(secure_settings):
    app = create_app(dataclasses.replace(secure_settings, token_lifetime=1))
    secret = clients.add_client(app.extensions["ilp"].engine, "short", scopes="system/*.rs")
    client = app.test_client()
    headers = bearer(client, "short", secret)
    assert client.get("/fhir/Patient", headers=headers).status_code == 200
    time.sleep(2.1)
    assert client.get("/fhir/Patient", headers=headers).status_code == 401
    app.extensions["ilp"].engine.dispose()


def test_a_revoked_client_is_refused_at_once(district):
    c = district.client
    assert c.get("/fhir/Patient", headers=district.as_("pkm-b")).status_code == 200
    assert clients.revoke_client(district.app.extensions["ilp"].engine, "pkm-b")
    assert c.get("/fhir/Patient", headers=district.as_("pkm-b")).status_code == 401
    assert token_response(c, "pkm-b", district.secrets["pkm-b"]).status_code == 401


def test_wrong_secrets_and_http_basic(district):
    c = district.client
    for client_id, secret in (("pkm-a", "wrong"), ("nobody", "x"), ("pkm-a", "")):
        response = token_response(c, client_id, secret)
        assert response.status_code == 401
        assert response.get_json()["error"] == "invalid_client"
    basic = base64.b64encode(f"pkm-a:{district.secrets['pkm-a']}".encode()).decode()
    response = c.post(
        "/oauth2/v1/accesstoken",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_secrets_are_stored_only_as_salted_hashes(district):
    engine = district.app.extensions["ilp"].engine
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT client_id, secret_hash FROM api_client")).all()
    hashes = {row.client_id: row.secret_hash for row in rows}
    for client_id, secret in district.secrets.items():
        assert secret not in hashes[client_id]
        assert hashes[client_id].startswith("scrypt$")
    assert len(set(hashes.values())) == len(hashes)


def test_ilp_clients_command(settings, monkeypatch, capsys):
    monkeypatch.setenv("ILP_DATABASE_URL", settings.database_url)
    assert main(["clients", "add", "pustu-1", "--organization", "pkm-a", "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["client_id"] == "pustu-1" and len(added["client_secret"]) >= 40
    assert main(["clients", "add", "dinkes", "--region", "32.01", "--scope", "system/*.rs"]) == 0
    capsys.readouterr()
    assert main(["clients", "add", "pustu-1"]) == 1  # taken
    assert "exists already" in capsys.readouterr().err
    assert main(["clients", "add", "bad", "--scope", "patient/*.read"]) == 1
    assert main(["clients", "add", "both", "--region", "x1"]) == 1
    capsys.readouterr()
    assert main(["clients", "list", "--json"]) == 0
    listed = {c["client_id"]: c for c in json.loads(capsys.readouterr().out)}
    assert listed["pustu-1"]["organization"] == "pkm-a"
    assert listed["dinkes"]["region"] == "3201"
    assert listed["dinkes"]["scopes"] == "system/*.rs"
    assert "secret" not in json.dumps(listed)
    assert main(["clients", "revoke", "pustu-1"]) == 0
    assert main(["clients", "revoke", "nobody"]) == 1
    capsys.readouterr()
    assert main(["clients", "list"]) == 0
    assert "pustu-1\trevoked" in capsys.readouterr().out


# -- audit -----------------------------------------------------------------------------------


def test_every_write_leaves_an_audit_event_naming_client_facility_and_version(district):
    c = district.client
    before = len(audit_events(district))
    response = c.post(
        "/fhir/Patient", json=patient("n1", "pkm-a", "Baru"), headers=district.as_("pkm-a")
    )
    assert response.status_code == 201
    new_id = response.get_json()["id"]
    events = audit_events(district)
    assert len(events) == before + 1
    version = f"Patient/{new_id}/_history/1"
    found = [e for e in events if version in [x["what"]["reference"] for x in e.get("entity", [])]]
    assert len(found) == 1
    event = found[0]
    assert event["action"] == "C" and event["outcome"] == "0"
    assert event["subtype"][0]["code"] == "create"
    agent, facility = event["agent"]
    assert agent["who"]["identifier"]["value"] == "pkm-a"
    assert agent["network"]["address"] == "127.0.0.1"
    assert facility["who"]["reference"] == "Organization/pkm-a"


def test_a_transaction_leaves_one_event_with_every_version(district):
    body = bundle("transaction", patient("t1", "pkm-a", "Satu"), observation("t2", "t1", "ea"))
    assert (
        district.client.post("/fhir", json=body, headers=district.as_("pkm-a")).status_code == 200
    )
    events = audit_events(district, "&entity=Patient/t1")
    assert len(events) == 1
    assert {x["what"]["reference"] for x in events[0]["entity"]} == {
        "Patient/t1/_history/1",
        "Observation/t2/_history/1",
    }


def test_refused_requests_are_audited_and_failed_writes_are_not(district):
    c = district.client
    before = audit_events(district)
    c.get("/fhir/Patient/pb", headers=district.as_("pkm-a"))  # 403
    c.get("/fhir/Patient")  # 401
    bad = {"resourceType": "Patient", "birthDate": "not a date"}
    assert c.post("/fhir/Patient", json=bad, headers=district.as_("pkm-a")).status_code == 400
    new = [e for e in audit_events(district) if e["id"] not in {b["id"] for b in before}]
    assert sorted(e["outcome"] for e in new) == ["4", "4"]
    refused = {e["agent"][0]["who"]["identifier"]["value"]: e for e in new}
    assert set(refused) == {"pkm-a", "anonymous"}
    assert "GET /fhir/Patient/pb: 403" in refused["pkm-a"]["outcomeDesc"]
    assert "entity" not in refused["pkm-a"]


def test_the_audit_trail_cannot_be_edited(district):
    c, nat = district.client, district.as_("national")
    event = audit_events(district)[0]
    url = f"/fhir/AuditEvent/{event['id']}"
    assert c.put(url, json=event, headers=nat).status_code == 405
    assert c.delete(url, headers=nat).status_code == 405
    assert c.post("/fhir/AuditEvent", json=event, headers=nat).status_code == 405
    body = bundle("transaction", ("DELETE", f"AuditEvent/{event['id']}"))
    assert c.post("/fhir", json=body, headers=nat).status_code == 405
    assert c.get(url, headers=nat).get_json()["meta"]["versionId"] == "1"


def test_auditors_see_their_facilitys_events_only(district):
    c = district.client
    c.post("/fhir/Patient", json=patient("n1", "pkm-a", "A"), headers=district.as_("pkm-a"))
    c.post("/fhir/Patient", json=patient("n2", "pkm-b", "B"), headers=district.as_("pkm-b"))
    response = c.get("/fhir/AuditEvent?_count=100", headers=district.as_("auditor-a"))
    seen = [e["resource"] for e in response.get_json()["entry"]]
    assert seen and all(e["agent"][1]["who"]["reference"] == "Organization/pkm-a" for e in seen)
    assert c.get("/fhir/Patient/pa", headers=district.as_("auditor-a")).status_code == 403


def test_without_authentication_nothing_is_audited(client):
    headers = {"Content-Type": "application/fhir+json"}
    response = client.post("/fhir/Patient", json=patient("x", "pkm-a", "X"), headers=headers)
    assert response.status_code == 201
    assert client.get("/fhir/AuditEvent?_summary=count").get_json()["total"] == 0


def test_serving_without_authentication_warns_and_binds_to_loopback(monkeypatch, caplog):
    started = []
    monkeypatch.setattr("os.execv", lambda path, command: started.append(command))
    monkeypatch.setenv("ILP_HOST", "0.0.0.0")
    monkeypatch.setenv("ILP_AUTH", "off")
    assert main(["serve"]) == 0
    assert started[0][started[0].index("--bind") + 1] == "127.0.0.1:8080"
    assert "ILP_AUTH is off" in caplog.text
    monkeypatch.setenv("ILP_AUTH", "on")
    assert main(["serve"]) == 0
    assert started[1][started[1].index("--bind") + 1] == "0.0.0.0:8080"
