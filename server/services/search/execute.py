"""Run a SearchRequest against storage and page the matches."""

from __future__ import annotations

from dataclasses import dataclass

from server.services.search.parse import SearchRequest
from server.storage.repository import StoredResource
from server.storage.uow import UnitOfWork


@dataclass(frozen=True)
class SearchPage:
    request: SearchRequest
    resources: list[StoredResource]
    has_next: bool


def search(uow: UnitOfWork, request: SearchRequest) -> SearchPage:
    """One page of matches, ordered by id; ``has_next`` when more remain."""
    ids = uow.store.find_ids(
        request.resource_type,
        ids=request.ids,
        token_groups=request.token_groups,
        limit=request.count + 1,
        offset=request.offset,
    )
    has_next = len(ids) > request.count
    ids = ids[: request.count]
    resources = uow.store.many_current(request.resource_type, ids) if ids else []
    return SearchPage(request, resources, has_next)


def match_ids(uow: UnitOfWork, request: SearchRequest, limit: int = 2) -> list[str]:
    """Up to ``limit`` matching ids: conditional interactions need only 0, 1 or "many"."""
    return uow.store.find_ids(
        request.resource_type, ids=request.ids, token_groups=request.token_groups, limit=limit
    )
