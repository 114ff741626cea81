"""``ilp reindex``: make SearchParameters stored on the server searchable.

1. Every stored SearchParameter not yet indexed (or changed since) becomes
   ``indexing``: from then on each write indexes it.
2. After the workers have noticed (``settle_seconds``), every resource of the
   parameters' base types gets its index rows rewritten, in key order, one batch
   per transaction, the position saved with each batch: an interrupted run
   resumes where it stopped.
3. The parameters become ``active``: searches use them and the
   CapabilityStatement lists them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from server.errors import InvalidRequest
from server.fhir.registry import SUPPORTED
from server.services.context import ServiceContext
from server.services.search.definitions import BUILT_IN, REFRESH_SECONDS, builtin_urls, problem
from server.storage import search_params as stored


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    params: tuple[str, ...]  # codes being indexed


@dataclass(frozen=True)
class ReindexReport:
    activated: tuple[str, ...]
    resources: int
    skipped: tuple[str, ...]  # "id: reason" of stored parameters that cannot be indexed


def reindex(
    context: ServiceContext,
    *,
    batch_size: int = 500,
    settle_seconds: float = 2 * REFRESH_SECONDS,
    progress: Callable[[Progress], None] = lambda _p: None,
) -> ReindexReport:
    if batch_size < 1:
        raise InvalidRequest("The batch size must be at least 1")
    urls = builtin_urls(context.settings)
    with context.unit_of_work(write=True) as uow:
        connection = uow.connection
        params = stored.stored_params(connection)
        problems = {p.res_id: problem(p.content, urls) for p in params}
        skipped = tuple(
            f"{p.res_id}: {problems[p.res_id]}"
            for p in params
            if p.status is None and problems[p.res_id] not in (None, BUILT_IN)
        )
        todo = [p for p in params if p.status != "active" and problems[p.res_id] is None]
        for param in todo:
            if param.status != "indexing":
                stored.set_state(connection, param, "indexing")
    if not todo:
        return ReindexReport((), 0, skipped)
    context.search_definitions.invalidate()
    time.sleep(settle_seconds)  # every worker now indexes the new parameters on write

    codes = tuple(p.content["code"] for p in todo)
    types = sorted({b for p in todo for b in p.content["base"] if b in SUPPORTED})
    # they share one scan: resume it only when every parameter stopped at the same place
    same = all(p.cursor == todo[0].cursor for p in todo)
    cursor, done = (todo[0].cursor, todo[0].done) if same else (None, 0)
    with context.unit_of_work() as uow:
        total = stored.count_resources(uow.connection, types)
    progress(Progress(done, total, codes))
    while True:
        with context.unit_of_work(write=True) as uow:
            count, cursor = stored.reindex_batch(
                uow.connection, context.definitions().indexer, types, cursor, batch_size
            )
            done += count
            for param in todo:
                stored.set_state(
                    uow.connection, param, "indexing" if cursor else "active", cursor, done
                )
        progress(Progress(done, max(total, done), codes))
        if cursor is None:
            break
    context.search_definitions.invalidate()
    return ReindexReport(codes, done, skipped)
