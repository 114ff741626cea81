"""Migrations build exactly the schema the code declares, on both databases, and reverse."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from server.config import Settings
from server.storage import migrate
from server.storage.db import create_db_engine
from server.storage.schema import metadata
from tests.conftest import fresh_postgres_database


def test_migrated_schema_matches_declared_tables(db_url):
    engine = create_db_engine(Settings(database_url=db_url))
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    assert differences == []


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request, tmp_path):
    """An empty database of each kind (PostgreSQL-only statistics are migrated too)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/m.sqlite3"
        return
    with fresh_postgres_database("ilp_migrate", migrated=False) as url:
        yield url


def test_downgrade_and_upgrade_round_trip(empty_db_url):
    engine = create_db_engine(Settings(database_url=empty_db_url))
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert set(sa.inspect(engine).get_table_names()) == {"alembic_version"}
    migrate.upgrade(engine)
    migrate.upgrade(engine)  # a second upgrade is a no-op
    assert {"resource", "resource_version", "sp_token"} <= set(sa.inspect(engine).get_table_names())
    engine.dispose()
