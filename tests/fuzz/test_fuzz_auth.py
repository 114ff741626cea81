"""Fuzzing with authentication on: the token endpoint, forged and mangled bearer tokens, and
every endpoint as a facility-bound client (docs/security.md).

No answer is a 5xx; a refused request changes no stored row (the audit trail is off here, so
that a refusal writes nothing at all); bad tokens are always 401; a bound client's random
requests never touch another facility's resources.
"""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from server import create_app
from server.services import clients
from tests.fuzz import strategies
from tests.fuzz.driving import describe, load_seeds, problems, send, snapshot
from tests.fuzz.test_fuzz_api import FUZZ

TOKEN_PATH = "/oauth2/v1/accesstoken"
OTHER = {"resourceType": "Organization", "id": "other-pkm", "name": "Puskesmas lain"}
FOREIGN = {
    "resourceType": "Patient",
    "id": "foreign",
    "name": [{"family": "Asing"}],
    "managingOrganization": {"reference": "Organization/other-pkm"},
}


@dataclasses.dataclass
class Secured:
    app: Flask
    client: FlaskClient
    secret: str
    token: str


@pytest.fixture
def secured(app: Flask, client: FlaskClient, settings) -> Secured:
    load_seeds(client)  # unowned: only unbound clients see them
    for resource in (OTHER, FOREIGN):
        url = f"/fhir/{resource['resourceType']}/{resource['id']}"
        assert client.put(url, json=resource, headers={"Content-Type": "application/fhir+json"})
    secure = create_app(dataclasses.replace(settings, auth=True, audit=False))
    engine = secure.extensions["ilp"].engine
    secret = clients.add_client(engine, "pkm-fuzz", scopes="system/*.cruds", organization="pkm")
    test_client = secure.test_client()
    answer = test_client.post(
        f"{TOKEN_PATH}?grant_type=client_credentials",
        data={"client_id": "pkm-fuzz", "client_secret": secret},
    )
    yield Secured(secure, test_client, secret, answer.get_json()["access_token"])
    engine.dispose()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()


@st.composite
def token_requests(draw: st.DrawFn, secret: str) -> tuple[str, dict[str, str], bytes | None]:
    """A query string, headers and body for the token endpoint: mostly wrong in some way."""
    grant = draw(st.sampled_from(["client_credentials", "password", "", "CLIENT_CREDENTIALS"]))
    query = draw(
        st.sampled_from([f"grant_type={grant}", "", "grant_type=client_credentials&x=%00"])
    )
    fields = {
        "client_id": draw(
            st.sampled_from(["pkm-fuzz", "nobody", "", "pkm-fuzz\u0000", "' OR 1=1"])
        ),
        "client_secret": draw(st.one_of(st.just(secret), strategies.weird_text)),
        "scope": draw(
            st.one_of(
                st.sampled_from(
                    [
                        "",
                        "system/*.rs",
                        "system/Patient.cruds",
                        "system/*.xyz",
                        "patient/*.read",
                        "system/../*.rs",
                        "openid system/*.*",
                    ]
                ),
                strategies.weird_text,
            )
        ),
    }
    kept = {k: v for k, v in fields.items() if draw(st.booleans()) or k == "client_id"}
    headers: dict[str, str] = {}
    kind = draw(st.sampled_from(["form", "json", "raw", "basic"]))
    if kind == "form":
        body: bytes | None = "&".join(f"{k}={v}" for k, v in kept.items()).encode(
            "utf-8", "replace"
        )
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif kind == "json":
        body = json.dumps(kept).encode()
        headers["Content-Type"] = "application/json"
    elif kind == "raw":
        body = draw(st.binary(max_size=200))
        headers["Content-Type"] = draw(
            st.sampled_from(["application/x-www-form-urlencoded", "text/plain"])
        )
    else:
        headers["Authorization"] = "Basic " + draw(
            st.one_of(
                st.just(_b64(f"pkm-fuzz:{secret}")), st.text(max_size=40).map(_b64), strategies.text
            )
        )
        body = b"grant_type=client_credentials"
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    return query, headers, body


@st.composite
def mangled_tokens(draw: st.DrawFn, token: str) -> str:
    """A valid token changed in one way, or something else entirely."""
    payload, signature = token.split(".")
    return draw(
        st.one_of(
            strategies.weird_text,
            st.just(payload + "." + signature[::-1]),
            st.just(payload[:-1] + "." + signature),
            st.just(token + "." + signature),
            st.just(
                _b64(json.dumps(["pkm-fuzz", 9999999999, "n", "system/*.cruds"])) + "." + signature
            ),
            st.text(alphabet="ABCxyz0123456789-_.", max_size=300),
        )
    )


@FUZZ
@given(data=st.data())
def test_token_endpoint(secured: Secured, data: st.DataObject) -> None:
    query, headers, body = data.draw(token_requests(secured.secret))
    engine = secured.app.extensions["ilp"].engine
    before = snapshot(engine)
    response = secured.client.post(TOKEN_PATH, query_string=query, data=body, headers=headers)
    assert response.status_code in (200, 400, 401, 413), response.get_data()[:300]
    answer = response.get_json()
    assert isinstance(answer, dict)
    if response.status_code == 200:
        assert answer["client_id"] == "pkm-fuzz" and answer["scope"]
    else:
        assert answer.get("error") or answer.get("resourceType") == "OperationOutcome"
    assert snapshot(engine) == before


@FUZZ
@given(data=st.data())
def test_bad_bearer_tokens_are_401(secured: Secured, data: st.DataObject) -> None:
    token = data.draw(mangled_tokens(secured.token))
    scheme = data.draw(st.sampled_from(["Bearer ", "bearer ", "Bearer  ", "Basic ", ""]))
    path = data.draw(st.sampled_from(["/fhir/Patient", "/fhir/Patient/foreign", "/admin/sync"]))
    try:
        header = (scheme + token).encode("latin-1").decode("latin-1")
    except UnicodeEncodeError:
        header = scheme + token.encode("utf-8", "replace").decode("latin-1")
    response = secured.client.get(path, headers={"Authorization": header})
    assert response.status_code == 401, describe(strategies.Call("auth", "GET", path), response)
    assert response.get_json()["issue"][0]["code"] == "login"


@FUZZ
@given(call=strategies.calls())
def test_any_endpoint_as_a_bound_client(secured: Secured, call: strategies.Call) -> None:
    engine = secured.app.extensions["ilp"].engine
    before = snapshot(engine)
    call = dataclasses.replace(
        call, headers={**call.headers, "Authorization": f"Bearer {secured.token}"}
    )
    response = send(secured.client, call)
    found = problems(call, response, before, snapshot(engine))
    assert not found, "\n".join(found) + "\n" + describe(call, response)
    with engine.connect() as connection:  # the other facility's Patient is never touched
        row = connection.exec_driver_sql(
            "SELECT version_id FROM resource WHERE res_type = 'Patient' AND res_id = 'foreign'"
        ).one()
    assert row.version_id == 1
