"""National mode: SATUSEHAT's paths on this server, so other nodes can sync to it.

``POST /oauth2/v1/accesstoken?grant_type=client_credentials`` answers as SATUSEHAT's gateway
(Apigee) does, every value a string; the FHIR blueprint is mounted a second time at /fhir-r4/v1,
where every request needs ``Authorization: Bearer <token>``.  Registered only when
ILP_NATIONAL_CLIENTS lists clients; see docs/national-mode.md.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from server.errors import Unauthorized
from server.http import fhir_api
from server.services.tokens import AccessTokens

TOKEN_PATH = "/oauth2/v1/accesstoken"
FHIR_PREFIX = "/fhir-r4/v1"
FHIR_BLUEPRINT = "fhir_r4"
INVALID_TOKEN = "Invalid Access Token."  # SATUSEHAT's wording
FORM = "application/x-www-form-urlencoded"
_EXTENSION = "ilp_tokens"

bp = Blueprint("national", __name__)


def register(app: Flask, tokens: AccessTokens) -> None:
    """Add the token endpoint and the authenticated FHIR mount to ``app``."""
    app.extensions[_EXTENSION] = tokens
    app.register_blueprint(bp)
    app.register_blueprint(fhir_api.bp, url_prefix=FHIR_PREFIX, name=FHIR_BLUEPRINT)
    # On the app, not the blueprint: app hooks run first (a 401 comes before a 406) and also for
    # paths under the prefix that match no route.
    app.before_request(_require_token)


@bp.post(TOKEN_PATH)
def access_token() -> Response:
    """OAuth2 client credentials (RFC 6749 section 4.4) in SATUSEHAT's shape."""
    # SATUSEHAT takes grant_type from the query string, the credentials from the form body.
    if request.args.get("grant_type") != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "grant_type must be client_credentials")
    if request.mimetype != FORM and request.get_data():  # no body at all: no credentials, 401
        return _oauth_error(400, "invalid_request", f"the body must be {FORM}")
    token = _tokens().issue(
        request.form.get("client_id", ""), request.form.get("client_secret", "")
    )
    if token is None:
        return _oauth_error(401, "invalid_client", "unknown client or wrong secret")
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
            scope="",
            refresh_count="0",
            refresh_token_expires_in="0",
            api_product_list="[]",
        )
    )


def _require_token() -> None:
    """before_request: a valid bearer token on every request under /fhir-r4/v1."""
    path = request.path
    under_prefix = path == FHIR_PREFIX or path.startswith(FHIR_PREFIX + "/")
    if request.blueprint != FHIR_BLUEPRINT and not under_prefix:
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(INVALID_TOKEN, headers={"WWW-Authenticate": "Bearer"})
    if _tokens().verify(token.strip()) is None:
        # RFC 6750 section 3: a token was sent but is not good.
        raise Unauthorized(
            INVALID_TOKEN, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )


def _tokens() -> AccessTokens:
    tokens: AccessTokens = current_app.extensions[_EXTENSION]
    return tokens


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
