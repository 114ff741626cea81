"""The sync outbox and the id map in SQL: claim, record, count, re-queue.

Rows are written by ``ResourceStore`` in each write's own transaction; this module is
what the sync worker (``services/sync``) does with them.  Claims are leases: a worker that
dies leaves rows claimed until the lease ends, or until a worker on the same host sees
that the process is gone (``release_dead_claims``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from server.storage.schema import SyncIdMap, SyncOutbox

_O = cast(Table, SyncOutbox.__table__)
_M = cast(Table, SyncIdMap.__table__)

PENDING, SENT, FAILED, PARKED = "pending", "sent", "failed", "parked"
STATES = (PENDING, SENT, FAILED, PARKED)


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    res_type: str
    res_id: str
    version_id: int
    state: str
    attempts: int
    reason: str | None = None
    detail: dict[str, Any] | None = None
    updated_at: datetime | None = None


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def _row(row: Any) -> OutboxRow:
    return OutboxRow(
        row.seq,
        row.res_type,
        row.res_id,
        row.version_id,
        row.state,
        row.attempts,
        row.reason,
        row.detail,
        _utc(row.updated_at),
    )


def claim(
    connection: Connection, worker: str, now: datetime, limit: int, lease: timedelta
) -> list[OutboxRow]:
    """Claim up to ``limit`` due pending rows, oldest first, for ``worker``.

    On PostgreSQL, ``FOR UPDATE SKIP LOCKED`` lets several workers claim at once without
    taking the same row; SQLite runs one writer at a time anyway.
    """
    due = (
        select(_O.c.seq)
        .where(
            _O.c.state == PENDING,
            or_(_O.c.not_before.is_(None), _O.c.not_before <= now),
            or_(_O.c.claimed_until.is_(None), _O.c.claimed_until < now),
        )
        .order_by(_O.c.seq)
        .limit(limit)
    )
    if connection.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    seqs = list(connection.execute(due).scalars())
    if not seqs:
        return []
    connection.execute(
        update(_O)
        .where(_O.c.seq.in_(seqs))
        .values(claimed_by=worker, claimed_until=now + lease, attempts=_O.c.attempts + 1)
    )
    rows = connection.execute(select(_O).where(_O.c.seq.in_(seqs)).order_by(_O.c.seq)).all()
    return [_row(row) for row in rows]


def latest_seq(connection: Connection, res_type: str, res_id: str) -> int:
    """The newest outbox row of a resource (0 if none): what a send of its current state covers."""
    found = connection.execute(
        select(func.max(_O.c.seq)).where(_O.c.res_type == res_type, _O.c.res_id == res_id)
    ).scalar()
    return int(found or 0)


def latest_seqs(connection: Connection, res_type: str, ids: Sequence[str]) -> dict[str, int]:
    """``latest_seq`` of many resources of one type."""
    rows = connection.execute(
        select(_O.c.res_id, func.max(_O.c.seq))
        .where(_O.c.res_type == res_type, _O.c.res_id.in_(ids))
        .group_by(_O.c.res_id)
    ).all()
    return {str(res_id): int(seq) for res_id, seq in rows}


# A row no longer claimed by anyone (``_FINISHED``: nor waiting for a time).
_RELEASED: dict[str, Any] = {"claimed_by": None, "claimed_until": None}
_FINISHED: dict[str, Any] = {**_RELEASED, "not_before": None}

# Every unfinished row of a resource up to ``k_last`` gets its final state.  ``!= SENT``, not
# ``IN (...)``: an expanding list cannot go in the executemany of ``record_sent``.
_SETTLE = (
    update(_O)
    .where(
        _O.c.res_type == bindparam("k_type"),
        _O.c.res_id == bindparam("k_id"),
        _O.c.seq <= bindparam("k_last"),
        _O.c.state != SENT,
    )
    .values(
        state=bindparam("k_state"),
        reason=bindparam("k_reason"),
        detail=bindparam("k_detail"),
        updated_at=bindparam("k_now"),
        **_FINISHED,
    )
)


def _settled(
    res_type: str,
    res_id: str,
    last: int,
    state: str,
    now: datetime,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "k_type": res_type,
        "k_id": res_id,
        "k_last": last,
        "k_state": state,
        "k_reason": reason,
        "k_detail": detail,
        "k_now": now,
    }


def settle(
    connection: Connection,
    res_type: str,
    res_id: str,
    up_to_seq: int,
    state: str,
    now: datetime,
    *,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Give every unfinished row of a resource up to ``up_to_seq`` its final ``state``."""
    connection.execute(_SETTLE, _settled(res_type, res_id, up_to_seq, state, now, reason, detail))


@dataclass(frozen=True)
class Sent:
    """A resource sent (or with nothing to send) up to its outbox row ``last``."""

    res_type: str
    res_id: str
    last: int
    upstream_id: str | None = None
    again: int | None = None  # a version to queue again


