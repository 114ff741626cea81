"""Ids read first (a small chain or _has set, _id) must reach the database as an indexed
lookup: on SQLite a boolean compared with 1 ("res_id IN (...) = 1") made it scan every resource
of the type, 100-800 ms at a million Observations (bench/search.py, 2026-12-05)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import select

from server.config import Settings
from server.storage.db import create_db_engine
from server.storage.search.criteria import IdMatch
from server.storage.search.sql import R, condition_sql


def test_an_id_list_is_looked_up_by_the_primary_key_on_sqlite(sqlite_template):
    engine = create_db_engine(Settings(database_url=f"sqlite:///{sqlite_template}"))
    r = R.alias("r")
    statement = select(r.c.res_id).where(
        r.c.res_type == "Observation",
        condition_sql("Observation", IdMatch(("obs-1", "obs-2")), r),
    )
    compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as connection:
        plan = connection.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}")).all()
    engine.dispose()
    steps = " | ".join(row[-1] for row in plan)
    assert "res_id=?" in steps, steps
