"""Hardening: per-client rate limits, security headers, and faults that reveal nothing.

The limiter's arithmetic runs on a fake clock; the HTTP tests use a rate of one request a
minute so that no refill can happen while a test runs, however slow the machine.
"""

from __future__ import annotations

import dataclasses
import logging
import threading

import pytest
from flask import Response, g, request

from server import create_app
from server.http import security_headers
from server.http.limits import retry_after
from server.services import clients, resources
from server.services.ratelimit import RateLimiter
from tests.security.conftest import TOKEN_URL, bearer

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


# --- the limiter ----------------------------------------------------------------------------


def limiter(per_minute=60, burst=3, **kwargs):
    clock = FakeClock()
    return RateLimiter(per_minute, burst, clock=clock, **kwargs), clock


def test_burst_is_admitted_then_refused():
    bucket, _ = limiter(per_minute=60, burst=3)
    assert [bucket.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.acquire("a") == pytest.approx(1.0)  # 60 a minute: one token a second


def test_tokens_refill_at_the_rate_and_never_beyond_the_burst():
    bucket, clock = limiter(per_minute=120, burst=2)  # two tokens a second
    bucket.acquire("a"), bucket.acquire("a")
    clock.now += 0.5
    assert bucket.acquire("a") == 0.0
    assert bucket.acquire("a") == pytest.approx(0.5)
    clock.now += 3600
    assert [bucket.acquire("a") for _ in range(3)] == [0.0, 0.0, pytest.approx(0.5)]


def test_wait_shrinks_as_time_passes_and_refusals_cost_nothing():
    bucket, clock = limiter(per_minute=6, burst=1)  # a token every ten seconds
    bucket.acquire("a")
    assert bucket.acquire("a") == pytest.approx(10.0)
    clock.now += 7.5
    assert bucket.acquire("a") == pytest.approx(2.5)
    assert bucket.acquire("a") == pytest.approx(2.5)  # asking again takes nothing away
    clock.now += 2.5
    assert bucket.acquire("a") == 0.0


@pytest.mark.parametrize(
    "wait, seconds", [(0.001, 1), (0.5, 1), (1.0, 1), (1.01, 2), (59.2, 60), (60.0, 60)]
)
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(wait, seconds):
    assert retry_after(wait) == seconds


def test_keys_have_buckets_of_their_own():
    bucket, _ = limiter(burst=1)
    assert bucket.acquire("a") == 0.0
    assert bucket.acquire("a") > 0
    assert bucket.acquire("b") == 0.0


def test_idle_buckets_are_dropped_once_full_again():
    bucket, clock = limiter(per_minute=60, burst=5)  # full again after five seconds
    for key in ("a", "b", "c"):
        bucket.acquire(key)
    clock.now += 4.9
    bucket.acquire("d")
    assert len(bucket) == 4
    clock.now += 0.2
    bucket.acquire("d")
    assert len(bucket) == 1


def test_rotating_keys_cannot_grow_the_table_beyond_its_bound():
    bucket, _ = limiter(max_keys=100)
    for n in range(10_000):
        bucket.acquire(f"198.51.100.{n}")
    assert len(bucket) == 100


def test_a_busy_limited_key_keeps_its_debt_while_others_come_and_go():
    bucket, clock = limiter(per_minute=60, burst=2, max_keys=50)
    bucket.acquire("busy"), bucket.acquire("busy")
    for n in range(40):  # fewer newcomers than the bound: nothing busy is pushed out
        bucket.acquire(f"other-{n}")
    clock.now += 0.5
    assert bucket.acquire("busy") == pytest.approx(0.5)


def test_concurrent_requests_never_take_more_than_the_burst():
    bucket, _ = limiter(per_minute=60, burst=50)
    admitted = []

    def hammer():
        admitted.extend(wait == 0.0 for wait in (bucket.acquire("k") for _ in range(100)))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 50 and len(admitted) == 800


@pytest.mark.parametrize("args", [(0, 1), (1, 0)])
def test_limiter_refuses_a_meaningless_configuration(args):
    with pytest.raises(ValueError):
        RateLimiter(*args)


# --- rate limits over HTTP ------------------------------------------------------------------


@pytest.fixture
def make_app(settings):
    """Apps built from the test settings with some fields replaced; disposed afterwards."""
    apps = []

    def build(**changes):
        app = create_app(dataclasses.replace(settings, **changes))
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["ilp"].engine.dispose()


def test_over_the_burst_is_429_throttled_with_retry_after(make_app):
    client = make_app(rate_limit=1, rate_burst=3).test_client()
    assert [client.get("/fhir/metadata").status_code for _ in range(3)] == [200] * 3
    response = client.get("/fhir/metadata")
    assert response.status_code == 429
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "throttled"
    assert 1 <= int(response.headers["Retry-After"]) <= 60  # one token a minute


def test_every_path_is_limited_not_only_fhir(make_app):
    client = make_app(rate_limit=1, rate_burst=2).test_client()
    client.get("/fhir/metadata")
    client.get("/no/such/page")
    assert client.get("/no/such/page").status_code == 429
    assert client.post(TOKEN_URL, data={"client_id": "x"}).status_code == 429


def test_source_addresses_are_limited_independently(make_app):
    client = make_app(rate_limit=1, rate_burst=2).test_client()

    def from_(address):
        return client.get("/fhir/metadata", environ_base={"REMOTE_ADDR": address}).status_code

    assert [from_("192.0.2.1") for _ in range(3)] == [200, 200, 429]
    assert [from_("192.0.2.2") for _ in range(3)] == [200, 200, 429]


def test_client_ids_are_limited_independently_of_their_address(make_app):
    app = make_app(rate_limit=1, rate_burst=2)

    def set_client():  # stands in for http/auth.py, which runs before the limiter
        if "X-Test-Client" in request.headers:
            g.client_id = request.headers["X-Test-Client"]

    app.before_request_funcs.setdefault(None, []).insert(0, set_client)
    client = app.test_client()

    def as_(name):
        return client.get("/fhir/metadata", headers={"X-Test-Client": name}).status_code

    assert [as_("pkm-a") for _ in range(3)] == [200, 200, 429]
    assert [as_("pkm-b") for _ in range(3)] == [200, 200, 429]
    assert client.get("/fhir/metadata").status_code == 200  # the address has its own bucket


def test_bearer_tokens_are_limited_per_client(make_app):
    app = make_app(auth=True, rate_limit=1, rate_burst=3)
    engine = app.extensions["ilp"].engine
    secrets = {cid: clients.add_client(engine, cid, scopes="system/*.rs") for cid in "ab"}
    client = app.test_client()
    headers = {cid: bearer(client, cid, secret) for cid, secret in secrets.items()}  # 2 of 3
    for cid in "ab":
        statuses = [client.get("/fhir/Patient", headers=headers[cid]).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
    assert [client.get("/fhir/metadata").status_code for _ in range(2)] == [200, 429]


def test_guessing_tokens_is_paced_by_the_source_address(make_app):
    # a refused token never reaches the limiter's hook; the address pays for the refusal
    client = make_app(auth=True, rate_limit=1, rate_burst=3).test_client()
    guesses = [
        client.get("/fhir/Patient", headers={"Authorization": f"Bearer guess-{n}"}).status_code
        for n in range(5)
    ]
    assert guesses == [401, 401, 401, 429, 429]  # a burst of 3


def test_no_limit_when_rate_limit_is_zero(make_app):
    app = make_app(rate_limit=0, rate_burst=1)
    client = app.test_client()
    assert {client.get("/fhir/metadata").status_code for _ in range(30)} == {200}


# --- headers --------------------------------------------------------------------------------


def _assert_security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    assert "Strict-Transport-Security" not in response.headers  # the TLS proxy's business


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/fhir/metadata", 200),
        ("GET", "/fhir/Patient?_count=1", 200),
        ("GET", "/fhir/Patient/missing", 404),
        ("GET", "/no/such/page", 404),
        ("GET", "/fhir/Patient?_count=many", 400),
        ("PATCH", "/fhir/Patient", 405),
        ("PUT", "/fhir/Patient", 415),
        ("POST", TOKEN_URL, 401),  # OAuth2 JSON, not FHIR
    ],
)
def test_security_headers_on_every_kind_of_response(client, method, path, status):
    response = client.open(path, method=method)
    assert response.status_code == status
    _assert_security_headers(response)


