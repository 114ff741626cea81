"""Access tokens of national mode (server/services/tokens.py): issue, verify, refuse."""

from __future__ import annotations

import base64
import json

import pytest

from server.config import Settings
from server.services import tokens as module
from server.services.tokens import AccessTokens

CLIENTS = {"puskesmas-a": "s3cret", "puskesmas-b": "other:secret"}
NOW = 1_700_000_000.25
LIFETIME = 14399


class Clock:
    """A settable clock (epoch seconds)."""

    def __init__(self, now=NOW):
        self.now = now

    def __call__(self):
        return self.now


def authority(clients=CLIENTS, clock=None):
    return AccessTokens(clients, LIFETIME, clock or Clock())


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_issue_to_a_client_with_its_secret():
    token = authority().issue("puskesmas-a", "s3cret")
    assert token is not None
    assert (token.client_id, token.issued_at, token.expires_in) == ("puskesmas-a", NOW, LIFETIME)
    assert authority().verify(token.value) == "puskesmas-a"


def test_a_secret_may_contain_colons():
    token = authority().issue("puskesmas-b", "other:secret")
    assert token is not None and authority().verify(token.value) == "puskesmas-b"


@pytest.mark.parametrize(
    "client_id, secret",
    [
        ("puskesmas-a", "wrong"),
        ("puskesmas-a", ""),
        ("puskesmas-a", "s3cret "),
        ("puskesmas-a", "other:secret"),  # another client's secret
        ("nobody", "s3cret"),
        ("", ""),
    ],
)
def test_wrong_credentials_get_no_token(client_id, secret):
    assert authority().issue(client_id, secret) is None


def test_tokens_are_unique_and_url_safe():
    tokens = {authority().issue("puskesmas-a", "s3cret").value for _ in range(50)}
    assert len(tokens) == 50
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert all(set(token) <= alphabet for token in tokens)


def test_payload_holds_client_expiry_nonce_and_scope():
    token = authority().issue("puskesmas-a", "s3cret", "system/Patient.rs").value
    client_id, expiry, nonce, scope = json.loads(_unb64(token.split(".")[0]))
    assert (client_id, expiry, scope) == ("puskesmas-a", int(NOW) + LIFETIME, "system/Patient.rs")
    assert len(nonce) >= 16
    assert authority().claims(token).scope == "system/Patient.rs"


def test_stateless_another_instance_with_the_same_clients_accepts():
    token = authority().issue("puskesmas-a", "s3cret").value
    assert AccessTokens(dict(CLIENTS), LIFETIME, Clock()).verify(token) == "puskesmas-a"


def test_expired_at_the_expiry_second_not_before():
    clock = Clock()
    tokens = authority(clock=clock)
    token = tokens.issue("puskesmas-a", "s3cret").value
    clock.now = int(NOW) + LIFETIME - 0.001
    assert tokens.verify(token) == "puskesmas-a"
    clock.now = int(NOW) + LIFETIME
    assert tokens.verify(token) is None


def test_rotating_a_secret_invalidates_only_that_clients_tokens():
    a = authority().issue("puskesmas-a", "s3cret").value
    b = authority().issue("puskesmas-b", "other:secret").value
    rotated = authority({**CLIENTS, "puskesmas-a": "n3w"})
    assert rotated.verify(a) is None
    assert rotated.verify(b) == "puskesmas-b"


def test_adding_a_client_keeps_existing_tokens():
    token = authority().issue("puskesmas-a", "s3cret").value
    assert authority({**CLIENTS, "puskesmas-c": "x"}).verify(token) == "puskesmas-a"


def test_removing_a_client_invalidates_its_tokens():
    token = authority().issue("puskesmas-b", "other:secret").value
    assert authority({"puskesmas-a": "s3cret"}).verify(token) is None


def _resigned_claims(token, claims):
    """``token`` with its payload replaced by ``claims``, the old signature kept."""
    signature = token.split(".")[1]
    return f"{_b64(json.dumps(claims).encode())}.{signature}"


def test_tampered_payload_is_refused():
    token = authority().issue("puskesmas-a", "s3cret").value
    client_id, expiry, nonce, scope = json.loads(_unb64(token.split(".")[0]))
    tokens = authority()
    later = [client_id, expiry + 10**6, nonce, scope]
    assert tokens.verify(_resigned_claims(token, later)) is None
    assert tokens.verify(_resigned_claims(token, ["puskesmas-b", expiry, nonce, scope])) is None
    wider = [client_id, expiry, nonce, "system/*.cruds"]
    assert tokens.verify(_resigned_claims(token, wider)) is None


def test_tampered_signature_is_refused():
    token = authority().issue("puskesmas-a", "s3cret").value
    payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert authority().verify(f"{payload}.{flipped}") is None
    assert authority().verify(f"{payload}.") is None
    assert authority().verify(f"{payload}.{signature}=") is None


def test_signed_with_another_key_is_refused():
    stranger = AccessTokens({"puskesmas-a": "guessed"}, LIFETIME, Clock())
    assert authority().verify(stranger.issue("puskesmas-a", "guessed").value) is None


def _unsigned(payload):
    return f"{_b64(payload)}.c2ln"


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "garbage",
        "a.b.c",
        "not base64!.sig",
        _unsigned(b"not json"),
        _unsigned(b"{}"),
        _unsigned(b"[1, 2, 3]"),
        _unsigned(b'["puskesmas-a", true, "n"]'),
        _unsigned(b'["puskesmas-a", 1.5e12, "n"]'),
        _unsigned(b'["puskesmas-a", 99999999999, 7]'),
        _unsigned(b'["puskesmas-a", 99999999999, "n", 7]'),
        _unsigned(b'["puskesmas-a", 99999999999, "n"]'),
        _unsigned(b"\xff\xfe"),
        _unsigned(b"[" * 3000),
        "\u00fcn\u00efcode.sig",
        "x" * 5000,
    ],
)
def test_malformed_tokens_are_refused(token):
    assert authority().verify(token) is None


def test_from_settings_uses_the_clients_and_lifetime():
    settings = Settings(national_clients="puskesmas-a:s3cret", token_lifetime=60)
    token = AccessTokens.from_settings(settings).issue("puskesmas-a", "s3cret")
    assert token is not None and token.expires_in == 60


def test_unknown_client_still_compares_a_secret(monkeypatch):
    # The constant-time comparison runs whether or not the client exists (no timing oracle).
    calls = []
    real = module.hmac.compare_digest

    def recording(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(module.hmac, "compare_digest", recording)
    authority().issue("nobody", "a-much-longer-guess-than-any-secret")
    authority().issue("puskesmas-a", "wrong")
    assert calls == [(32, 32), (32, 32)]
