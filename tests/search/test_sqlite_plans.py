"""Query plans SQLite must get for searches to stay fast at a million Observations
(bench/search.py, 2026-12-05): found by the planner's own EXPLAIN QUERY PLAN."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import select

from server.config import Settings
from server.storage.db import create_db_engine
from server.storage.search.criteria import (
    IdMatch,
    Match,
    Query,
    ReferenceTest,
    TokenTest,
)
from server.storage.search.sql import R, condition_sql
from server.storage.search.store import _filters


def plan(sqlite_template, statement):
    engine = create_db_engine(Settings(database_url=f"sqlite:///{sqlite_template}"))
    compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as connection:
        rows = connection.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}")).all()
    engine.dispose()
    return " | ".join(row[-1] for row in rows)


def test_an_id_list_is_looked_up_by_the_primary_key(sqlite_template):
    """Ids read first (a small chain or _has set, _id): a boolean compared with 1 ("res_id IN
    (...) = 1") made SQLite scan every resource of the type (100-800 ms)."""
    r = R.alias("r")
    statement = select(r.c.res_id).where(
        r.c.res_type == "Observation",
        condition_sql("Observation", IdMatch(("obs-1", "obs-2")), r),
    )
    steps = plan(sqlite_template, statement)
    assert "res_id=?" in steps, steps


def test_only_the_smallest_set_is_listed_the_others_are_probed(sqlite_template):
    """subject=X&code=Y: listing every body weight to keep one child's took 90 ms."""
    query = Query(
        "Observation",
        (
            Match("token", "code", (TokenTest("29463-7", "http://loinc.org", True),)),
            Match("reference", "subject", (ReferenceTest("p1", "Patient"),)),
        ),
    )
    r = R.alias("r")
    steps = plan(sqlite_template, select(r.c.res_id).where(*_filters(query, r, "sqlite")))
    assert steps.count("LIST SUBQUERY") == 1 and "CORRELATED" in steps, steps
    assert steps.index("sp_reference") < steps.index("sp_token"), steps
