"""Writing a resource's search index rows: one executemany per typed table.

Index rows always describe the current version: a write replaces them, a delete
removes them, inside the write's own transaction.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Connection, Table, delete, insert

from server.fhir.extract import IndexEntries
from server.storage.schema import INDEX_TABLES

_TABLES = {kind: cast(Table, model.__table__) for kind, model in INDEX_TABLES.items()}
# Value columns of each table, in the order IndexEntries rows carry them after (param, grp).
_SHARED = ("row_id", "res_type", "res_id", "param", "grp")
_COLUMNS = {
    kind: ["param", "grp", *(c.name for c in table.columns if c.name not in _SHARED)]
    for kind, table in _TABLES.items()
}


def remove_index(connection: Connection, res_type: str, res_id: str) -> None:
    for table in _TABLES.values():
        connection.execute(
            delete(table).where(table.c.res_type == res_type, table.c.res_id == res_id)
        )


def write_index(
    connection: Connection,
    res_type: str,
    res_id: str,
    entries: IndexEntries,
    *,
    replace: bool,
) -> None:
    """Store ``entries`` as the index rows of a resource (``replace`` drops older rows first)."""
    if replace:
        remove_index(connection, res_type, res_id)
    batch = IndexBatch()
    batch.add(res_type, res_id, entries)
    batch.flush(connection)


_PG_TYPES = {
    "STRING": "varchar",
    "SMALLINTEGER": "int2",
    "DATETIME": "timestamp",
    "FLOAT": "float8",
}
_UNNEST_COLUMNS = {kind: ["res_type", "res_id", *names] for kind, names in _COLUMNS.items()}
_UNNEST_SQL = {
    kind: (
        f"INSERT INTO {table.name} ({', '.join(_UNNEST_COLUMNS[kind])}) SELECT * FROM unnest("
        + ", ".join(
            f"%(c{i})s::{_PG_TYPES[type(table.c[name].type).__name__.upper()]}[]"
            for i, name in enumerate(_UNNEST_COLUMNS[kind])
        )
        + ")"
    )
    for kind, table in _TABLES.items()
}


class IndexBatch:
    """Index rows of several new resources, written with one executemany per table.

    A transaction of a hundred Observations then costs a handful of statements for its
    index rows instead of several per resource.
    """

    def __init__(self) -> None:
        self._rows: dict[str, list[dict[str, Any]]] = {kind: [] for kind in _TABLES}

    def add(self, res_type: str, res_id: str, entries: IndexEntries) -> None:
        for kind, pending in self._rows.items():
            rows: list[tuple[Any, ...]] = getattr(entries, kind)
            names = _COLUMNS[kind]
            pending.extend(
                {"res_type": res_type, "res_id": res_id, **dict(zip(names, row, strict=True))}
                for row in set(rows)
            )

    def flush(self, connection: Connection) -> None:
        postgresql = connection.dialect.name == "postgresql"
        for kind, pending in self._rows.items():
            if not pending:
                continue
            if postgresql:
                # psycopg's executemany sends one statement per row; unnest() of one array
                # per column inserts them all in one round trip, with a fixed statement text
                columns = _UNNEST_COLUMNS[kind]
                arrays = {f"c{i}": [row[name] for row in pending] for i, name in enumerate(columns)}
                connection.exec_driver_sql(_UNNEST_SQL[kind], arrays)
            else:
                connection.execute(insert(_TABLES[kind]), pending)  # sqlite3 loops in C
            self._rows[kind] = []
