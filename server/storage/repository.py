"""ResourceStore: current rows, version rows, history pages; index rows kept in step.

Every write is guarded by the version counter: an update names the version it
replaces, and a concurrent writer that got there first makes it fail with
``StaleVersion`` rather than silently overwrite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from server.fhir.extract import Indexer
from server.storage.indexing import IndexBatch, remove_index, write_index
from server.storage.schema import Resource, ResourceVersion, SyncOutbox
from server.storage.scope import Binding, visible_organizations
from server.storage.search.store import SearchQueries

_R = cast(Table, Resource.__table__)
_V = cast(Table, ResourceVersion.__table__)
_O = cast(Table, SyncOutbox.__table__)
# Built once: statements that take their values as parameters reuse SQLAlchemy's compiled cache.
_INSERT_CURRENT = insert(_R)
_INSERT_VERSION = insert(_V)
_INSERT_OUTBOX = insert(_O)
_UPDATE_CURRENT = update(_R).where(
    _R.c.res_type == bindparam("w_type"),
    _R.c.res_id == bindparam("w_id"),
    _R.c.version_id == bindparam("w_version"),
)


class StaleVersion(Exception):
    """The current version is no longer the one the write was based on."""


class DuplicateResource(Exception):
    """A resource with this type and id already exists (a concurrent create won)."""


@dataclass(frozen=True)
class StoredResource:
    res_type: str
    res_id: str
    version_id: int
    last_updated: datetime
    deleted: bool
    content: dict[str, Any] | None
    method: str = ""
    seq: int = 0
    content_hash: str | None = None
    org_scope: str | None = None  # the Organization it belongs to (docs/security.md)


@dataclass(frozen=True)
class NewVersion:
    """What a write stores: the body and its bookkeeping."""

    res_type: str
    res_id: str
    version_id: int
    last_updated: datetime
    method: str
    content: dict[str, Any] | None
    content_hash: str | None
    org_scope: str | None = None

    @property
    def deleted(self) -> bool:
        return self.content is None


def _ordered(content: dict[str, Any] | None) -> dict[str, Any] | None:
    """resourceType, id and meta first: JSONB (PostgreSQL) does not keep key order."""
    if not content or next(iter(content)) == "resourceType":
        return content
    head: dict[str, Any] = {k: content[k] for k in ("resourceType", "id", "meta") if k in content}
    head.update(content)
    return head


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class ResourceStore(SearchQueries):
    """Queries and writes over one connection, inside the caller's transaction."""

    def __init__(
        self,
        connection: Connection,
        indexer: Indexer | None = None,
        *,
        outbox_types: frozenset[str] = frozenset(),
    ) -> None:
        self._c = connection
        self._indexer = indexer
        # versions of these types are queued for ``ilp sync`` in the same transaction
        self._outbox_types = outbox_types
        self._pending = IndexBatch()
        self._versions: list[dict[str, Any]] = []  # version rows not yet written

    def _index(self, new: NewVersion, *, replace: bool) -> None:
        if not replace:  # a new resource: its rows wait for the next flush
            if new.content is not None and self._indexer is not None:
                self._pending.add(
                    new.res_type, new.res_id, self._indexer.extract(new.res_type, new.content)
                )
            return
        self.flush()  # rows of this resource may still be pending
        if new.content is None:
            remove_index(self._c, new.res_type, new.res_id)
        elif self._indexer is not None:
            entries = self._indexer.extract(new.res_type, new.content)
            write_index(self._c, new.res_type, new.res_id, entries, replace=True)

    def flush(self) -> None:
        """Write pending version and index rows; reads of them and the commit call this first."""
        if self._versions:
            self._c.execute(_INSERT_VERSION, self._versions)  # one pipelined executemany
            queued = [_outbox_row(v) for v in self._versions if v["res_type"] in self._outbox_types]
            if queued:
                self._c.execute(_INSERT_OUTBOX, queued)
            self._versions = []
        self._pending.flush(self._c)

    def current(
        self, res_type: str, res_id: str, *, for_update: bool = False
    ) -> StoredResource | None:
        query = select(
            _R.c.version_id,
            _R.c.last_updated,
            _R.c.deleted,
            _R.c.content,
            _R.c.content_hash,
            _R.c.org_scope,
        ).where(_R.c.res_type == res_type, _R.c.res_id == res_id)
        if for_update and self._c.dialect.name == "postgresql":
            query = query.with_for_update()
        row = self._c.execute(query).first()
        if row is None:
            return None
        return StoredResource(
            res_type,
            res_id,
            row.version_id,
            _utc(row.last_updated),
            row.deleted,
            _ordered(row.content),
            content_hash=row.content_hash,
            org_scope=row.org_scope,
        )

    def version(self, res_type: str, res_id: str, version_id: int) -> StoredResource | None:
        self.flush()
        row = self._c.execute(
            select(_V).where(
                _V.c.res_type == res_type, _V.c.res_id == res_id, _V.c.version_id == version_id
            )
        ).first()
        return _from_version_row(row) if row is not None else None

    def insert(self, new: NewVersion) -> None:
        """Store the first version of a resource; DuplicateResource if it exists."""
        # No savepoint: a duplicate aborts the whole unit of work, which the caller wants.
        try:
            self._c.execute(_INSERT_CURRENT, _current_values(new))
        except IntegrityError:
            raise DuplicateResource(f"{new.res_type}/{new.res_id}") from None
        self._append_version(new)
        self._index(new, replace=False)

    def replace(self, new: NewVersion, expected_version: int) -> None:
        """Store a later version; StaleVersion if ``expected_version`` is no longer current."""
        result = self._c.execute(
            _UPDATE_CURRENT,
            {
                **_current_values(new),
                "w_type": new.res_type,
                "w_id": new.res_id,
                "w_version": expected_version,
            },
        )
        if result.rowcount != 1:
            raise StaleVersion(f"{new.res_type}/{new.res_id}")
        self._append_version(new)
        self._index(new, replace=True)

    def _append_version(self, new: NewVersion) -> None:
        self._versions.append(
            {
                "res_type": new.res_type,
                "res_id": new.res_id,
                "version_id": new.version_id,
                "method": new.method,
                "last_updated": new.last_updated,
                "deleted": new.deleted,
                "content": new.content,
                "content_hash": new.content_hash,
            }
        )

    def many_current(
        self, res_type: str, ids: Sequence[str], binding: Binding | None = None
    ) -> list[StoredResource]:
        """Current rows of ``ids`` (in that order); with ``binding``, only those of the
        Organizations it covers."""
        query = select(_R).where(_R.c.res_type == res_type, _R.c.res_id.in_(ids))
        if binding is not None:
            query = query.where(_R.c.org_scope.in_(visible_organizations(binding)))
        rows = self._c.execute(query).all()
        found = {
            row.res_id: StoredResource(
                res_type,
                row.res_id,
                row.version_id,
                _utc(row.last_updated),
                row.deleted,
                _ordered(row.content),
                org_scope=row.org_scope,
            )
            for row in rows
        }
        return [found[i] for i in ids if i in found]

    def history(
        self,
        res_type: str | None,
        res_id: str | None,
        *,
        since: datetime | None,
        before_seq: int | None,
        limit: int,
        binding: Binding | None = None,
        types: Sequence[str] | None = None,
    ) -> list[StoredResource]:
        """Versions newest first, at most ``limit``, older than ``before_seq`` when given; with
        ``binding``, only of resources that now belong to an Organization it covers; with
        ``types``, only of those types."""
        self.flush()
        query = select(_V)
        if binding is not None:
            query = query.where(
                exists().where(
                    _R.c.res_type == _V.c.res_type,
                    _R.c.res_id == _V.c.res_id,
                    _R.c.org_scope.in_(visible_organizations(binding)),
                )
            )
        if types is not None:
            query = query.where(_V.c.res_type.in_(types))
        if res_type is not None:
            query = query.where(_V.c.res_type == res_type)
        if res_id is not None:
            query = query.where(_V.c.res_id == res_id)
        if since is not None:
            query = query.where(_V.c.last_updated >= since)
        if before_seq is not None:
            query = query.where(_V.c.seq < before_seq)
        rows = self._c.execute(query.order_by(_V.c.seq.desc()).limit(limit)).all()
        return [_from_version_row(row) for row in rows]

    def count_versions(self, res_type: str, res_id: str, since: datetime | None) -> int:
        self.flush()
        query = select(func.count()).where(_V.c.res_type == res_type, _V.c.res_id == res_id)
        if since is not None:
            query = query.where(_V.c.last_updated >= since)
        return int(self._c.execute(query).scalar_one())


def _current_values(new: NewVersion) -> dict[str, Any]:
    return {
        "res_type": new.res_type,
        "res_id": new.res_id,
        "version_id": new.version_id,
        "last_updated": new.last_updated,
        "deleted": new.deleted,
        "content": new.content,
        "content_hash": new.content_hash,
        "org_scope": new.org_scope,
    }


def _outbox_row(version: dict[str, Any]) -> dict[str, Any]:
    return {
        "res_type": version["res_type"],
        "res_id": version["res_id"],
        "version_id": version["version_id"],
        "state": "pending",
        "attempts": 0,
        "updated_at": version["last_updated"],
    }


def _from_version_row(row: Any) -> StoredResource:
    return StoredResource(
        row.res_type,
        row.res_id,
        row.version_id,
        _utc(row.last_updated),
        row.deleted,
        _ordered(row.content),
        row.method,
        row.seq,
    )
