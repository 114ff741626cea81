"""Store and forward to an upstream FHIR platform (SATUSEHAT, or an ILP node): docs/sync.md.

``worker.py`` sends, ``upstream.py`` speaks OAuth2 and FHIR, ``prepare.py`` shapes bodies,
``transport.py`` is the network seam.  This module builds them from settings and answers
the operator's questions (``ilp sync status``, ``retry``, ``GET /admin/sync``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from server.errors import FhirError
from server.services.context import ServiceContext
from server.services.sync.transport import HttpTransport, Transport
from server.services.sync.upstream import Upstream
from server.services.sync.worker import BatchReport, SyncWorker
from server.storage import sync as outbox

__all__ = ["BatchReport", "SyncWorker", "requeue", "status", "worker"]


class SyncNotConfigured(FhirError):
    status = 400
    issue_code = "processing"


def worker(context: ServiceContext, transport: Transport | None = None) -> SyncWorker:
    """A worker for the configured upstream (``ILP_UPSTREAM_*``)."""
    if not context.settings.upstream_url:
        raise SyncNotConfigured("ILP_UPSTREAM_URL is not set: there is no upstream to send to")
    return SyncWorker(context, Upstream(context.settings, transport or HttpTransport()))


def status(context: ServiceContext, limit: int = 50) -> dict[str, Any]:
    """Rows per state, resources mapped, and the latest problems with their reasons."""
    with context.unit_of_work() as uow:
        counts = outbox.counts(uow.connection)
        problems = outbox.problems(uow.connection, limit)
        mapped = outbox.mapped_count(uow.connection)
    return {
        "upstream": context.settings.upstream_url or None,
        "outbox": counts,
        "mapped": mapped,
        "problems": [
            {
                "seq": row.seq,
                "resource": f"{row.res_type}/{row.res_id}",
                "version": row.version_id,
                "state": row.state,
                "attempts": row.attempts,
                "reason": row.reason,
                "outcome": row.detail,
                "updated": row.updated_at.isoformat() if row.updated_at else None,
            }
            for row in problems
        ],
    }


def requeue(context: ServiceContext, seqs: Iterable[int] | None = None) -> int:
    """Failed and parked rows (all, or those named) back to pending: after a fix upstream."""
    with context.unit_of_work(write=True) as uow:
        return outbox.requeue(uow.connection, datetime.now(UTC), seqs)
