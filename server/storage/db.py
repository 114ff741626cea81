"""Engine creation from Settings: SQLite pragmas, write transactions, fork safety.

SQLite: WAL, foreign keys, a busy timeout, and ``BEGIN IMMEDIATE`` for write
units of work so that two writers queue on the lock instead of failing when a
read transaction tries to upgrade.  PostgreSQL needs none of this.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from server.config import Settings
from server.errors import VersionConflict
from server.fhir.jsonio import dumps_text

SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_db_engine(settings: Settings) -> Engine:
    """A new engine for ``settings.database_url`` (SQLite parent folder created if missing)."""
    url = make_url(settings.database_url)
    options: dict[str, Any] = {
        "json_serializer": dumps_text,
        "json_deserializer": orjson.loads,
    }
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **options)
        _configure_sqlite(engine)
    else:
        # psycopg prepares a statement on its fifth run and PostgreSQL may then keep a generic
        # plan made while the tables were small (a scan of every row of a type per lookup);
        # custom plans are cheap for our short statements and always use the key.
        engine = create_engine(
            url,
            pool_pre_ping=True,
            pool_size=4,
            max_overflow=4,
            connect_args={"options": "-c plan_cache_mode=force_custom_plan"},
            **options,
        )
    # A pool inherited through fork() must not be shared with the parent.
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get("ilp_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


DEADLOCK_DETECTED = "40P01"


def hold_lock(connection: Connection, key: str, *, shared: bool = False) -> None:
    """Hold a lock on ``key`` until the transaction ends (PostgreSQL advisory lock; ``shared``
    holders exclude only the others).

    SQLite needs none: its write transactions (``ilp_write``) already run one at a time.
    """
    if connection.dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    try:
        connection.execute(
            text(f"SELECT {function}(:key)"),
            {"key": int.from_bytes(digest, "big", signed=True)},
        )
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != DEADLOCK_DETECTED:
            raise
        # two transactions took the same conditions in opposite orders
        raise VersionConflict("A concurrent transaction holds this condition; retry") from None


def analyze(engine: Engine) -> None:
    """Refresh the planner's statistics after a bulk load (SQLite never gathers them itself).

    Without them SQLite picks the wrong index for composite and ``_has`` joins (a
    2-second query became 73 ms after ANALYZE; docs/benchmarks.md).
    """
    with engine.begin() as connection:
        if is_sqlite(engine):
            connection.exec_driver_sql("PRAGMA analysis_limit=1000")
        connection.exec_driver_sql("ANALYZE")
