"""SMART backend services: tokens for clients that sign assertions with their own keys."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from server import create_app
from server.cli import main
from server.services import clients
from tests.security.conftest import TOKEN_URL

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
AUDIENCE = "http://localhost/oauth2/v1/accesstoken"  # the test client's token URL


def _key(kind):
    key = ECKey.generate_key("P-384") if kind == "ES384" else RSAKey.generate_key(2048)
    public = key.as_dict(private=False)
    public["kid"] = f"{kind}-1"
    return key, {"keys": [public]}


def assertion(key, kind, client_id="bs-1", **changes):
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": AUDIENCE,
        "exp": int(time.time()) + 240,
        "jti": str(uuid.uuid4()),
        **changes,
    }
    claims = {k: v for k, v in claims.items() if v is not None}
    header = {"alg": kind, "kid": f"{kind}-1", "typ": "JWT"}
    return jwt.encode(header, claims, key, algorithms=[kind])


def ask(client, signed, scope="system/*.rs", kind=ASSERTION_TYPE):
    return client.post(
        TOKEN_URL,
        data={"client_assertion_type": kind, "client_assertion": signed, "scope": scope},
    )


@pytest.fixture
def backend(secure_settings):
    app = create_app(secure_settings)
    keys = {kind: _key(kind) for kind in ("ES384", "RS384")}
    clients.add_client(
        app.extensions["ilp"].engine, "bs-1", scopes="system/*.rs", jwks=keys["ES384"][1]
    )
    clients.add_client(
        app.extensions["ilp"].engine, "bs-2", scopes="system/*.rs", jwks=keys["RS384"][1]
    )
    yield app.test_client(), keys
    app.extensions["ilp"].engine.dispose()


@pytest.mark.parametrize("kind, client_id", [("ES384", "bs-1"), ("RS384", "bs-2")])
def test_a_signed_assertion_gets_a_token(backend, kind, client_id):
    client, keys = backend
    response = ask(client, assertion(keys[kind][0], kind, client_id))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["scope"] == "system/*.rs" and body["client_id"] == client_id
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/fhir/Patient", headers=headers).status_code == 200


def test_bad_assertions_are_refused(backend):
    client, keys = backend
    key = keys["ES384"][0]
    wrong_key = _key("ES384")[0]
    bad = [
        assertion(wrong_key, "ES384"),  # not the registered key
        assertion(key, "ES384", aud="https://elsewhere/token"),
        assertion(key, "ES384", exp=int(time.time()) - 5),  # expired
        assertion(key, "ES384", exp=int(time.time()) + 3600),  # beyond SMART's five minutes
        assertion(key, "ES384", sub="bs-2"),
        assertion(key, "ES384", jti=None),
        assertion(key, "ES384", client_id="bs-2"),  # signed by bs-1's key, claiming bs-2
        "not.a.jwt",
        "",
    ]
    for signed in bad:
        response = ask(client, signed)
        assert response.status_code == 401, signed
        assert response.get_json()["error"] == "invalid_client"
    assert ask(client, assertion(key, "ES384"), kind="urn:other").status_code == 400


def test_an_assertion_is_used_once(backend):
    client, keys = backend
    signed = assertion(keys["ES384"][0], "ES384")
    assert ask(client, signed).status_code == 200
    assert ask(client, signed).status_code == 401  # replayed


def test_a_backend_client_has_no_secret_to_guess(backend):
    client, _ = backend
    response = client.post(TOKEN_URL, data={"client_id": "bs-1", "client_secret": ""})
    assert response.status_code == 401


def test_revoking_stops_assertions(backend, secure_settings):
    client, keys = backend
    engine = client.application.extensions["ilp"].engine
    clients.revoke_client(engine, "bs-1")
    assert ask(client, assertion(keys["ES384"][0], "ES384")).status_code == 401


def test_cli_registers_public_keys_only(settings, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("ILP_DATABASE_URL", settings.database_url)
    key, public = _key("ES384")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(public))
    assert main(["clients", "add", "bs-cli", "--jwks", str(path)]) == 0
    assert "assertions" in capsys.readouterr().out
    private = {"keys": [{**key.as_dict(private=True), "kid": "p"}]}
    path.write_text(json.dumps(private))
    assert main(["clients", "add", "bs-bad", "--jwks", str(path)]) == 1
    assert "private key" in capsys.readouterr().err


def test_discovery_lists_private_key_jwt(backend):
    client, _ = backend
    config = client.get("/fhir/.well-known/smart-configuration").get_json()
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
    assert config["token_endpoint"] == AUDIENCE