def record_sent(connection: Connection, sent: Sequence[Sent], now: datetime) -> None:
    """Record a batch's results: upstream ids, rows settled as sent, rows queued again.

    One statement per kind (executemany): a batch of hundreds records in milliseconds.
    """
    if not sent:
        return
    mapped = [
        {
            "res_type": s.res_type,
            "res_id": s.res_id,
            "upstream_id": s.upstream_id,
            "updated_at": now,
        }
        for s in sent
        if s.upstream_id is not None
    ]
    if mapped:
        upsert = sqlite_insert if connection.dialect.name == "sqlite" else postgresql_insert
        statement = upsert(_M)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=[_M.c.res_type, _M.c.res_id],
                set_={
                    "upstream_id": statement.excluded.upstream_id,
                    "updated_at": statement.excluded.updated_at,
                },
            ),
            mapped,
        )
    connection.execute(_SETTLE, [_settled(s.res_type, s.res_id, s.last, SENT, now) for s in sent])
    again = [
        {
            "res_type": s.res_type,
            "res_id": s.res_id,
            "version_id": s.again,
            "state": PENDING,
            "attempts": 0,
            "updated_at": now,
        }
        for s in sent
        if s.again is not None
    ]
    if again:
        connection.execute(insert(_O), again)


def postpone(
    connection: Connection,
    seqs: Sequence[int],
    not_before: datetime,
    now: datetime,
    reason: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """A transient failure: try these rows again after ``not_before``."""
    connection.execute(
        update(_O)
        .where(_O.c.seq.in_(seqs), _O.c.state == PENDING)
        .values(not_before=not_before, reason=reason, detail=detail, updated_at=now, **_RELEASED)
    )


def release_dead_claims(connection: Connection, host: str, alive: Callable[[int], bool]) -> int:
    """Free the claims of workers on ``host`` whose process is gone (``host:pid`` names)."""
    claimed = connection.execute(
        select(_O.c.claimed_by)
        .where(_O.c.state == PENDING, _O.c.claimed_by.like(f"{host}:%"))
        .distinct()
    ).scalars()
    dead = [name for name in claimed if not alive(int(name.rsplit(":", 1)[1]))]
    if not dead:
        return 0
    result = connection.execute(
        update(_O).where(_O.c.state == PENDING, _O.c.claimed_by.in_(dead)).values(**_RELEASED)
    )
    return int(result.rowcount)


def requeue(connection: Connection, now: datetime, seqs: Iterable[int] | None = None) -> int:
    """Failed and parked rows (all, or those of ``seqs``) back to pending, attempts reset."""
    condition: ColumnElement[bool] = _O.c.state.in_((FAILED, PARKED))
    if seqs is not None:
        condition = and_(condition, _O.c.seq.in_(list(seqs)))
    result = connection.execute(
        update(_O).where(condition).values(state=PENDING, attempts=0, updated_at=now, **_FINISHED)
    )
    return int(result.rowcount)


def counts(connection: Connection) -> dict[str, int]:
    """Rows per state, every state present."""
    rows = connection.execute(select(_O.c.state, func.count()).group_by(_O.c.state)).all()
    found = {str(state): int(count) for state, count in rows}
    return {state: int(found.get(state, 0)) for state in STATES}


def problems(connection: Connection, limit: int) -> list[OutboxRow]:
    """Failed and parked rows, and pending ones that have failed before, newest first."""
    rows = connection.execute(
        select(_O)
        .where(
            or_(
                _O.c.state.in_((FAILED, PARKED)),
                and_(_O.c.state == PENDING, _O.c.reason.is_not(None)),
            )
        )
        .order_by(_O.c.seq.desc())
        .limit(limit)
    ).all()
    return [_row(row) for row in rows]


def upstream_id(connection: Connection, res_type: str, res_id: str) -> str | None:
    return cast(
        "str | None",
        connection.execute(
            select(_M.c.upstream_id).where(_M.c.res_type == res_type, _M.c.res_id == res_id)
        ).scalar(),
    )


def upstream_ids(connection: Connection, res_type: str, ids: Sequence[str]) -> dict[str, str]:
    """``upstream_id`` of many resources of one type (those mapped)."""
    rows = connection.execute(
        select(_M.c.res_id, _M.c.upstream_id).where(_M.c.res_type == res_type, _M.c.res_id.in_(ids))
    ).all()
    return {str(res_id): str(upstream) for res_id, upstream in rows}


def mapped_count(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(_M)).scalar_one())


def id_map(connection: Connection) -> dict[tuple[str, str], str]:
    """Every mapped id (for status pages and tests)."""
    rows = connection.execute(select(_M.c.res_type, _M.c.res_id, _M.c.upstream_id)).all()
    return {(row.res_type, row.res_id): row.upstream_id for row in rows}
