"""Upstreams for the sync tests, behind the worker's network seam (``Transport``).

``FakeUpstream`` is a small scripted SATUSEHAT: a token endpoint, an in-memory FHIR store
(create, conditional create, read, update, delete, search by identifier, transaction
Bundles) and rules that replace its answers for a method and path, one canned reply after
another.  Every HTTP request is recorded with its parsed body (``requests``), and so is every
resource interaction, alone or as an entry of a transaction (``ops``), so that tests can ask
what was sent whichever way it went.

``ForwardingTransport`` hands each request to a Flask test client of a second app: the
real server as the upstream.
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import orjson

from server.services.sync.transport import Reply, TransportError

FHIR_JSON = "application/fhir+json"
FORM = "application/x-www-form-urlencoded"
BASE = "https://upstream.test/fhir-r4/v1"
TOKEN_URL = "https://upstream.test/oauth2/v1/accesstoken"


@dataclass
class Request:
    """One request as the upstream saw it (or one entry of a transaction Bundle)."""

    method: str
    url: str
    headers: dict[str, str]
    raw: bytes | None
    timeout: float
    reply: Reply | None = None  # what the upstream answered (None: no answer)
    in_bundle: bool = False

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))

    @property
    def header(self) -> dict[str, str]:
        """Headers by lower-case name."""
        return {k.lower(): v for k, v in self.headers.items()}

    @property
    def body(self) -> Any:
        """JSON as a dict, a form as a dict of single values, else None."""
        if not self.raw:
            return None
        content_type = self.header.get("content-type", "")
        if content_type.startswith(FORM):
            return {k: v[0] for k, v in parse_qs(self.raw.decode(), keep_blank_values=True).items()}
        return orjson.loads(self.raw)

    @property
    def token(self) -> str | None:
        scheme, _, value = self.header.get("authorization", "").partition(" ")
        return value if scheme.lower() == "bearer" else None

    def __repr__(self) -> str:  # readable assertion failures
        return f"<{self.method} {self.url}{' (in a Bundle)' if self.in_bundle else ''}>"


# A rule's reply: a Reply, an exception to raise (TransportError: no answer), or a function of
# the request and the store's own handler (to let the request through and still lose the reply).
Scripted = Reply | Exception | Callable[[Request, Callable[[Request], Reply]], Reply]


@dataclass
class _Rule:
    method: str
    pattern: re.Pattern[str]
    replies: deque[Scripted]
    repeat: bool


class _Abort(Exception):
    """A transaction entry failed: the whole Bundle is answered with ``reply``."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def json_reply(status: int, body: Any, **headers: str) -> Reply:
    return Reply(status, orjson.dumps(body), {"content-type": FHIR_JSON, **headers})


def outcome(code: str = "invalid", diagnostics: str = "refused", severity: str = "error") -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


def outcome_reply(status: int, code: str = "invalid", diagnostics: str = "refused") -> Reply:
    return json_reply(status, outcome(code, diagnostics))


def lose_reply(request: Request, handle: Callable[[Request], Reply]) -> Reply:
    """The upstream does the work, but the answer never arrives (a timeout)."""
    handle(request)
    raise TransportError(f"{request.method} {request.url}: timed out")


