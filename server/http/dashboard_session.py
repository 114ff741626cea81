"""The dashboard's sign-in: an access token in a cookie, and the CSRF tokens of its forms.

With ILP_AUTH on, a user signs in with an OAuth2 client's id and secret (``ilp clients add``)
and gets the token the token endpoint would issue (``http/auth.py``), kept in an HttpOnly,
SameSite=Strict cookie limited to /dashboard.  Every dashboard request turns it back into the
client's ``Caller``, so the client's scopes and facility binding limit what the pages show.
Forms carry a CSRF token: before sign-in a random double-submit cookie, after it an HMAC of
the access token (which a page on another origin can neither read nor compute).  See
docs/dashboard.md#security and the OWASP CSRF prevention cheat sheet.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import current_app, g, request
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response

from server.http.auth import Authority
from server.services.access import Caller
from server.services.tokens import AccessToken

TOKEN_COOKIE = "ilp_dashboard"
CSRF_COOKIE = "ilp_dashboard_csrf"
CSRF_FIELD = "csrf_token"
COOKIE_PATH = "/dashboard"
_CSRF_LABEL = b"ilp-dashboard-csrf-v1"
_MAX_COOKIE_CHARS = 4096


class CsrfRejected(BadRequest):
    """A form POSTed without the CSRF token its page carried."""

    description = "csrf"


def authority() -> Authority:
    """The application's clients and token issuer (registered by ``http/auth.py``)."""
    found: Authority = current_app.extensions["ilp_auth"]
    return found


def caller() -> Caller | None:
    """The Caller of the request's sign-in cookie; None without a valid, unexpired one."""
    token = _token()
    if not token:
        return None
    issuer = authority()
    return issuer.directory.caller(issuer.tokens, token, request.remote_addr, issuer.audited)


def sign_in(client_id: str, secret: str) -> AccessToken | None:
    """A token for a client whose secret matches and who holds a scope; None otherwise."""
    issuer = authority()
    if not issuer.directory.authenticate(client_id, secret):
        return None
    scope = issuer.directory.granted_scopes(client_id, "")
    return issuer.tokens.grant(client_id, scope) if scope else None


def keep_token(response: Response, token: AccessToken) -> None:
    """Set the sign-in cookie, expiring with the token; drop the pre-sign-in CSRF cookie."""
    _set_cookie(response, TOKEN_COOKIE, token.value, token.expires_in)
    response.delete_cookie(CSRF_COOKIE, path=COOKIE_PATH)


def forget_token(response: Response) -> None:
    response.delete_cookie(TOKEN_COOKIE, path=COOKIE_PATH, httponly=True, samesite="Strict")


def csrf_token(signed_in: bool) -> str:
    """The token this page's forms carry: the access token's HMAC when the request is
    ``signed_in``, else the double-submit value (the sign-in form's, whatever cookie is left).

    A new double-submit value is remembered in ``g`` and set as a cookie by ``save_csrf``.
    """
    token = _token()
    if signed_in and token:
        return _token_mac(token)
    value = request.cookies.get(CSRF_COOKIE, "")
    if len(value) != 43:  # token_urlsafe(32); anything else was not set by us
        value = g.setdefault("dashboard_new_csrf", secrets.token_urlsafe(32))
    return value


def save_csrf(response: Response) -> None:
    """after_request: set the double-submit cookie a page's form was given."""
    value = g.pop("dashboard_new_csrf", None)
    if value is not None:
        _set_cookie(response, CSRF_COOKIE, value, None)


def check_csrf(signed_in: bool) -> None:
    """Raise CsrfRejected unless the form's token matches the cookie (``signed_in``: the
    access token's HMAC; otherwise the double-submit cookie), compared in constant time."""
    if signed_in:
        token = _token()
        expected = _token_mac(token) if token else ""
    else:
        expected = request.cookies.get(CSRF_COOKIE, "")
    sent = request.form.get(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRejected()


def _token() -> str:
    token = request.cookies.get(TOKEN_COOKIE, "")
    return token if len(token) <= _MAX_COOKIE_CHARS else ""


def _token_mac(token: str) -> str:
    return hmac.new(token.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()


def _set_cookie(response: Response, name: str, value: str, max_age: int | None) -> None:
    # Behind the TLS proxy the request itself is plain HTTP: ILP_BASE_URL tells the truth.
    public = current_app.extensions["ilp"].settings.base_url.startswith("https://")
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=request.is_secure or public,
        httponly=True,
        samesite="Strict",
    )
