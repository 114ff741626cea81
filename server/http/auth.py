"""Authentication: the OAuth2 token endpoint and a bearer token on every protected request.

``POST /oauth2/v1/accesstoken`` is SATUSEHAT's token path (client credentials; grant_type in
the query as SATUSEHAT takes it, or in the form body as RFC 6749 does; the secret in the form
or HTTP Basic; an optional ``scope``).  With ILP_AUTH on, every request under /fhir and /admin
needs ``Authorization: Bearer <token>``, except the CapabilityStatement and the SMART
configuration; /fhir-r4/v1 (national mode) always does.  The verified client becomes
``g.caller`` (services/access.py), so its scopes and facilities apply to everything the
request does.  See docs/security.md.
"""

from __future__ import annotations

import base64
from urllib.parse import unquote

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from server.config import Settings
from server.errors import FhirError, Unauthorized
from server.http import limits
from server.services import assertions
from server.services.access import UNRESTRICTED
from server.services.clients import ClientDirectory
from server.services.tokens import AccessTokens

TOKEN_PATH = "/oauth2/v1/accesstoken"
INVALID_TOKEN = "Invalid Access Token."  # SATUSEHAT's wording
FORM = "application/x-www-form-urlencoded"
PUBLIC_PATHS = ("/fhir/metadata", "/fhir/.well-known/smart-configuration")
_EXTENSION = "ilp_auth"

bp = Blueprint("auth", __name__)


class Authority:
    """The clients and the token issuer of one application."""

    def __init__(self, directory: ClientDirectory, settings: Settings) -> None:
        self.directory = directory
        self.tokens = AccessTokens(directory, settings.token_lifetime)
        self.protected: tuple[str, ...] = ("/fhir", "/admin") if settings.auth else ()
        if settings.client_secrets:
            self.protected += ("/fhir-r4/v1",)
        self.audited = settings.auth and settings.audit
        origin = settings.base_url.split("://", 1)
        self.token_url = f"{origin[0]}://{origin[1].split('/', 1)[0]}{TOKEN_PATH}"


def register(app: Flask, authority: Authority) -> None:
    """Add the token endpoint and the bearer check (run before every other hook)."""
    app.extensions[_EXTENSION] = authority
    app.register_blueprint(bp)
    app.before_request_funcs.setdefault(None, []).insert(0, _authenticate)


@bp.get("/fhir/.well-known/smart-configuration")
def smart_configuration() -> Response:
    """SMART backend services discovery (https://hl7.org/fhir/smart-app-launch/conformance.html)."""
    return jsonify(
        token_endpoint=request.host_url.rstrip("/") + TOKEN_PATH,
        grant_types_supported=["client_credentials"],
        token_endpoint_auth_methods_supported=[
            "client_secret_post",
            "client_secret_basic",
            "private_key_jwt",
        ],
        token_endpoint_auth_signing_alg_values_supported=assertions.ALGORITHMS,
        scopes_supported=["system/*.cruds", "system/*.rs", "system/*.read", "system/*.write"],
        capabilities=[
            "client-confidential-symmetric",
            "client-confidential-asymmetric",
            "permission-v1",
            "permission-v2",
        ],
    )


@bp.post(TOKEN_PATH)
def access_token() -> Response:
    """OAuth2 client credentials (RFC 6749 section 4.4) in SATUSEHAT's shape."""
    grant = request.args.get("grant_type") or request.form.get("grant_type")
    if grant != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "grant_type must be client_credentials")
    if request.mimetype != FORM and request.get_data():  # no body at all: no credentials, 401
        return _oauth_error(400, "invalid_request", f"the body must be {FORM}")
    authority = _authority()
    assertion_type = request.form.get("client_assertion_type")
    if assertion_type is not None:
        if assertion_type != assertions.ASSERTION_TYPE:
            return _oauth_error(400, "invalid_request", "unknown client_assertion_type")
        audiences = (request.base_url, authority.token_url)
        client_id = authority.directory.assertion_client(
            request.form.get("client_assertion", ""), audiences
        )
    else:
        claimed, secret = _credentials()
        client_id = claimed if authority.directory.authenticate(claimed, secret) else None
    try:
        scope = authority.directory.granted_scopes(client_id or "", request.form.get("scope", ""))
    except FhirError as error:
        return _oauth_error(400, "invalid_scope", str(error))
    token = authority.tokens.grant(client_id, scope) if client_id is not None else None
    if token is None:
        return _oauth_error(401, "invalid_client", "unknown client, wrong secret or assertion")
    if not scope:
        return _oauth_error(400, "invalid_scope", "none of the scopes asked for is granted")
    return _no_store(
        jsonify(
            access_token=token.value,
            token_type="BearerToken",
            issued_at=str(int(token.issued_at * 1000)),
            expires_in=str(token.expires_in),
            client_id=token.client_id,
            application_name=token.client_id,
            organization_name=token.client_id,
            status="approved",
            scope=token.scope,
            refresh_count="0",
            refresh_token_expires_in="0",
            api_product_list="[]",
        )
    )


def _credentials() -> tuple[str, str]:
    """client_id and client_secret from HTTP Basic (RFC 6749 2.3.1) or the form body."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8
            return "", ""
        client_id, _, secret = decoded.partition(":")
        return unquote(client_id), unquote(secret)
    return request.form.get("client_id", ""), request.form.get("client_secret", "")


def _authenticate() -> None:
    """before_request: ``g.caller`` from a valid bearer token where one is required."""
    g.caller = UNRESTRICTED
    authority = _authority()
    path = request.path
    if path in PUBLIC_PATHS or not any(
        path == prefix or path.startswith(prefix + "/") for prefix in authority.protected
    ):
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        limits.charge_refusal()
        raise Unauthorized(INVALID_TOKEN, headers={"WWW-Authenticate": "Bearer"})
    caller = authority.directory.caller(
        authority.tokens, token.strip(), request.remote_addr, authority.audited
    )
    if caller is None:
        limits.charge_refusal()
        # RFC 6750 section 3: a token was sent but is not good.
        raise Unauthorized(
            INVALID_TOKEN, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
    g.client_id, g.caller = caller.client_id, caller


def _authority() -> Authority:
    authority: Authority = current_app.extensions[_EXTENSION]
    return authority


def _oauth_error(status: int, error: str, description: str) -> Response:
    """An RFC 6749 section 5.2 error (JSON, not an OperationOutcome: this is not FHIR)."""
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    return _no_store(response)


def _no_store(response: Response) -> Response:
    # RFC 6749 section 5.1: token responses must not be cached.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response
