"""The upstream platform as the worker sees it: OAuth2 token, FHIR calls, failures sorted.

SATUSEHAT's shapes: the token comes from ``{token_url}?grant_type=client_credentials`` with the
client id and secret form-encoded, and every value of the answer is a string (``expires_in``
"14399"); an expired token comes back as 401 or as an OperationOutcome whose issue code is
``invalid-access-token``, after which integrators fetch a new one and try once more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from server.config import Settings
from server.services.sync.transport import Reply, Transport, TransportError

logger = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
TOKEN_MARGIN = 60.0  # seconds before expiry when a cached token is no longer used


class UpstreamError(Exception):
    def __init__(self, reason: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class Transient(UpstreamError):
    """Worth trying again later: 5xx, 429, no answer.  ``retry_after`` in seconds, if told."""

    def __init__(
        self, reason: str, detail: dict[str, Any] | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(reason, detail)
        self.retry_after = retry_after


class Refused(UpstreamError):
    """The upstream said no (4xx): sending the same again will not help."""


@dataclass
class _Token:
    value: str
    expires_at: float


class Upstream:
    """FHIR interactions against the upstream base URL, authenticated when a token URL is set."""

    def __init__(
        self,
        settings: Settings,
        transport: Transport,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = settings.upstream_url.rstrip("/")
        self._token_url = settings.upstream_token_url
        self._client = (settings.upstream_client_id, settings.upstream_client_secret)
        self._timeout = float(settings.sync_timeout)
        self._transport = transport
        self._clock = clock
        self._token: _Token | None = None

    # FHIR interactions -------------------------------------------------------------------

    def create(self, res_type: str, body: dict[str, Any], if_none_exist: str | None) -> str:
        """POST (conditional when ``if_none_exist``); the upstream id, new or matched."""
        headers = {"If-None-Exist": if_none_exist} if if_none_exist else {}
        reply = self._fhir("POST", res_type, body, headers)
        return _created_id(res_type, reply)

    def update(self, res_type: str, upstream_id: str, body: dict[str, Any]) -> None:
        self._fhir("PUT", f"{res_type}/{upstream_id}", body)

    def delete(self, res_type: str, upstream_id: str) -> None:
        self._fhir("DELETE", f"{res_type}/{upstream_id}", None, gone_ok=True)

    def transaction(self, bundle: dict[str, Any]) -> list[dict[str, Any]]:
        """POST a transaction Bundle; the response entries, in the order of the request's."""
        reply = self._fhir("POST", "", bundle, {"Prefer": "return=minimal"})
        answer = _json(reply.body)
        entries = answer.get("entry", []) if isinstance(answer, dict) else []
        if len(entries) != len(bundle.get("entry", [])):
            raise Refused(f"the transaction response has {len(entries)} entries", None)
        return [entry.get("response", {}) for entry in entries]

    def find(self, res_type: str, params: dict[str, str]) -> list[str]:
        """Ids of the ``res_type`` resources a search matches."""
        query = urlencode(params, quote_via=quote, safe="/:|")
        reply = self._fhir("GET", f"{res_type}?{query}", None)
        bundle = _json(reply.body) or {}
        return [
            entry["resource"]["id"]
            for entry in bundle.get("entry", [])
            if entry.get("resource", {}).get("resourceType") == res_type
            and entry.get("search", {}).get("mode", "match") == "match"
        ]

    # HTTP, tokens and failures -----------------------------------------------------------

    def _fhir(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        headers: dict[str, str] | None = None,
        *,
        gone_ok: bool = False,
    ) -> Reply:
        url = f"{self._base}/{path}" if path else self._base
        data = orjson.dumps(body) if body is not None else None
        sent = {"Accept": FHIR_JSON, **(headers or {})}
        if data is not None:
            sent["Content-Type"] = FHIR_JSON
        for fresh_token in (False, True):
            reply = self._send(method, url, {**sent, **self._authorization(fresh_token)}, data)
            if not (self._token_url and _token_refused(reply)):
                break
            logger.info("upstream refused the access token; fetching a new one")
        if gone_ok and reply.status in (404, 410):
            return reply
        _raise_for(method, url, reply)
        return reply

    def _send(self, method: str, url: str, headers: dict[str, str], data: bytes | None) -> Reply:
        try:
            return self._transport.send(method, url, headers, data, self._timeout)
        except TransportError as exc:
            raise Transient(f"no answer: {exc}") from exc

    def _authorization(self, fresh: bool) -> dict[str, str]:
        if not self._token_url:
            return {}
        token = self._token
        if fresh or token is None or self._clock() >= token.expires_at - TOKEN_MARGIN:
            token = self._token = self._fetch_token()
        return {"Authorization": f"Bearer {token.value}"}

    def _fetch_token(self) -> _Token:
        client_id, secret = self._client
        separator = "&" if "?" in self._token_url else "?"
        url = f"{self._token_url}{separator}grant_type=client_credentials"
        form = urlencode({"client_id": client_id, "client_secret": secret}).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        started = self._clock()
        reply = self._send("POST", url, headers, form)
        if reply.status >= 500 or reply.status == 429:
            raise Transient(
                f"token endpoint answered {reply.status}", _json(reply.body), _retry_after(reply)
            )
        answer = _json(reply.body)
        if reply.status != 200 or not isinstance(answer, dict) or "access_token" not in answer:
            raise Refused(f"token endpoint refused the client ({reply.status})", _json(reply.body))
        try:
            lifetime = float(answer.get("expires_in", 0))  # SATUSEHAT sends a string
        except (TypeError, ValueError):
            lifetime = 0.0
        return _Token(str(answer["access_token"]), started + lifetime)


def _raise_for(method: str, url: str, reply: Reply) -> None:
    if reply.status < 400:
        return
    outcome = _json(reply.body)
    detail = outcome if isinstance(outcome, dict) else None
    reason = f"{method} {url} answered {reply.status}{_first_issue(detail)}"
    if reply.status == 429 or reply.status >= 500:
        raise Transient(reason, detail, _retry_after(reply))
    raise Refused(reason, detail)


def _token_refused(reply: Reply) -> bool:
    if reply.status == 401:
        return True
    # SATUSEHAT may say so in an OperationOutcome with any status, 200 included
    outcome = _json(reply.body) if b"invalid-access-token" in reply.body else None
    return isinstance(outcome, dict) and any(
        issue.get("code") == "invalid-access-token" for issue in outcome.get("issue", [])
    )


def location_id(res_type: str, location: str) -> str | None:
    """The id in ``[base/]Type/id[/_history/n]``."""
    parts = location.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2] == res_type:
        return parts[-1]
    return None


def _created_id(res_type: str, reply: Reply) -> str:
    location = reply.headers.get("location") or reply.headers.get("content-location") or ""
    found = location_id(res_type, location)
    if found:
        return found
    body = _json(reply.body)
    if isinstance(body, dict) and body.get("resourceType") == res_type and body.get("id"):
        return str(body["id"])
    raise Refused(f"POST {res_type} answered {reply.status} without the new id", None)


def _retry_after(reply: Reply) -> float | None:
    value = reply.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _first_issue(outcome: dict[str, Any] | None) -> str:
    for issue in (outcome or {}).get("issue", []):
        text = issue.get("diagnostics") or issue.get("details", {}).get("text")
        if text:
            return f": {text}"
    return ""


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None
