"""UnitOfWork: one database transaction per request, bundle or batch of work."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine

from server.fhir.extract import Indexer
from server.fhir.searchparams import SearchParams
from server.storage.db import hold_lock
from server.storage.repository import ResourceStore


class UnitOfWork:
    """Opens a connection and a transaction; commits on success, rolls back on error.

    ``write=True`` declares intent to write, so SQLite takes its write lock at
    BEGIN (no upgrade deadlock between two writers).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        write: bool = False,
        indexer: Indexer | None = None,
        search_params: SearchParams | None = None,
        outbox_types: frozenset[str] = frozenset(),
    ) -> None:
        self._engine = engine
        self._write = write
        self.indexer = indexer
        # what searches may use; a parameter still being reindexed is indexed, not searched
        self.search_params = search_params or (indexer.params if indexer else None)
        self._outbox_types = outbox_types
        self._connection: Connection | None = None
        # Set by the services, opaque here: who the work is done for (services/access.py), and
        # work to do last inside the transaction (the audit trail, services/audit.py).
        self.caller: object | None = None
        self.before_commit: list[Callable[[UnitOfWork], None]] = []
        self.memo: dict[str, Any] = {}  # answers worth keeping for this transaction

    def __enter__(self) -> UnitOfWork:
        connection = self._engine.connect()
        if self._write:
            connection = connection.execution_options(ilp_write=True)
        connection.begin()
        self._connection = connection
        self.store = ResourceStore(connection, self.indexer, outbox_types=self._outbox_types)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        connection = self._connection
        assert connection is not None
        try:
            if exc_type is None:
                for step in self.before_commit:
                    step(self)
                self.store.flush()
                connection.commit()
            else:
                connection.rollback()
        finally:
            connection.close()
            self._connection = None

    @property
    def connection(self) -> Connection:
        """The transaction's connection, for storage functions beyond ResourceStore."""
        assert self._connection is not None, "the unit of work is not open"
        return self._connection

    def lock(self, key: str) -> None:
        """Hold a lock on ``key`` until this transaction ends (``db.hold_lock``)."""
        assert self._connection is not None
        hold_lock(self._connection, key)

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name
