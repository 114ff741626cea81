"""Access tokens: issued to OAuth2 clients that prove their secret, checked on every request.

A token is ``<payload>.<signature>``: the payload (client id, expiry in epoch seconds, a random
nonce, the granted scopes) as JSON in unpadded urlsafe base64, signed with HMAC-SHA256.  Nothing
is stored, so every gunicorn worker (and every node knowing the same clients) accepts every
other's tokens.  Each client's signing key is derived from its id and secret (or the secret's
stored hash): rotating a secret invalidates the tokens issued under the old one, and only that
client's; a revoked client has no key.  See docs/security.md and docs/national-mode.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from server.config import Settings

KEY_LABEL = b"ilp-national-access-token/v1"
NONCE_BYTES = 16
MAX_TOKEN_CHARS = 4096  # far above any token we issue; refuse the rest unread

# Compared against when the client id is unknown, so that case takes as long as a wrong secret.
_NO_SECRET = hashlib.sha256(b"no such client").digest()


@dataclass(frozen=True)
class AccessToken:
    value: str
    client_id: str
    issued_at: float  # epoch seconds
    expires_in: int  # seconds
    scope: str = ""


@dataclass(frozen=True)
class Claims:
    """What a genuine, unexpired token says."""

    client_id: str
    scope: str


class ClientKeys(Protocol):
    """Where clients' secrets are checked and their signing keys found."""

    def authenticate(self, client_id: str, secret: str) -> bool: ...

    def signing_key(self, client_id: str) -> bytes | None: ...


class StaticClients:
    """Clients listed in configuration (ILP_NATIONAL_CLIENTS): ``{id: secret}``."""

    def __init__(self, clients: Mapping[str, str]) -> None:
        # Digests, so the comparison takes the same time whatever the secrets' lengths.
        self._secret_digests = {cid: _digest(secret) for cid, secret in clients.items()}
        self._keys = {cid: signing_key(cid, secret) for cid, secret in clients.items()}

    def authenticate(self, client_id: str, secret: str) -> bool:
        expected = self._secret_digests.get(client_id, _NO_SECRET)
        return hmac.compare_digest(_digest(secret), expected) and client_id in self._keys

    def signing_key(self, client_id: str) -> bytes | None:
        return self._keys.get(client_id)


class AccessTokens:
    """Issues tokens to clients that present their secret, and verifies tokens statelessly."""

    def __init__(
        self,
        clients: Mapping[str, str] | ClientKeys,
        lifetime: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clients = StaticClients(clients) if isinstance(clients, Mapping) else clients
        self._lifetime = lifetime
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessTokens:
        return cls(settings.client_secrets, settings.token_lifetime)

    def issue(self, client_id: str, client_secret: str, scope: str = "") -> AccessToken | None:
        """A fresh token for a client whose secret matches; None for anything else."""
        if not self._clients.authenticate(client_id, client_secret):
            return None
        return self.grant(client_id, scope)

    def grant(self, client_id: str, scope: str = "") -> AccessToken | None:
        """A fresh token for a client authenticated otherwise (a signed client assertion)."""
        key = self._clients.signing_key(client_id)
        if key is None:
            return None
        now = self._clock()
        expiry = int(now) + self._lifetime
        claims = [client_id, expiry, secrets.token_urlsafe(NONCE_BYTES), scope]
        payload = _encode(json.dumps(claims, separators=(",", ":")).encode())
        signature = _sign(key, payload)
        return AccessToken(f"{payload}.{signature}", client_id, now, self._lifetime, scope)

    def verify(self, token: str) -> str | None:
        """The client id of a genuine, unexpired token; None when malformed, forged or expired."""
        claims = self.claims(token)
        return claims.client_id if claims is not None else None

    def claims(
        self, token: str, signing_key: Callable[[str], bytes | None] | None = None
    ) -> Claims | None:
        """The claims of a genuine, unexpired token; None when malformed, forged or expired.

        ``signing_key`` overrides the clients' lookup (to read a client's row only once).
        """
        if len(token) > MAX_TOKEN_CHARS or not token.isascii() or token.count(".") != 1:
            return None
        payload, signature = token.split(".")
        claims = _claims(payload)
        if claims is None:
            return None
        client_id, expiry, scope = claims
        key = (signing_key or self._clients.signing_key)(client_id)
        if key is None or not hmac.compare_digest(_sign(key, payload), signature):
            return None
        return Claims(client_id, scope) if self._clock() < expiry else None


def _claims(payload: str) -> tuple[str, int, str] | None:
    """Client id, expiry and scope of a payload (not yet trusted: its signature is checked
    after)."""
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, RecursionError):  # bad base64, UTF-8 or JSON; JSON nested too deep
        return None
    if not (isinstance(claims, list) and len(claims) == 4):
        return None
    client_id, expiry, nonce, scope = claims
    # bool is an int subclass; a genuine token never holds one.
    if not all(isinstance(value, str) for value in (client_id, nonce, scope)):
        return None
    if not isinstance(expiry, int) or isinstance(expiry, bool):
        return None
    return client_id, expiry, scope


def signing_key(client_id: str, secret: str) -> bytes:
    """The key a client's tokens are signed with, from its id and secret (or secret's hash)."""
    # Client ids cannot contain ":" (ILP_NATIONAL_CLIENTS splits on the first one).
    return hmac.new(KEY_LABEL, f"{client_id}:{secret}".encode(), hashlib.sha256).digest()


def _sign(key: bytes, payload: str) -> str:
    return _encode(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