def test_security_headers_on_a_fault(app, monkeypatch):
    monkeypatch.setattr(resources, "read", _broken)
    response = app.test_client().get("/fhir/Patient/p1")
    assert response.status_code == 500
    _assert_security_headers(response)


def test_security_headers_on_429_and_401(make_app):
    client = make_app(auth=True, rate_limit=1, rate_burst=1).test_client()
    unauthorized = client.get("/fhir/Patient")
    assert unauthorized.status_code == 401
    _assert_security_headers(unauthorized)
    client.get("/fhir/metadata")
    throttled = client.get("/fhir/metadata")
    assert throttled.status_code == 429
    _assert_security_headers(throttled)


def test_a_page_keeps_its_own_content_security_policy(app):
    policy = "default-src 'self'"

    def dashboard():
        return "<html></html>", 200, {"Content-Security-Policy": policy}

    app.add_url_rule("/dashboard", view_func=dashboard)
    response = app.test_client().get("/dashboard")
    assert response.headers["Content-Security-Policy"] == policy
    assert response.headers["X-Frame-Options"] == "DENY"


def test_fixed_headers_replace_what_a_view_set():
    response = security_headers.add_headers(Response(headers={"X-Frame-Options": "ALLOWALL"}))
    assert response.headers.getlist("X-Frame-Options") == ["DENY"]


