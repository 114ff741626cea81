"""Run a SearchRequest: one page of matches, then _include/_revinclude, then totals."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from server.errors import InvalidRequest
from server.fhir.searchparams import SearchParams
from server.services import facilities
from server.services.search.cursor import decode_cursor, encode_cursor
from server.services.search.parse import Include, SearchRequest
from server.storage.repository import StoredResource
from server.storage.search.criteria import Match, Query, UriTest
from server.storage.uow import UnitOfWork

MAX_INCLUDE_ROUNDS = 4  # :iterate stops here; deeper graphs are asked for page by page


@dataclass(frozen=True)
class SearchPage:
    request: SearchRequest
    resources: list[StoredResource]
    included: list[StoredResource]
    next_cursor: str | None
    total: int | None


def search(uow: UnitOfWork, request: SearchRequest) -> SearchPage:
    """One page of matches in sort order, with includes and the total asked for.

    Forbidden when the caller may not search the type or read a type it includes by name;
    matches, counts and includes hold only what the caller may see (facilities.py).
    """
    _check_scopes(uow, request)
    request = replace(request, query=facilities.scoped_query(uow, request.query))
    total = _total(uow, request)
    if request.summary == "count":
        return SearchPage(request, [], [], None, total)
    after = decode_cursor(request.cursor) if request.cursor else None
    rows = uow.store.search_page(request.query, limit=request.count + 1, after=after)
    more = len(rows) > request.count
    rows = rows[: request.count]
    ids = [row[-1] for row in rows]
    resources = uow.store.many_current(request.resource_type, ids) if ids else []
    included = _includes(uow, request, resources)
    next_cursor = encode_cursor(rows[-1]) if more and rows else None
    return SearchPage(request, resources, included, next_cursor, total)


def _check_scopes(uow: UnitOfWork, request: SearchRequest) -> None:
    caller = facilities.caller_of(uow)
    caller.require(request.resource_type, "s")
    for include in request.includes:
        if include.target_type is not None:
            caller.require(include.target_type, "r", "_include")
    for include in request.revincludes:
        caller.require(include.source_type, "r", "_revinclude")


def match_ids(uow: UnitOfWork, query: Query, limit: int = 2) -> list[str]:
    """Up to ``limit`` matching ids: conditional interactions need only 0, 1 or "many"."""
    return uow.store.match_ids(query, limit)


def _total(uow: UnitOfWork, request: SearchRequest) -> int | None:
    if request.summary == "count" or request.total == "accurate":
        return uow.store.search_count(request.query)
    if request.total == "estimate":
        return uow.store.search_estimate(request.query)
    return None


def _includes(
    uow: UnitOfWork, request: SearchRequest, matches: list[StoredResource]
) -> list[StoredResource]:
    seen = {(r.res_type, r.res_id) for r in matches}
    found: list[StoredResource] = []
    frontier = matches
    for round_number in range(MAX_INCLUDE_ROUNDS):
        keys: set[tuple[str, str]] = set()
        for include in request.includes:
            if round_number == 0 or include.iterate:
                keys.update(_forward(uow, include, frontier))
        for include in request.revincludes:
            if round_number == 0 or include.iterate:
                keys.update(_reverse(uow, include, frontier))
        frontier = [r for r in _load(uow, keys - seen) if not r.deleted]
        if not frontier:
            break
        seen.update((r.res_type, r.res_id) for r in frontier)
        found.extend(frontier)
    return found


def _forward(uow: UnitOfWork, include: Include, sources: list[StoredResource]) -> set[Any]:
    keys: set[tuple[str, str]] = set()
    for res_type, ids in _by_type((r.res_type, r.res_id) for r in sources).items():
        if include.source_type not in ("*", res_type):
            continue
        params = (
            [c for c, p in active_params(uow).for_type(res_type).items() if p.type == "reference"]
            if include.param == "*"
            else [include.param]
        )
        for param in params:
            keys.update(uow.store.referenced(res_type, ids, param, include.target_type))
    return keys


def _reverse(uow: UnitOfWork, include: Include, targets: list[StoredResource]) -> set[Any]:
    if include.param == "*":
        raise InvalidRequest("_revinclude=* is not supported; name Type:parameter", "_revinclude")
    keys: set[tuple[str, str]] = set()
    for res_type, ids in _by_type((r.res_type, r.res_id) for r in targets).items():
        if include.target_type not in (None, res_type):
            continue
        sources = uow.store.referencing(include.source_type, include.param, res_type, ids)
        keys.update((include.source_type, i) for i in sources)
    return keys


def active_params(uow: UnitOfWork) -> SearchParams:
    """The parameters searches in this unit of work may use."""
    if uow.search_params is None:
        raise RuntimeError("search needs a unit of work opened with search parameters")
    return uow.search_params


def _load(uow: UnitOfWork, keys: set[tuple[str, str]]) -> list[StoredResource]:
    """Included resources the caller may read: its scopes per type, its facilities in SQL."""
    caller = facilities.caller_of(uow)
    groups = _by_type(sorted(keys))
    return [
        r
        for t, ids in groups.items()
        if caller.allows(t, "r")
        for r in uow.store.many_current(t, ids, facilities.binding_for(caller, t))
    ]


def _by_type(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Ids grouped by resource type, in the order given."""
    groups: dict[str, list[str]] = {}
    for res_type, res_id in keys:
        groups.setdefault(res_type, []).append(res_id)
    return groups


def value_set_codes(uow: UnitOfWork, url: str) -> list[tuple[str | None, str | None]] | None:
    """(system, code) pairs of a ValueSet the server holds (code None: the whole system)."""
    query = Query("ValueSet", (Match("uri", "url", (UriTest(url.split("|")[0]),)),))
    ids = match_ids(uow, query, limit=1)
    if not ids:
        return None
    value_set = uow.store.current("ValueSet", ids[0])
    content = value_set.content if value_set else None
    return _codes(content or {})


def _codes(value_set: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    codes: list[tuple[str | None, str | None]] = [
        (c.get("system"), c.get("code")) for c in _contains(value_set.get("expansion") or {})
    ]
    for include in (value_set.get("compose") or {}).get("include") or ():
        concepts = include.get("concept") or ()
        codes.extend((include.get("system"), c.get("code")) for c in concepts)
        if not concepts and include.get("system") and not include.get("filter"):
            codes.append((include["system"], None))
    return codes


def _contains(expansion: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for item in expansion.get("contains") or ():
        out.append(item)
        out.extend(_contains(item))
    return out
