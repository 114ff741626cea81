"""OAuth2 clients of this server: registration (``ilp clients``), secrets, and who a token is.

A client has an id, a secret (shown once, stored as a salted scrypt hash), SMART system scopes
and a binding: one Organization (with everything below it by partOf), a region (a Kemendagri
code prefix), or nothing (a national client).  Clients of ILP_NATIONAL_CLIENTS (national mode)
are unbound and hold every scope.  See docs/security.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from server.errors import InvalidRequest
from server.services import assertions
from server.services.access import LETTERS, Caller, format_scopes, narrow, parse_scopes
from server.services.tokens import AccessTokens, StaticClients, signing_key
from server.storage import clients as store
from server.storage.scope import Binding

CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
REGION = re.compile(r"\d{2}(\.?\d{2}){0,2}(\.?\d{4})?")  # province .. desa (Permendagri 137/2017)
ORGANIZATION_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
SECRET_BYTES = 32
# scrypt: 16 MiB and ~50 ms per check, paid only when a token is issued.
_N, _R, _P = 2**14, 8, 1
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43  # for unknown ids


@dataclass(frozen=True)
class Client:
    """A registered client as ``ilp clients list`` shows it (never with its secret)."""

    client_id: str
    scopes: str
    organization: str | None
    region: str | None
    revoked: bool


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def secret_matches(secret: str, stored: str) -> bool:
    """Whether ``secret`` hashes to ``stored``, in time independent of where they differ."""
    try:
        _, n, r, p, salt, digest = stored.split("$")
        computed = hashlib.scrypt(
            secret.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except ValueError:
        return False
    return hmac.compare_digest(computed, _unb64(digest))


def add_client(
    engine: Engine,
    client_id: str,
    *,
    scopes: str,
    organization: str | None = None,
    region: str | None = None,
    jwks: dict[str, Any] | None = None,
) -> str | None:
    """Register a client and return its secret (shown once; None for a client of ``jwks``,
    which authenticates with signed assertions); InvalidRequest for a bad value, an id in use,
    or both an organization and a region."""
    if not CLIENT_ID.fullmatch(client_id):
        raise InvalidRequest(f"client id {client_id!r} must be 1-64 letters, digits, . _ -")
    if organization and region:
        raise InvalidRequest("a client is bound to an organization or a region, not both")
    if organization is not None and not ORGANIZATION_ID.fullmatch(organization):
        raise InvalidRequest(f"{organization!r} is not an Organization id")
    if region is not None and not REGION.fullmatch(region):
        raise InvalidRequest(f"region {region!r} must be a Kemendagri code such as 33 or 33.01")
    granted = parse_scopes(scopes)
    if not granted:
        raise InvalidRequest("a client needs at least one system/ scope, e.g. system/*.cruds")
    secret = None if jwks is not None else secrets.token_urlsafe(SECRET_BYTES)
    row = store.ClientRow(
        client_id,
        hash_secret(secret) if secret is not None else "",
        format_scopes(granted),
        organization,
        region.replace(".", "") if region else None,
        False,
        store.now(),
        assertions.public_key_set(jwks) if jwks is not None else None,
    )
    with engine.begin() as connection:
        try:
            store.add_client(connection, row)
        except store.DuplicateClient:
            raise InvalidRequest(f"a client {client_id!r} exists already") from None
    return secret


def list_clients(engine: Engine) -> list[Client]:
    with engine.connect() as connection:
        rows = store.all_clients(connection)
    return [Client(r.client_id, r.scopes, r.organization, r.region, r.revoked) for r in rows]


def revoke_client(engine: Engine, client_id: str) -> bool:
    """Revoke a client: its tokens stop working at once; False if there is no such client."""
    with engine.begin() as connection:
        return store.revoke_client(connection, client_id)


class ClientDirectory:
    """Clients of ILP_NATIONAL_CLIENTS and of the database, for tokens and requests."""

    def __init__(self, engine: Engine, national: Mapping[str, str]) -> None:
        self._engine = engine
        self._national = StaticClients(national)
        self._national_ids = frozenset(national)

    def authenticate(self, client_id: str, secret: str) -> bool:
        if client_id in self._national_ids:
            return self._national.authenticate(client_id, secret)
        row = self._row(client_id)
        usable = row is not None and not row.revoked and bool(row.secret_hash)
        # an unknown id costs a hash too, so timing does not tell which ids exist
        stored = row.secret_hash if row is not None and row.secret_hash else _DUMMY_HASH
        return secret_matches(secret, stored) and usable

    def assertion_client(self, assertion: str, audiences: tuple[str, ...]) -> str | None:
        """The client id of a valid, unused client assertion (SMART backend services)."""
        client_id = assertions.issuer(assertion)
        row = self._row(client_id) if client_id else None
        if row is None or row.revoked or not row.jwks:
            return None
        expiry = assertions.verify(assertion, row.client_id, row.jwks, audiences)
        if expiry is None:
            return None
        with self._engine.begin() as connection:  # a jti once only, across all workers
            fresh = store.use_assertion(
                connection, assertions.jti(assertion), row.client_id, expiry
            )
        return row.client_id if fresh else None

    def signing_key(self, client_id: str) -> bytes | None:
        if client_id in self._national_ids:
            return self._national.signing_key(client_id)
        row = self._row(client_id)
        if row is None or row.revoked:
            return None
        return _key(row)

    def granted_scopes(self, client_id: str, asked: str) -> str:
        """The scopes a token gets: those asked for within the client's, or all of its own."""
        held = self._held(client_id)
        return format_scopes(narrow(held, asked) if asked.strip() else held)

    def caller(
        self, tokens: AccessTokens, token: str, address: str | None, audited: bool
    ) -> Caller | None:
        """The Caller a genuine token stands for (its scopes never exceed the client's now);
        None for a bad token or a revoked client.  The client's row is read once."""
        rows: dict[str, store.ClientRow | None] = {}

        def key(client_id: str) -> bytes | None:
            if client_id in self._national_ids:
                return self._national.signing_key(client_id)
            row = rows[client_id] = self._row(client_id)
            return _key(row) if row and not row.revoked else None

        claims = tokens.claims(token, key)
        if claims is None:
            return None
        row = rows.get(claims.client_id)
        held = self._held(claims.client_id, row)
        binding = None
        if row is not None and (row.organization or row.region):
            binding = Binding(organization=row.organization, region=row.region)
        scopes = narrow(held, claims.scope) if claims.scope.strip() else held
        return Caller(claims.client_id, scopes, binding, address, audited)

    def _held(
        self, client_id: str, row: store.ClientRow | None = None
    ) -> dict[str, frozenset[str]]:
        if client_id in self._national_ids:
            return {"*": frozenset(LETTERS)}
        row = row or self._row(client_id)
        return parse_scopes(row.scopes) if row is not None and not row.revoked else {}

    def _row(self, client_id: str) -> store.ClientRow | None:
        if not CLIENT_ID.fullmatch(client_id):  # no such client could exist; NUL breaks SQL
            return None
        with self._engine.connect() as connection:
            return store.find_client(connection, client_id)


def _key(row: store.ClientRow) -> bytes:
    # a new secret or key set invalidates the tokens issued under the old one
    material = row.secret_hash or hashlib.sha256((row.jwks or "").encode()).hexdigest()
    return signing_key(row.client_id, material)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
