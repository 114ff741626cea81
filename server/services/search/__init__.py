"""Search: parameters parsed into a request, run against the storage indexes.

``search_bundle`` is the one entry point for callers outside this package (the
HTTP views and GET entries of batch/transaction bundles).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.services.search.execute import active_params, search, value_set_codes
from server.services.search.paging import searchset_bundle
from server.services.search.parse import parse_search
from server.storage.uow import UnitOfWork


def search_bundle(
    uow: UnitOfWork,
    base: str,
    resource_type: str,
    params: Sequence[tuple[str, str]],
    *,
    default_count: int,
    max_count: int,
    lenient: bool = False,
) -> dict[str, Any]:
    """The searchset Bundle answering ``resource_type?params`` (one page)."""
    request = parse_search(
        resource_type,
        params,
        active_params(uow),
        default_count=default_count,
        max_count=max_count,
        lenient=lenient,
        expand=lambda url: value_set_codes(uow, url),
    )
    return searchset_bundle(base, search(uow, request))
