"""The entries of a batch or transaction Bundle, read and checked before any work is done.

This is the preprocess phase (Medplum's ``BatchProcessor.preprocess``): limits, the
envelope's structure, and each entry's ``request`` (method, url, conditions) and resource.
Every problem names its entry, e.g. ``Bundle.entry[3].request.url``; ``locate`` does the
same for errors raised later by the services.
See https://hl7.org/fhir/R4/http.html#transaction and bundle.html#rules.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from server.errors import (
    FhirError,
    InvalidRequest,
    InvalidResource,
    Issue,
    NotSupported,
    PayloadTooLarge,
)
from server.fhir import jsonio
from server.fhir.integers import INTEGER_MAX, parse_unsigned
from server.fhir.structure import check_resource
from server.services.resources import require_type
from server.services.validation import parse_json

# http.html#trules: DELETE, then POST, then PUT/PATCH, then GET/HEAD.
ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
PROCESSED_TYPES = ("batch", "transaction")
JSON_PATCH = "application/json-patch+json"
_REGISTRY_CODE = {"conditional-update": "update", "conditional-delete": "delete"}
_READS = {
    ("*",): "search-type",
    ("*", "*"): "read",
    ("*", "_history"): "history-type",
    ("*", "*", "_history"): "history-instance",
    ("*", "*", "_history", "*"): "vread",
    ("_history",): "history-system",
}
_WRITES = {
    ("POST", ("*",)): "create",
    ("PUT", ("*",)): "conditional-update",
    ("DELETE", ("*",)): "conditional-delete",
    ("PUT", ("*", "*")): "update",
    ("PATCH", ("*", "*")): "patch",
    ("DELETE", ("*", "*")): "delete",
}


@dataclass(frozen=True)
class BundleLimits:
    max_entries: int
    max_bytes: int
    max_depth: int


@dataclass
class Entry:
    """One entry's request as parsed; ``error`` holds a problem found before processing."""

    index: int
    method: str = ""
    url: str = ""
    interaction: str = ""
    resource_type: str | None = None
    res_id: str | None = None
    version_id: str | None = None
    params: list[tuple[str, str]] = field(default_factory=list)
    full_url: str | None = None
    resource: dict[str, Any] | None = None
    patch: list[Any] | None = None
    if_match: int | None = None
    if_none_match: str | None = None
    if_none_exist: str | None = None
    if_modified_since: datetime | None = None
    error: FhirError | None = None

    @property
    def path(self) -> str:
        return f"Bundle.entry[{self.index}]"


def parse_bundle(raw: bytes, limits: BundleLimits, base: str) -> dict[str, Any]:
    """Decode a Bundle posted to the base URL and check its size, depth and type.

    Raises PayloadTooLarge (413) beyond the byte or entry limit, InvalidRequest (400) for
    anything that is not a batch or transaction Bundle or that nests too deep.
    """
    if len(raw) > limits.max_bytes:
        raise PayloadTooLarge(
            f"The Bundle has {len(raw):,} bytes; this server takes at most "
            f"{limits.max_bytes:,} (ILP_MAX_BUNDLE_BYTES)"
        )
    bundle = parse_json(raw)
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidRequest(
            "POST to the base URL takes a Bundle of type batch or transaction", "resourceType"
        )
    if jsonio.deeper_than(bundle, limits.max_depth):
        raise InvalidRequest(
            f"The Bundle nests JSON objects and arrays deeper than {limits.max_depth} levels "
            "(ILP_MAX_BUNDLE_DEPTH)",
            "Bundle",
        )
    kind = bundle.get("type")
    if kind not in PROCESSED_TYPES:
        raise InvalidRequest(
            f"Bundle.type {kind!r} is not processed here: POST {base} takes batch and "
            f"transaction Bundles; store other Bundles with POST {base}/Bundle",
            "Bundle.type",
        )
    entries = bundle.get("entry", [])
    if isinstance(entries, list) and len(entries) > limits.max_entries:
        raise PayloadTooLarge(
            f"The Bundle has {len(entries):,} entries; this server takes at most "
            f"{limits.max_entries:,} (ILP_MAX_BUNDLE_ENTRIES)",
            "Bundle.entry",
        )
    return bundle


