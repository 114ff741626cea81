"""National mode (docs/national-mode.md): SATUSEHAT's token endpoint and the /fhir-r4/v1 mount.

Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import gzip
import json
import time

import pytest

from server import create_app
from server.services.tokens import AccessTokens
from tests.api.test_bundles import bundle, entry, post_bundle, urn
from tests.helpers import created_id, patient, post

CLIENTS = "puskesmas-a:s3cret"
TOKEN_URL = "/oauth2/v1/accesstoken"
FHIR = "/fhir-r4/v1"
NIK = "https://fhir.kemkes.go.id/id/nik"
APIGEE_KEYS = {
    "access_token",
    "token_type",
    "issued_at",
    "expires_in",
    "client_id",
    "application_name",
    "organization_name",
    "status",
    "scope",
    "refresh_count",
    "refresh_token_expires_in",
    "api_product_list",
}


@contextlib.contextmanager
def national_app(settings, clients=CLIENTS, **changes):
    """An application in national mode (the test settings plus ``clients``)."""
    application = create_app(dataclasses.replace(settings, national_clients=clients, **changes))
    application.config["TESTING"] = True
    try:
        yield application
    finally:
        application.extensions["ilp"].engine.dispose()


@pytest.fixture
def national(settings):
    with national_app(settings) as application:
        yield application.test_client()


def request_token(client, client_id="puskesmas-a", secret="s3cret", grant="client_credentials"):
    return client.post(
        f"{TOKEN_URL}?grant_type={grant}",
        data={"client_id": client_id, "client_secret": secret},
    )


def token_of(client, **credentials):
    response = request_token(client, **credentials)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth(national):
    return bearer(token_of(national))


def assert_invalid_token(response):
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.mimetype == "application/fhir+json"
    assert response.get_json() == {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "login", "diagnostics": "Invalid Access Token."}],
    }


# The token endpoint


def test_token_response_has_satusehat_shape(national):
    before = int(time.time() * 1000)
    response = request_token(national)
    after = int(time.time() * 1000)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body) == APIGEE_KEYS
    assert all(isinstance(value, str) for value in body.values()), body
    assert body["access_token"]
    assert before <= int(body["issued_at"]) <= after
    assert {
        key: value for key, value in body.items() if key not in ("access_token", "issued_at")
    } == {
        "token_type": "BearerToken",
        "expires_in": "14399",
        "client_id": "puskesmas-a",
        "application_name": "puskesmas-a",
        "organization_name": "puskesmas-a",
        "status": "approved",
        "scope": "system/*.cruds",  # SMART v2: a national client holds every scope
        "refresh_count": "0",
        "refresh_token_expires_in": "0",
        "api_product_list": "[]",
    }


def test_expires_in_is_the_configured_lifetime(settings):
    with national_app(settings, token_lifetime=600) as application:
        response = request_token(application.test_client())
    assert response.get_json()["expires_in"] == "600"


@pytest.mark.parametrize("query", ["", "?grant_type=password", "?grant_type="])
def test_other_or_missing_grant_type_is_unsupported(national, query):
    response = national.post(
        TOKEN_URL + query, data={"client_id": "puskesmas-a", "client_secret": "s3cret"}
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "unsupported_grant_type"


def test_grant_type_is_read_from_the_query_string_or_the_body(national):
    # SATUSEHAT takes it from the query string; RFC 6749 clients send it in the form body
    response = national.post(
        TOKEN_URL,
        data={
            "grant_type": "client_credentials",
            "client_id": "puskesmas-a",
            "client_secret": "s3cret",
        },
    )
    assert response.status_code == 200
    assert response.get_json()["access_token"]
    wrong = national.post(TOKEN_URL, data={"grant_type": "password", "client_id": "puskesmas-a"})
    assert wrong.status_code == 400
    assert wrong.get_json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(
    "client_id, secret",
    [("puskesmas-a", "wrong"), ("puskesmas-b", "s3cret"), ("puskesmas-a", ""), ("", "")],
)
def test_bad_credentials_are_invalid_client(national, client_id, secret):
    response = request_token(national, client_id=client_id, secret=secret)
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"
    assert "access_token" not in response.get_json()


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded"])
def test_missing_credentials_are_invalid_client(national, content_type):
    response = national.post(
        f"{TOKEN_URL}?grant_type=client_credentials", data="", content_type=content_type
    )
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_credentials_in_query_string_are_not_read(national):
    response = national.post(
        f"{TOKEN_URL}?grant_type=client_credentials&client_id=puskesmas-a&client_secret=s3cret",
        data={},
    )
    assert response.status_code == 401


def test_credentials_must_be_form_encoded(national):
    credentials = {"client_id": "puskesmas-a", "client_secret": "s3cret"}
    response = national.post(f"{TOKEN_URL}?grant_type=client_credentials", json=credentials)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_token_endpoint_is_post_only(national):
    response = national.get(f"{TOKEN_URL}?grant_type=client_credentials")
    assert response.status_code == 405
    assert response.get_json()["resourceType"] == "OperationOutcome"


# FHIR under /fhir-r4/v1 with a token


def test_create_read_and_search(national, auth):
    created = post(national, f"{FHIR}/Patient", patient(), **auth)
    assert created.status_code == 201
    rid = created_id(created)
    # Location follows ILP_BASE_URL (docs/national-mode.md, limits).
    assert created.headers["Location"] == f"http://testserver/fhir/Patient/{rid}/_history/1"
    read = national.get(f"{FHIR}/Patient/{rid}", headers=auth)
    assert read.status_code == 200 and read.get_json()["id"] == rid
    found = national.get(f"{FHIR}/Patient?identifier={NIK}|3201234567890001", headers=auth)
    assert found.status_code == 200
    assert [e["resource"]["id"] for e in found.get_json()["entry"]] == [rid]


def test_same_data_as_fhir(national, auth):
    rid = created_id(post(national, f"{FHIR}/Patient", patient(), **auth))
    assert national.get(f"/fhir/Patient/{rid}").status_code == 200


def test_conditional_create(national, auth):
    condition = {"If-None-Exist": f"identifier={NIK}|3201234567890001"}
    first = post(national, f"{FHIR}/Patient", patient(), **auth, **condition)
    assert first.status_code == 201
    again = post(national, f"{FHIR}/Patient", patient(family="Other"), **auth, **condition)
    assert again.status_code == 200
    assert again.get_json()["id"] == created_id(first)


def test_transaction_bundle(national, auth):
    full_url = urn()
    body = bundle(
        "transaction",
        entry("POST", "Patient", patient(), full_url),
        entry(
            "POST",
            "Encounter",
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": full_url},
            },
        ),
    )
    response = post_bundle(national, body, path=FHIR, **auth)
    assert response.status_code == 200, response.get_json()
    result = response.get_json()
    assert result["type"] == "transaction-response"
    assert [e["response"]["status"] for e in result["entry"]] == ["201 Created"] * 2


def test_lowercase_scheme_is_accepted(national):
    token = token_of(national)
    response = national.get(f"{FHIR}/metadata", headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200


# The FHIR blueprint's hooks and the error handlers on the second mount


def test_content_negotiation_runs(national, auth):
    response = national.get(f"{FHIR}/metadata", headers={**auth, "Accept": "application/xml"})
    assert response.status_code == 406
    assert response.get_json()["resourceType"] == "OperationOutcome"
    json_response = national.get(f"{FHIR}/metadata", headers={**auth, "Accept": "application/json"})
    assert json_response.content_type == "application/json; charset=utf-8"


def test_gzip_runs(national, auth):
    response = national.get(f"{FHIR}/metadata", headers={**auth, "Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.data).startswith(b'{"resourceType":"CapabilityStatement"')


def test_errors_are_operation_outcomes(national, auth):
    missing = national.get(f"{FHIR}/Patient/nobody", headers=auth)
    assert missing.status_code == 404
    assert missing.get_json()["issue"][0]["code"] == "not-found"
    unknown = national.get(f"{FHIR}/Patient/a/b/c/d", headers=auth)
    assert unknown.status_code == 404
    assert unknown.get_json()["resourceType"] == "OperationOutcome"
    invalid = post(national, f"{FHIR}/Patient", {"resourceType": "Patient", "x": 1}, **auth)
    assert invalid.status_code == 400
    assert invalid.get_json()["resourceType"] == "OperationOutcome"


# Refused tokens


def _tampered(token):
    """The token with its expiry pushed a day later and the signature kept."""
    payload, signature = token.split(".")
    client_id, expiry, *rest = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged = json.dumps([client_id, expiry + 86400, *rest]).encode()
    return f"{base64.urlsafe_b64encode(forged).rstrip(b'=').decode()}.{signature}"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer garbage",
        "Bearer a.b",
        "Basic cHVza2VzbWFzOnMzY3JldA==",
    ],
)
def test_missing_or_garbage_token_is_401(national, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    assert_invalid_token(national.get(f"{FHIR}/metadata", headers=headers))


def test_expired_token_is_401(national, settings):
    lifetime = settings.token_lifetime
    issued_long_ago = AccessTokens(
        {"puskesmas-a": "s3cret"}, lifetime, clock=lambda: time.time() - lifetime - 1
    )
    token = issued_long_ago.issue("puskesmas-a", "s3cret")
    assert token is not None
    assert_invalid_token(national.get(f"{FHIR}/metadata", headers=bearer(token.value)))


def test_tampered_token_is_401(national):
    token = token_of(national)
    assert_invalid_token(national.get(f"{FHIR}/metadata", headers=bearer(_tampered(token))))


def test_every_route_needs_the_token(national):
    rid = created_id(post(national, "/fhir/Patient", patient()))
    assert_invalid_token(national.get(f"{FHIR}/Patient/{rid}"))
    assert_invalid_token(national.get(f"{FHIR}/Patient"))
    assert_invalid_token(national.post(FHIR, json=bundle("batch")))
    assert_invalid_token(national.delete(f"{FHIR}/Patient/{rid}"))
    # Before routing errors and content negotiation, too.
    assert_invalid_token(national.get(f"{FHIR}/no/such/route/here"))
    assert_invalid_token(national.get(FHIR))
    assert_invalid_token(national.get(f"{FHIR}/metadata", headers={"Accept": "text/html"}))


def test_refused_write_writes_nothing(national):
    assert_invalid_token(post(national, f"{FHIR}/Patient", patient()))
    assert "entry" not in national.get("/fhir/Patient").get_json()


def test_fhir_stays_open(national):
    assert national.get("/fhir/metadata").status_code == 200
    assert post(national, "/fhir/Patient", patient()).status_code == 201


# Several processes, secret rotation, mode off


def test_token_of_one_instance_is_accepted_by_another(settings):
    # Two applications with the same settings stand in for two gunicorn workers.
    with national_app(settings) as first, national_app(settings) as second:
        token = token_of(first.test_client())
        response = second.test_client().get(f"{FHIR}/metadata", headers=bearer(token))
    assert response.status_code == 200


def test_rotating_the_secret_invalidates_tokens(settings):
    with national_app(settings) as before:
        token = token_of(before.test_client())
    with national_app(settings, clients="puskesmas-a:n3w") as after:
        client = after.test_client()
        assert_invalid_token(client.get(f"{FHIR}/metadata", headers=bearer(token)))
        assert request_token(client).status_code == 401
        fresh = token_of(client, secret="n3w")
        assert client.get(f"{FHIR}/metadata", headers=bearer(fresh)).status_code == 200


def test_mode_off_has_no_national_fhir_path(client):
    # the token path serves the clients of `ilp clients` (docs/security.md); none here
    token_response = request_token(client)
    assert token_response.status_code == 401
    assert token_response.get_json()["error"] == "invalid_client"
    fhir_response = client.get(f"{FHIR}/metadata", headers={"Authorization": "Bearer x"})
    assert fhir_response.status_code == 404
    assert fhir_response.get_json()["issue"][0]["code"] == "not-found"