class FakeUpstream:
    """A scripted SATUSEHAT-like upstream; see the module docstring."""

    def __init__(
        self,
        base: str = BASE,
        token_url: str = TOKEN_URL,
        *,
        require_token: bool = True,
        conditional_create: bool = True,
        expires_in: str = "14399",
    ) -> None:
        self.base = base.rstrip("/")
        self.token_url = token_url
        self.require_token = require_token
        self.conditional_create = conditional_create
        self.expires_in = expires_in
        self.requests: list[Request] = []
        self.ops: list[Request] = []
        self.store: dict[tuple[str, str], dict[str, Any]] = {}
        self.valid_tokens: set[str] = set()
        self._rules: list[_Rule] = []
        self._ids = itertools.count(1)
        self._tokens = itertools.count(1)

    # scripting -----------------------------------------------------------------------------

    def reply(self, method: str, pattern: str, *replies: Scripted, repeat: bool = False) -> None:
        """Answer requests whose URL path matches ``pattern`` (re.search) with ``replies``.

        One reply per request, in order; then the store answers again (or, with ``repeat``,
        the last reply is given forever).  A rule also applies to the entries of a
        transaction Bundle: a failing reply fails the whole Bundle (nothing is stored), an
        exception is raised for it, and a function lets it through and then raises.
        """
        self._rules.append(_Rule(method.upper(), re.compile(pattern), deque(replies), repeat))

    def clear_rules(self) -> None:
        """The store answers everything again."""
        self._rules.clear()

    def add(self, resource: dict[str, Any]) -> str:
        """Put a resource upstream (a Patient SATUSEHAT knows); its upstream id."""
        res_id = resource.get("id") or f"u{next(self._ids)}"
        self.store[(resource["resourceType"], res_id)] = {**resource, "id": res_id}
        return res_id

    def expire_tokens(self) -> None:
        self.valid_tokens.clear()

    # what was sent -------------------------------------------------------------------------

    @property
    def token_requests(self) -> list[Request]:
        return [r for r in self.requests if r.url.split("?")[0] == self.token_url]

    def fhir(self, method: str | None = None, res_type: str | None = None) -> list[Request]:
        """FHIR HTTP requests (not the token's), optionally of one method and resource type."""
        found = [r for r in self.requests if r.url.split("?")[0] != self.token_url]
        return self._filter(found, method, res_type)

    def sent(self, method: str | None = None, res_type: str | None = None) -> list[Request]:
        """Resource interactions, alone or in a transaction Bundle, in the order sent."""
        return self._filter(self.ops, method, res_type)

    def resources(self, res_type: str) -> list[dict[str, Any]]:
        return [body for (kind, _), body in self.store.items() if kind == res_type]

    def _filter(self, found: list[Request], method: str | None, res_type: str | None) -> list:
        if method:
            found = [r for r in found if r.method == method]
        if res_type:
            found = [r for r in found if self._parts(r)[0] == res_type]
        return found

    # Transport ---------------------------------------------------------------------------------

    def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float
    ) -> Reply:
        request = Request(method.upper(), url, dict(headers), body, timeout)
        self.requests.append(request)
        if self._parts(request)[0]:
            self.ops.append(request)
        request.reply = self._answer(request)
        return request.reply

    def _rule_for(self, request: Request) -> Scripted | None:
        for rule in self._rules:
            if rule.method == request.method and rule.pattern.search(request.path):
                scripted = rule.replies[0] if rule.repeat else rule.replies.popleft()
                if not rule.replies:
                    self._rules.remove(rule)
                return scripted
        return None

    def _answer(self, request: Request) -> Reply:
        scripted = self._rule_for(request)
        if scripted is None:
            return self._handle(request)
        if isinstance(scripted, Exception):
            raise scripted
        if isinstance(scripted, Reply):
            return scripted
        return scripted(request, self._handle)

    # the store ---------------------------------------------------------------------------------

    def _handle(self, request: Request) -> Reply:
        if request.url.split("?")[0] == self.token_url:
            return self._issue_token(request)
        if self.require_token and request.token not in self.valid_tokens:
            return Reply(401, b'{"fault":{"faultstring":"Invalid Access Token"}}', {})
        if request.method == "POST" and request.url == self.base:
            return self._transaction(request)
        try:
            return self._interaction(request, {})
        except _Abort as abort:
            return abort.reply

    def _interaction(self, request: Request, urns: dict[str, str]) -> Reply:
        """One interaction; ``urns`` are the ids of a transaction's creates, by fullUrl."""
        res_type, res_id = self._parts(request)
        if request.method == "POST" and res_type and res_id is None:
            reserved = urns.get(request.header.get("x-full-url", ""))
            return self._create(
                request, res_type, urns, reserved.split("/")[1] if reserved else None
            )
        if request.method == "PUT" and res_id:
            created = (res_type, res_id) not in self.store
            self.store[(res_type, res_id)] = {**_resolved(request.body, urns), "id": res_id}
            return json_reply(201 if created else 200, self.store[(res_type, res_id)])
        if request.method == "DELETE" and res_id:
            if self.store.pop((res_type, res_id), None) is None:
                raise _Abort(outcome_reply(404, "not-found", f"{res_type}/{res_id} is unknown"))
            return Reply(204)
        if request.method == "DELETE" and res_type:  # conditional
            found = self._matches(res_type, request.query)
            if len(found) > 1:
                raise _Abort(outcome_reply(412, "multiple-matches", "more than one"))
            for body in found:
                del self.store[(res_type, body["id"])]
            return Reply(204)
        if request.method == "GET" and res_id:
            if (res_type, res_id) not in self.store:
                raise _Abort(outcome_reply(404, "not-found", f"{res_type}/{res_id} is unknown"))
            return json_reply(200, self.store[(res_type, res_id)])
        if request.method == "GET" and res_type:
            return json_reply(200, self._searchset(res_type, request.query))
        raise _Abort(outcome_reply(404, "not-supported", f"{request.method} {request.path}"))

    def _issue_token(self, request: Request) -> Reply:
        form = request.body or {}
        if request.query.get("grant_type") != "client_credentials" or not form.get("client_id"):
            return json_reply(400, {"error": "invalid_request"})
        token = f"tok{next(self._tokens)}"
        self.valid_tokens.add(token)
        answer = {
            "access_token": token,
            "token_type": "BearerToken",
            "expires_in": self.expires_in,
            "status": "approved",
        }
        return json_reply(200, answer)

    def _create(
        self, request: Request, res_type: str, urns: dict[str, str], res_id: str | None
    ) -> Reply:
        condition = request.header.get("if-none-exist")
        if condition and self.conditional_create:
            found = self._matches(res_type, dict(parse_qsl(condition)))
            if len(found) > 1:
                raise _Abort(outcome_reply(412, "multiple-matches", "If-None-Exist: several"))
            if found:
                location = f"{self.base}/{res_type}/{found[0]['id']}/_history/1"
                return json_reply(200, found[0], **{"content-location": location})
        body = {**_resolved(request.body, urns), "resourceType": res_type, "id": res_id}
        res_id = self.add(body)
        location = f"{self.base}/{res_type}/{res_id}/_history/1"
        return json_reply(201, self.store[(res_type, res_id)], location=location)

    def _transaction(self, request: Request) -> Reply:
        bundle = request.body
        if not isinstance(bundle, dict) or bundle.get("type") != "transaction":
            return outcome_reply(400, "invalid", "only transaction Bundles are taken here")
        entries = [self._entry(request, item) for item in bundle.get("entry", [])]
        self.ops.extend(entries)
        before = dict(self.store)
        lost: Exception | None = None
        try:
            for entry in entries:  # scripted answers first: they decide for the whole Bundle
                scripted = self._rule_for(entry)
                if isinstance(scripted, Reply) and scripted.status >= 400:
                    raise _Abort(scripted)
                if isinstance(scripted, Exception):
                    raise scripted
                if scripted is not None and not isinstance(scripted, Reply):
                    try:
                        scripted(entry, lambda _r: Reply(200))
                    except Exception as exc:  # raised once the Bundle is applied
                        lost = exc
            urns = self._reserve(entries)
            unresolved = _urn_references(entries) - urns.keys()
            if unresolved:
                raise _Abort(outcome_reply(400, "not-found", f"unresolved {sorted(unresolved)}"))
            responses = []
            for entry in entries:
                reply = self._interaction(entry, urns)
                entry.reply = reply
                responses.append(self._entry_response(entry, reply))
        except _Abort as abort:
            self.store = before
            for entry in entries:
                entry.reply = abort.reply
            return abort.reply
        except Exception:
            self.store = before
            raise
        if lost is not None:
            raise lost
        answer = {"resourceType": "Bundle", "type": "transaction-response", "entry": responses}
        return json_reply(200, answer)

    def _entry(self, request: Request, item: dict[str, Any]) -> Request:
        what = item.get("request", {})
        headers = dict(request.headers)
        if what.get("ifNoneExist"):
            headers["If-None-Exist"] = what["ifNoneExist"]
        if item.get("fullUrl"):
            headers["X-Full-Url"] = item["fullUrl"]
        raw = orjson.dumps(item["resource"]) if "resource" in item else None
        if raw is not None:
            headers["Content-Type"] = FHIR_JSON
        url = f"{self.base}/{what.get('url', '')}"
        return Request(
            what.get("method", "").upper(), url, headers, raw, request.timeout, None, True
        )

    def _reserve(self, entries: list[Request]) -> dict[str, str]:
        """Ids for the creates of a transaction (matched or new), by fullUrl."""
        urns: dict[str, str] = {}
        for entry in entries:
            full_url = entry.header.get("x-full-url")
            res_type, res_id = self._parts(entry)
            if entry.method != "POST" or not full_url or res_id:
                continue
            condition = entry.header.get("if-none-exist")
            found = self._matches(res_type, dict(parse_qsl(condition))) if condition else []
            if condition and self.conditional_create and len(found) == 1:
                urns[full_url] = f"{res_type}/{found[0]['id']}"
            else:
                urns[full_url] = f"{res_type}/u{next(self._ids)}"
        return urns

    def _entry_response(self, entry: Request, reply: Reply) -> dict[str, Any]:
        res_type, res_id = self._parts(entry)
        body = orjson.loads(reply.body) if reply.body else {}
        response: dict[str, Any] = {"status": f"{reply.status}"}
        if body.get("id"):
            response["location"] = f"{res_type}/{body['id']}/_history/1"
        return {"response": response}

    def _searchset(self, res_type: str, query: dict[str, str]) -> dict[str, Any]:
        found = self._matches(res_type, query)
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "entry": [
                {
                    "fullUrl": f"{self.base}/{res_type}/{r['id']}",
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r in found
            ],
        }

    def _matches(self, res_type: str, query: dict[str, str]) -> list[dict[str, Any]]:
        wanted = query.get("identifier")
        found = self.resources(res_type)
        if wanted is not None:
            system, _, value = wanted.rpartition("|")
            found = [
                r
                for r in found
                if any(
                    i.get("system") == system and i.get("value") == value
                    for i in r.get("identifier", [])
                )
            ]
        return found

    def _parts(self, request: Request) -> tuple[str | None, str | None]:
        path = request.url.split("?")[0]
        if not path.startswith(self.base + "/"):
            return None, None
        parts = path[len(self.base) + 1 :].split("/")
        return parts[0], (parts[1] if len(parts) > 1 else None)