# --- faults ---------------------------------------------------------------------------------


def _broken(*_args, **_kwargs):
    raise RuntimeError("secret-detail")


def test_a_fault_is_a_500_outcome_without_its_text_or_traceback(app, monkeypatch, caplog):
    monkeypatch.setattr(resources, "read", _broken)
    with caplog.at_level(logging.ERROR, logger="server.http.error_handlers"):
        response = app.test_client().get("/fhir/Patient/p1")
    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert "secret-detail" not in text and "Traceback" not in text and "RuntimeError" not in text
    issue = response.get_json()["issue"][0]
    assert (issue["severity"], issue["code"]) == ("fatal", "exception")
    reference = issue["diagnostics"].rsplit(" ", 1)[-1]
    # The operator finds the whole story in the log under the reference the client quotes.
    (record,) = [r for r in caplog.records if reference in r.getMessage()]
    assert record.exc_info and "secret-detail" in str(record.exc_info[1])


def test_a_fault_outside_fhir_is_hidden_too(make_app, monkeypatch):
    client = make_app(rate_limit=60, rate_burst=10).test_client()
    monkeypatch.setattr(RateLimiter, "acquire", _broken)
    response = client.get("/no/such/page")
    assert response.status_code == 500
    assert "secret-detail" not in response.get_data(as_text=True)
    assert response.get_json()["issue"][0]["code"] == "exception"


def _nested_patient(levels):
    """A Patient with extensions ``levels`` deep, as bytes (the json module would recurse)."""
    inner = '{"url": "http://example.org/x", "valueString": "v"}'
    nested = '{"url": "http://example.org/x", "extension": [' * levels + inner + "]}" * levels
    return ('{"resourceType": "Patient", "extension": [' + nested + "]}").encode()


@pytest.mark.parametrize("path", ["/fhir/Patient", "/fhir/Patient/$validate"])
@pytest.mark.parametrize("levels", [150, 500])
def test_a_resource_nested_too_deep_is_refused_not_a_fault(client, path, levels):
    # 150 extensions deep (300 JSON levels) once exhausted the validators' recursion: a 500
    headers = {"Content-Type": "application/fhir+json"}
    response = client.post(path, data=_nested_patient(levels), headers=headers)
    assert response.status_code == 400
    issue = response.get_json()["issue"][0]
    assert "deeper than 100 levels" in issue["diagnostics"]
    assert client.post(path, data=_nested_patient(20), headers=headers).status_code in (200, 201)
