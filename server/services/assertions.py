"""SMART backend services: client assertions (``private_key_jwt``) signed with a client's key.

A client registered with a public JWK Set (``ilp clients add ID --jwks FILE``) asks for a token
with ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and a JWT
signed RS384 or ES384 whose ``iss`` and ``sub`` are its id, ``aud`` this server's token URL,
``exp`` at most five minutes ahead, and a ``jti`` never used before.
See https://hl7.org/fhir/smart-app-launch/backend-services.html and docs/security.md.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from server.errors import InvalidRequest

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ["RS384", "ES384"]  # what SMART requires servers to support
MAX_LIFETIME = 300  # seconds: SMART's limit on exp
MAX_ASSERTION_CHARS = 16_384


def public_key_set(jwks: dict[str, Any]) -> str:
    """``jwks`` checked to be a JWK Set of public RSA/EC keys, as JSON to store."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise InvalidRequest('a JWK Set is a JSON object {"keys": [...]} with at least one key')
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC"):
            raise InvalidRequest("every key of the JWK Set must be an RSA or EC key")
        if "d" in key:
            raise InvalidRequest("the JWK Set holds a private key; register the public key only")
    try:
        KeySet.import_key_set({"keys": keys})
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidRequest(f"the JWK Set cannot be read: {exc}") from None
    return json.dumps({"keys": keys}, separators=(",", ":"))


def issuer(assertion: str) -> str | None:
    """The (unverified) ``iss`` of an assertion: which client's keys to check it with."""
    claims = _unverified_claims(assertion)
    value = claims.get("iss") if claims else None
    return value if isinstance(value, str) else None


def jti(assertion: str) -> str:
    claims = _unverified_claims(assertion) or {}
    return str(claims.get("jti", ""))[:255]


def verify(
    assertion: str, client_id: str, jwks: str, audiences: tuple[str, ...]
) -> datetime | None:
    """The expiry of an assertion that is genuine and meets SMART's rules; None otherwise."""
    if len(assertion) > MAX_ASSERTION_CHARS:
        return None
    try:
        token = jwt.decode(
            assertion, KeySet.import_key_set(json.loads(jwks)), algorithms=ALGORITHMS
        )
    except (JoseError, ValueError, TypeError):
        return None
    claims = token.claims
    audience = claims.get("aud")
    audience_list = audience if isinstance(audience, list) else [audience]
    exp, identifier = claims.get("exp"), claims.get("jti")
    now = time.time()
    if not (claims.get("iss") == claims.get("sub") == client_id):
        return None
    if not any(a in audiences for a in audience_list):
        return None
    if not isinstance(exp, int) or isinstance(exp, bool) or not now < exp <= now + MAX_LIFETIME:
        return None
    if not isinstance(identifier, str) or not 0 < len(identifier) <= 255:
        return None
    return datetime.fromtimestamp(exp, UTC)


def _unverified_claims(assertion: str) -> dict[str, Any] | None:
    if len(assertion) > MAX_ASSERTION_CHARS or assertion.count(".") != 2:
        return None
    payload = assertion.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, RecursionError):
        return None
    return claims if isinstance(claims, dict) else None