def _resolved(value: Any, urns: dict[str, str]) -> Any:
    """``value`` with references to a transaction's fullUrls replaced by ``Type/id``."""
    if isinstance(value, dict):
        result = {k: _resolved(v, urns) for k, v in value.items()}
        if isinstance(value.get("reference"), str) and value["reference"] in urns:
            result["reference"] = urns[value["reference"]]
        return result
    if isinstance(value, list):
        return [_resolved(item, urns) for item in value]
    return value


def _urn_references(entries: list[Request]) -> set[str]:
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            reference = value.get("reference")
            if isinstance(reference, str) and reference.startswith("urn:"):
                found.add(reference)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for entry in entries:
        walk(entry.body)
    return found


@dataclass
class ForwardingTransport:
    """Each request to a Flask test client of another app (the real server upstream)."""

    client: Any
    requests: list[Request] = field(default_factory=list)

    def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float
    ) -> Reply:
        request = Request(method.upper(), url, dict(headers), body, timeout)
        self.requests.append(request)
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        response = self.client.open(path, method=method, headers=headers, data=body)
        request.reply = Reply(
            response.status_code,
            response.get_data(),
            {k.lower(): v for k, v in response.headers.items()},
        )
        return request.reply

    def fhir(self, method: str | None = None) -> list[Request]:
        found = [r for r in self.requests if "accesstoken" not in r.path]
        return [r for r in found if method is None or r.method == method]
