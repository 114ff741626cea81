"""The upstream client: SATUSEHAT's OAuth2 token, FHIR calls, and failures sorted for retry.

No database: an ``Upstream`` over the scripted fake, with an injected clock.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from urllib.parse import parse_qs, urlsplit

import pytest

from server.config import Settings
from server.services.sync.transport import Reply, TransportError
from server.services.sync.upstream import Refused, Transient, Upstream
from tests.sync.fakes import BASE, FORM, TOKEN_URL, FakeUpstream, json_reply, outcome, outcome_reply

NIK = "https://fhir.kemkes.go.id/id/nik"
SECRET = "s3cr&t=+/ü"  # everything a form body must escape
PATIENT = {"resourceType": "Patient", "name": [{"family": "Siti"}]}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def settings(**overrides) -> Settings:
    values = {
        "upstream_url": BASE,
        "upstream_token_url": TOKEN_URL,
        "upstream_client_id": "client-1",
        "upstream_client_secret": SECRET,
        "upstream_organization_id": "100026",
        "sync_timeout": 7,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture
def fake():
    return FakeUpstream()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def upstream(fake, clock):
    return Upstream(settings(), fake, clock)


# the token -----------------------------------------------------------------------------------


def test_token_request_has_satusehats_shape_and_is_used_as_bearer(fake, upstream):
    upstream.create("Patient", PATIENT, None)

    token_request, post = fake.requests
    assert token_request.method == "POST"
    assert urlsplit(token_request.url)._replace(query="").geturl() == TOKEN_URL
    assert parse_qs(urlsplit(token_request.url).query) == {"grant_type": ["client_credentials"]}
    assert token_request.header["content-type"] == FORM
    assert token_request.body == {"client_id": "client-1", "client_secret": SECRET}
    assert post.method == "POST" and post.url == f"{BASE}/Patient"
    assert post.header["authorization"] == "Bearer tok1"
    assert post.timeout == 7


def test_token_url_with_a_query_keeps_it(fake, clock):
    fake.token_url = TOKEN_URL  # the fake compares without the query
    Upstream(settings(upstream_token_url=f"{TOKEN_URL}?env=stg"), fake, clock).find(
        "Patient", {"identifier": f"{NIK}|1"}
    )

    query = parse_qs(urlsplit(fake.token_requests[0].url).query)
    assert query == {"env": ["stg"], "grant_type": ["client_credentials"]}


def test_no_token_url_means_no_token_and_no_authorization(clock):
    fake = FakeUpstream(require_token=False)
    Upstream(settings(upstream_token_url=""), fake, clock).create("Patient", PATIENT, None)

    assert fake.token_requests == []
    assert "authorization" not in fake.requests[0].header


def test_token_is_cached_until_shortly_before_expires_in(fake, clock, upstream):
    # SATUSEHAT's expires_in is a string of seconds: "14399"
    upstream.create("Patient", PATIENT, None)
    clock.now += 10
    upstream.create("Patient", PATIENT, None)
    clock.now += 14399 - 10 - 120  # two minutes before expiry: still good
    upstream.create("Patient", PATIENT, None)

    assert len(fake.token_requests) == 1
    assert {r.token for r in fake.fhir()} == {"tok1"}

    clock.now += 115  # five seconds before expiry: too close, a new token first
    upstream.create("Patient", PATIENT, None)

    assert len(fake.token_requests) == 2
    assert fake.fhir()[-1].token == "tok2"


def test_token_is_fetched_again_after_expiry(fake, clock, upstream):
    upstream.find("Patient", {"identifier": f"{NIK}|1"})
    clock.now += 14399 + 1
    fake.expire_tokens()
    upstream.find("Patient", {"identifier": f"{NIK}|1"})

    assert len(fake.token_requests) == 2
    assert [r.token for r in fake.fhir()] == ["tok1", "tok2"]


def test_a_short_lived_token_is_still_used_once(clock):
    fake = FakeUpstream(expires_in="30")
    Upstream(settings(), fake, clock).create("Patient", PATIENT, None)

    assert [r.method for r in fake.requests] == ["POST", "POST"]
    assert fake.fhir()[0].token == "tok1"


def test_401_fetches_a_new_token_and_retries_once(fake, upstream):
    upstream.create("Patient", PATIENT, None)
    fake.expire_tokens()  # revoked upstream before our clock says so

    created = upstream.create("Patient", PATIENT, None)

    assert created == "u2"
    assert [r.token for r in fake.fhir("POST")] == ["tok1", "tok1", "tok2"]
    assert len(fake.token_requests) == 2


@pytest.mark.parametrize("status", [400, 401])
def test_invalid_access_token_outcome_fetches_a_new_token_and_retries(fake, upstream, status):
    fake.reply("PUT", r"/Patient/", outcome_reply(status, "invalid-access-token", "expired"))

    upstream.update("Patient", "P1", {**PATIENT, "id": "P1"})

    assert [r.token for r in fake.fhir("PUT")] == ["tok1", "tok2"]
    assert fake.store[("Patient", "P1")]["name"] == PATIENT["name"]


def test_invalid_access_token_outcome_with_200_fetches_a_new_token_and_retries(fake, upstream):
    # SATUSEHAT has answered an expired token with 200 and this OperationOutcome: it must not
    # count as a successful write.
    fake.reply("PUT", r"/Patient/", outcome_reply(200, "invalid-access-token", "expired"))

    upstream.update("Patient", "P1", {**PATIENT, "id": "P1"})

    assert [r.token for r in fake.fhir("PUT")] == ["tok1", "tok2"]
    assert ("Patient", "P1") in fake.store


def test_a_token_refused_twice_is_refused_not_retried_forever(fake, upstream):
    fake.reply("POST", r"/Patient$", Reply(401), repeat=True)

    with pytest.raises(Refused):
        upstream.create("Patient", PATIENT, None)

    assert len(fake.fhir("POST")) == 2
    assert len(fake.token_requests) == 2


def test_token_endpoint_refusing_the_client_is_refused(fake, upstream):
    fake.reply("POST", r"accesstoken", json_reply(401, {"error": "invalid_client"}))

    with pytest.raises(Refused) as caught:
        upstream.create("Patient", PATIENT, None)

    assert "401" in caught.value.reason
    assert fake.fhir() == []


def test_token_endpoint_down_is_transient(fake, upstream):
    fake.reply("POST", r"accesstoken", Reply(503, b"", {"retry-after": "12"}))

    with pytest.raises(Transient) as caught:
        upstream.create("Patient", PATIENT, None)

    assert caught.value.retry_after == 12
    assert fake.fhir() == []


# failures sorted -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient(fake, upstream, status):
    fake.reply("POST", r"/Patient$", outcome_reply(status, "exception", "backend down"))

    with pytest.raises(Transient) as caught:
        upstream.create("Patient", PATIENT, None)

    assert str(status) in caught.value.reason
    assert caught.value.retry_after is None


def test_no_answer_is_transient(fake, upstream):
    fake.reply("POST", r"/Patient$", TransportError("timed out"))

    with pytest.raises(Transient) as caught:
        upstream.create("Patient", PATIENT, None)

    assert "timed out" in caught.value.reason


def test_429_with_retry_after_seconds(fake, upstream):
    fake.reply("POST", r"/Patient$", outcome_reply(429, "throttled", "slow down"))
    fake.reply("POST", r"/Patient$", Reply(429, b"", {"retry-after": "7"}))

    with pytest.raises(Transient) as without:
        upstream.create("Patient", PATIENT, None)
    with pytest.raises(Transient) as told:
        upstream.create("Patient", PATIENT, None)

    assert without.value.retry_after is None
    assert told.value.retry_after == 7


def test_429_with_retry_after_as_an_http_date(fake, upstream):
    when = formatdate(time.time() + 120, usegmt=True)
    fake.reply("POST", r"/Patient$", Reply(429, b"", {"retry-after": when}))

    with pytest.raises(Transient) as caught:
        upstream.create("Patient", PATIENT, None)

    assert 115 <= caught.value.retry_after <= 121


def test_retry_after_in_the_past_or_unreadable(fake, upstream):
    fake.reply("POST", r"/Patient$", Reply(503, b"", {"retry-after": formatdate(0, usegmt=True)}))
    fake.reply("POST", r"/Patient$", Reply(503, b"", {"retry-after": "soon"}))

    with pytest.raises(Transient) as past:
        upstream.create("Patient", PATIENT, None)
    with pytest.raises(Transient) as unreadable:
        upstream.create("Patient", PATIENT, None)

    assert past.value.retry_after == 0
    assert unreadable.value.retry_after is None


@pytest.mark.parametrize("status", [400, 403, 404, 409, 412, 422])
def test_client_errors_are_refused_with_the_operation_outcome(fake, upstream, status):
    refusal = outcome("required", "Encounter.subject is required")
    fake.reply("POST", r"/Encounter$", json_reply(status, refusal))

    with pytest.raises(Refused) as caught:
        upstream.create("Encounter", {"resourceType": "Encounter"}, None)

    assert caught.value.detail == refusal
    assert str(status) in caught.value.reason
    assert "Encounter.subject is required" in caught.value.reason


def test_refusal_without_a_json_body(fake, upstream):
    fake.reply("POST", r"/Encounter$", Reply(400, b"<html>Bad Request</html>", {}))

    with pytest.raises(Refused) as caught:
        upstream.create("Encounter", {"resourceType": "Encounter"}, None)

    assert caught.value.detail is None


# the interactions ----------------------------------------------------------------------------


def test_create_returns_the_id_from_location_and_sends_fhir_json(fake, upstream):
    fake.reply(
        "POST",
        r"/Observation$",
        Reply(201, b"", {"location": f"{BASE}/Observation/obs-77/_history/1"}),
    )

    created = upstream.create("Observation", {"resourceType": "Observation"}, None)

    post = fake.fhir("POST")[0]
    assert created == "obs-77"
    assert post.header["content-type"] == "application/fhir+json"
    assert post.header["accept"] == "application/fhir+json"
    assert post.body == {"resourceType": "Observation"}
    assert "if-none-exist" not in post.header


def test_conditional_create_sends_if_none_exist_and_takes_the_matched_id(fake, upstream):
    system = "http://sys-ids.kemkes.go.id/encounter/100026"
    existing = fake.add(
        {"resourceType": "Encounter", "identifier": [{"system": system, "value": "e1"}]}
    )

    found = upstream.create("Encounter", {"resourceType": "Encounter"}, f"identifier={system}|e1")

    assert found == existing
    assert fake.fhir("POST")[0].header["if-none-exist"] == f"identifier={system}|e1"
    assert len(fake.resources("Encounter")) == 1


def test_create_takes_the_id_from_the_body_without_location(fake, upstream):
    fake.reply("POST", r"/Patient$", json_reply(201, {**PATIENT, "id": "P9"}))

    assert upstream.create("Patient", PATIENT, None) == "P9"


def test_create_without_any_id_in_the_answer_is_refused(fake, upstream):
    fake.reply("POST", r"/Patient$", Reply(201, b"", {}))

    with pytest.raises(Refused):
        upstream.create("Patient", PATIENT, None)


def test_update_puts_to_the_upstream_id(fake, upstream):
    upstream.update("Patient", "P100", {**PATIENT, "id": "P100"})

    put = fake.fhir("PUT")[0]
    assert put.url == f"{BASE}/Patient/P100"
    assert put.body["id"] == "P100"


def test_delete_of_something_already_gone_is_fine(fake, upstream):
    fake.reply("DELETE", r"/Patient/", outcome_reply(410, "deleted", "gone"))

    upstream.delete("Patient", "P1")  # 410
    upstream.delete("Patient", "P2")  # 404 from the store

    assert [r.url for r in fake.fhir("DELETE")] == [f"{BASE}/Patient/P1", f"{BASE}/Patient/P2"]


def test_delete_refused_is_refused(fake, upstream):
    fake.reply("DELETE", r"/Patient/", outcome_reply(403, "forbidden", "not yours"))

    with pytest.raises(Refused):
        upstream.delete("Patient", "P1")


def test_find_sends_the_identifier_and_reads_the_matches(fake, upstream):
    wanted = fake.add({**PATIENT, "identifier": [{"system": NIK, "value": "3201234567890001"}]})
    fake.add({**PATIENT, "identifier": [{"system": NIK, "value": "3201234567890002"}]})

    found = upstream.find("Patient", {"identifier": f"{NIK}|3201234567890001"})

    get = fake.fhir("GET")[0]
    assert found == [wanted]
    assert get.path == "/fhir-r4/v1/Patient"
    assert get.query == {"identifier": f"{NIK}|3201234567890001"}


def test_find_ignores_included_resources_and_outcomes(fake, upstream):
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "P1"}, "search": {"mode": "match"}},
            {"resource": {"resourceType": "Patient", "id": "P2"}, "search": {"mode": "include"}},
            {"resource": outcome("informational", "note"), "search": {"mode": "outcome"}},
        ],
    }
    fake.reply("GET", r"/Patient$", json_reply(200, bundle))

    assert upstream.find("Patient", {"identifier": f"{NIK}|1"}) == ["P1"]


def test_transaction_posts_the_bundle_to_the_base_and_answers_entry_by_entry(fake, upstream):
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0b0c6c52-4d39-4b8e-9b4c-1f1e0f0d0a01",
                "resource": {"resourceType": "Organization", "name": "Posyandu Mawar"},
                "request": {"method": "POST", "url": "Organization"},
            },
            {
                "resource": {
                    "resourceType": "Location",
                    "managingOrganization": {
                        "reference": "urn:uuid:0b0c6c52-4d39-4b8e-9b4c-1f1e0f0d0a01"
                    },
                },
                "request": {"method": "POST", "url": "Location"},
            },
        ],
    }

    responses = upstream.transaction(bundle)

    [post] = fake.fhir("POST")
    assert post.url == BASE and post.body == bundle
    assert [r["location"].split("/")[0] for r in responses] == ["Organization", "Location"]
    [location] = fake.resources("Location")
    assert (
        location["managingOrganization"]["reference"]
        == responses[0]["location"].rsplit("/_history", 1)[0]
    )


def test_a_transaction_answer_that_does_not_match_the_bundle_is_refused(fake, upstream):
    fake.reply("POST", r"/v1$", json_reply(200, {"resourceType": "Bundle", "entry": []}))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": PATIENT, "request": {"method": "POST", "url": "Patient"}}],
    }

    with pytest.raises(Refused):
        upstream.transaction(bundle)
