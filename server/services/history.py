"""History of an instance, a type or the whole system, as a Bundle of type history.

Newest first; pages are cut by the global version sequence, so a ``next`` link
stays correct while new versions are written.  See https://hl7.org/fhir/R4/http.html#history.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from server.errors import InvalidRequest, NotFound
from server.fhir.integers import parse_unsigned
from server.fhir.references import resource_url
from server.fhir.registry import SUPPORTED
from server.services import facilities
from server.services.facilities import SHARED_TYPES, caller_of
from server.services.resources import format_instant, require_type
from server.storage.repository import StoredResource
from server.storage.uow import UnitOfWork

_STATUS = {"POST": "201 Created", "PUT": "200 OK", "PATCH": "200 OK", "DELETE": "204 No Content"}


def history(
    uow: UnitOfWork,
    base: str,
    resource_type: str | None,
    res_id: str | None,
    params: Sequence[tuple[str, str]],
    *,
    default_count: int,
    max_count: int,
) -> dict[str, Any]:
    """A history Bundle; NotFound for an instance that never existed."""
    if resource_type is not None:
        require_type(resource_type, "history-instance" if res_id else "history-type")
    count, since, cursor = _parse(params, default_count, max_count)
    caller = caller_of(uow)
    if resource_type and res_id:
        caller.require(resource_type, "r")
        facilities.check_past(uow, resource_type, res_id)
        binding, types = None, None  # the instance's whole history, once it may be read
    elif resource_type:
        caller.require(resource_type, "s")
        binding = None if resource_type in SHARED_TYPES else caller.binding
        types = None
    else:  # the system's history: the types the caller may search, of its facilities
        binding = caller.binding
        allowed = [t for t in SUPPORTED if caller.allows(t, "s")]
        if binding is not None:  # shared types are not facility-bound; left out here
            allowed = [t for t in allowed if t not in SHARED_TYPES]
        types = None if len(allowed) == len(SUPPORTED) else allowed
    versions = uow.store.history(
        resource_type,
        res_id,
        since=since,
        before_seq=cursor,
        limit=count + 1,
        binding=binding,
        types=types,
    )
    if resource_type and res_id and not versions and not uow.store.current(resource_type, res_id):
        raise NotFound(f"{resource_type}/{res_id} is not known")
    page, more = versions[:count], len(versions) > count
    path = "/".join(p for p in (base, resource_type, res_id, "_history") if p)
    kept = [(k, v) for k, v in params if k in ("_count", "_since")]
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "history",
        "link": [{"relation": "self", "url": _with_query(path, kept + _cursor_param(params))}],
    }
    if page:  # FHIR JSON forbids empty arrays
        bundle["entry"] = [_entry(base, version) for version in page]
    if res_id is not None and resource_type is not None:
        bundle["total"] = uow.store.count_versions(resource_type, res_id, since)
    if more:
        bundle["link"].append(
            {"relation": "next", "url": _with_query(path, kept + [("_cursor", str(page[-1].seq))])}
        )
    return bundle


def _parse(
    params: Sequence[tuple[str, str]], default_count: int, max_count: int
) -> tuple[int, datetime | None, int | None]:
    count, since, cursor = default_count, None, None
    for name, value in params:
        if name == "_count":
            number = parse_unsigned(value)
            if not number:
                raise InvalidRequest(f"_count must be a positive integer, got {value!r}", name)
            count = min(number, max_count)
        elif name == "_since":
            since = _parse_instant(value)
        elif name == "_cursor":
            cursor = parse_unsigned(value)
            if cursor is None:
                raise InvalidRequest(f"_cursor {value!r} is not one this server issued", name)
    return count, since, cursor


def _parse_instant(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"_since must be an instant, got {value!r}", "_since") from None
    if moment.tzinfo is None:
        raise InvalidRequest("_since must include a time zone", "_since")
    return moment


def _cursor_param(params: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in params if k == "_cursor"]


def _with_query(path: str, params: list[tuple[str, str]]) -> str:
    return f"{path}?{urlencode(params)}" if params else path


def _entry(base: str, version: StoredResource) -> dict[str, Any]:
    url = f"{version.res_type}/{version.res_id}"
    entry: dict[str, Any] = {"fullUrl": resource_url(base, version.res_type, version.res_id)}
    if version.content is not None:
        entry["resource"] = version.content
    entry["request"] = {
        "method": version.method,
        "url": version.res_type if version.method == "POST" else url,
    }
    entry["response"] = {
        "status": _STATUS.get(version.method, "200 OK"),
        "etag": f'W/"{version.version_id}"',
        "lastModified": format_instant(version.last_updated),
    }
    return entry