def read_entries(bundle: dict[str, Any], base: str, *, transaction: bool) -> list[Entry]:
    """Every entry parsed and checked, in Bundle order.

    A transaction raises the first problem (located on its entry); a batch keeps each
    entry's problem in ``Entry.error``.  Problems of the Bundle itself always raise.
    """
    by_entry = _envelope_issues(bundle)
    entries: list[Entry] = []
    for index, raw in enumerate(bundle.get("entry") or ()):
        entry = Entry(index)
        try:
            _read_entry(entry, raw, base, by_entry.get(index))
        except FhirError as error:
            if transaction:
                raise locate(error, entry) from None
            entry.error = locate(error, entry)
        entries.append(entry)
    seen: dict[str, int] = {}
    for entry in entries:
        if entry.full_url is not None and entry.full_url in seen:
            raise InvalidRequest(
                f"{entry.path}.fullUrl {entry.full_url!r} is also the fullUrl of "
                f"Bundle.entry[{seen[entry.full_url]}]; fullUrls must be unique",
                f"{entry.path}.fullUrl",
            )
        if entry.full_url is not None:
            seen[entry.full_url] = entry.index
    return entries


def _envelope_issues(bundle: dict[str, Any]) -> dict[int, list[Issue]]:
    """Structural issues of the Bundle without its entries' resources, by entry index."""
    raw_entries = bundle.get("entry")
    envelope = dict(bundle)
    if isinstance(raw_entries, list):
        envelope["entry"] = [
            {k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e
            for e in raw_entries
        ]
    by_entry: dict[int, list[Issue]] = {}
    general: list[Issue] = []
    for issue in check_resource(envelope):
        found = re.match(r"Bundle\.entry\[(\d+)\]", issue.expression[0] if issue.expression else "")
        if found:
            by_entry.setdefault(int(found[1]), []).append(issue)
        else:
            general.append(issue)
    if general:
        raise InvalidResource(general[0].diagnostics, issues=general)
    return by_entry


def _read_entry(entry: Entry, raw: Any, base: str, issues: list[Issue] | None) -> None:
    request = raw.get("request") if isinstance(raw, dict) else None
    if not isinstance(request, dict):
        raise InvalidRequest(
            f"{entry.path} has no request: batch and transaction entries need request.method "
            "and request.url",
            f"{entry.path}.request",
        )
    if issues:
        raise InvalidResource(issues[0].diagnostics, issues=issues)
    method, url = request.get("method"), request.get("url")
    if method not in ORDER:
        raise InvalidRequest(
            f"request.method must be one of {', '.join(ORDER)}", f"{entry.path}.request.method"
        )
    if not isinstance(url, str) or not url.strip():
        raise InvalidRequest("request.url is missing", f"{entry.path}.request.url")
    entry.method, entry.url = method, url
    full_url = raw.get("fullUrl")
    entry.full_url = full_url if isinstance(full_url, str) else None
    _read_url(entry, base)
    _read_conditions(entry, request)
    if method in ("POST", "PUT"):
        entry.resource = _checked_resource(entry, raw.get("resource"))
    elif method == "PATCH":
        entry.patch = _json_patch(entry, raw.get("resource"))


def _read_url(entry: Entry, base: str) -> None:
    url = entry.url
    if url.startswith(base + "/"):
        url = url[len(base) + 1 :]
    elif "://" in url.split("?", 1)[0]:
        raise InvalidRequest(
            f"request.url {entry.url!r} is not on this server; use a URL relative to {base}"
        )
    path, _, query = url.lstrip("/").partition("?")
    if "\x00" in path:  # no id or type holds it, and PostgreSQL text cannot
        raise InvalidRequest(f"request.url {entry.url!r} must not contain U+0000")
    segments = path.split("/") if path else []
    if any(s.startswith("$") for s in segments):
        raise NotSupported(f"Operations ({entry.url}) are not supported in Bundles")
    entry.params = parse_qsl(query, keep_blank_values=True)
    entry.interaction = _interaction(entry.method, segments, bool(query))
    if entry.interaction in ("capabilities", "history-system"):
        return
    entry.resource_type = segments[0]
    entry.res_id = segments[1] if len(segments) > 1 and segments[1] != "_history" else None
    entry.version_id = segments[3] if len(segments) == 4 else None
    require_type(entry.resource_type, _REGISTRY_CODE.get(entry.interaction, entry.interaction))


def _interaction(method: str, segments: list[str], has_query: bool) -> str:
    shape = tuple(s if s == "_history" else "*" for s in segments)
    if method in ("GET", "HEAD"):
        found = "capabilities" if segments == ["metadata"] else _READS.get(shape)
    else:
        found = _WRITES.get((method, shape))
    if found is None or (found.startswith("conditional") and not has_query):
        shown = "/".join(segments) or "the base URL"
        raise InvalidRequest(
            f"{method} {shown} is not an interaction this server offers in a Bundle"
        )
    return found


def _read_conditions(entry: Entry, request: dict[str, Any]) -> None:
    if_match = request.get("ifMatch")
    if isinstance(if_match, str):
        value = if_match.strip().removeprefix("W/").strip('"')
        version = parse_unsigned(value, INTEGER_MAX)
        if version is None:
            raise InvalidRequest(
                f'ifMatch must be an ETag such as W/"3", got {if_match!r}',
                f"{entry.path}.request.ifMatch",
            )
        entry.if_match = version
    entry.if_none_match = request.get("ifNoneMatch")
    entry.if_none_exist = request.get("ifNoneExist") if entry.method == "POST" else None
    since = request.get("ifModifiedSince")
    if isinstance(since, str):
        try:
            entry.if_modified_since = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRequest(
                f"ifModifiedSince {since!r} is not an instant",
                f"{entry.path}.request.ifModifiedSince",
            ) from None


def _checked_resource(entry: Entry, resource: Any) -> dict[str, Any]:
    if not isinstance(resource, dict):
        raise InvalidRequest(f"A {entry.method} entry needs a resource", f"{entry.path}.resource")
    if resource.get("resourceType") != entry.resource_type:
        raise InvalidRequest(
            f"resourceType {resource.get('resourceType')!r} does not match request.url "
            f"{entry.url!r}",
            f"{entry.path}.resource.resourceType",
        )
    issues = check_resource(resource)
    if issues:
        raise InvalidResource(issues[0].diagnostics, issues=issues)
    return resource


def _json_patch(entry: Entry, resource: Any) -> list[Any]:
    """The JSON Patch a PATCH entry carries as a Binary (http.html#patch)."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Binary":
        raise NotSupported(
            f"A PATCH entry carries a JSON Patch as a Binary resource ({JSON_PATCH}); "
            "FHIRPath Patch (Parameters) is not supported",
            f"{entry.path}.resource",
        )
    if resource.get("contentType") != JSON_PATCH:
        raise NotSupported(
            f"The Binary of a PATCH entry must have contentType {JSON_PATCH}",
            f"{entry.path}.resource.contentType",
        )
    try:
        operations = parse_json(base64.b64decode(resource.get("data", ""), validate=True))
    except (binascii.Error, ValueError, InvalidRequest):
        raise InvalidRequest(
            "Binary.data must be base64 of a JSON Patch document", f"{entry.path}.resource.data"
        ) from None
    if not isinstance(operations, list):
        raise InvalidRequest(
            "A JSON Patch document must be a JSON array", f"{entry.path}.resource.data"
        )
    return operations


def locate(error: FhirError, entry: Entry, element_path: str = ".request.url") -> FhirError:
    """The same error, its expressions moved onto ``entry`` (``Bundle.entry[i]...``).

    Resource paths (``Patient.name[0]``) become ``Bundle.entry[i].resource.name[0]``;
    issues without a Bundle path point at ``element_path`` of the entry.
    """
    prefix = f"{entry.path} ({entry.method} {entry.url}): " if entry.method else f"{entry.path}: "
    issues = [
        Issue(
            issue.severity,
            issue.code,
            prefix + issue.diagnostics,
            tuple(_entry_path(e, entry, element_path) for e in issue.expression)
            or (entry.path + element_path,),
        )
        for issue in error.issues
    ]
    return type(error)(issues[0].diagnostics, issues=issues)


def _entry_path(expression: str, entry: Entry, element_path: str) -> str:
    if expression.startswith("Bundle.entry["):
        return expression
    head = expression.split(".", 1)[0].split("[", 1)[0]
    if entry.method in ("POST", "PUT") and head == entry.resource_type:
        return f"{entry.path}.resource{expression[len(head) :]}"
    return entry.path + element_path
