"""SearchParameters stored on the server: their reindex state, and scans for reindexing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, delete, func, insert, or_, select, update

from server.fhir.extract import Indexer
from server.storage.indexing import IndexBatch, remove_index
from server.storage.schema import Resource, SearchParamState

_R = cast(Table, Resource.__table__)
_S = cast(Table, SearchParamState.__table__)


@dataclass(frozen=True)
class StoredParam:
    res_id: str
    version_id: int
    content: dict[str, Any]
    status: str | None  # None: stored, never reindexed
    cursor: tuple[str, str] | None = None
    done: int = 0


def stored_params(connection: Connection) -> list[StoredParam]:
    """Every live SearchParameter resource, with its reindex state."""
    rows = connection.execute(
        select(_R.c.res_id, _R.c.version_id, _R.c.content, _S.c.status, _S.c.version_id.label("sv"))
        .add_columns(_S.c.cursor_type, _S.c.cursor_id, _S.c.done)
        .select_from(_R.outerjoin(_S, _S.c.res_id == _R.c.res_id))
        .where(_R.c.res_type == "SearchParameter", _R.c.deleted.is_(False))
        .order_by(_R.c.res_id)
    )
    out = []
    for row in rows:
        # a parameter changed since it was indexed counts as never indexed
        status = row.status if row.sv == row.version_id else None
        cursor = (row.cursor_type, row.cursor_id) if status and row.cursor_type else None
        done = row.done if status else 0
        out.append(StoredParam(row.res_id, row.version_id, row.content, status, cursor, done))
    return out


def generation(connection: Connection) -> tuple[Any, ...]:
    """Changes whenever a parameter's state changes: workers reload their definitions then."""
    row = connection.execute(select(func.count(), func.max(_S.c.updated_at))).one()
    return tuple(row)


def set_state(
    connection: Connection,
    param: StoredParam,
    status: str,
    cursor: tuple[str, str] | None = None,
    done: int = 0,
) -> None:
    values = {
        "version_id": param.version_id,
        "status": status,
        "cursor_type": cursor[0] if cursor else None,
        "cursor_id": cursor[1] if cursor else None,
        "done": done,
        "updated_at": datetime.now(UTC),
    }
    updated = connection.execute(update(_S).where(_S.c.res_id == param.res_id).values(**values))
    if updated.rowcount == 0:
        connection.execute(insert(_S).values(res_id=param.res_id, **values))


def forget(connection: Connection, res_ids: Sequence[str]) -> None:
    connection.execute(delete(_S).where(_S.c.res_id.in_(res_ids)))


def count_resources(connection: Connection, types: Sequence[str]) -> int:
    query = select(func.count()).where(_R.c.res_type.in_(types), _R.c.deleted.is_(False))
    return int(connection.execute(query).scalar_one())


def reindex_batch(
    connection: Connection,
    indexer: Indexer,
    types: Sequence[str],
    after: tuple[str, str] | None,
    limit: int,
) -> tuple[int, tuple[str, str] | None]:
    """Rewrite the index rows of the next ``limit`` resources after ``after``, in key order.

    Returns how many were rewritten and the new cursor (None when the scan is done).
    """
    query = select(_R.c.res_type, _R.c.res_id, _R.c.content).where(
        _R.c.res_type.in_(types), _R.c.deleted.is_(False)
    )
    if after is not None:
        query = query.where(
            or_(
                _R.c.res_type > after[0],
                and_(_R.c.res_type == after[0], _R.c.res_id > after[1]),
            )
        )
    rows = connection.execute(query.order_by(_R.c.res_type, _R.c.res_id).limit(limit)).all()
    batch = IndexBatch()
    for row in rows:
        remove_index(connection, row.res_type, row.res_id)
        batch.add(row.res_type, row.res_id, indexer.extract(row.res_type, row.content))
    batch.flush(connection)
    if len(rows) < limit:
        return len(rows), None
    return len(rows), (rows[-1].res_type, rows[-1].res_id)
