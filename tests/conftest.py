"""Shared fixtures: settings and apps on SQLite and on PostgreSQL.

Every test that asks for ``db_url`` (directly or through ``app``/``client``) runs
twice, once per database.  PostgreSQL gets a fresh database per test run; when
it is unreachable the tests fail loudly rather than skip.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from server import create_app
from server.config import Settings
from server.storage import migrate
from server.storage.db import create_db_engine
from server.storage.schema import metadata

POSTGRES_ADMIN_URL = os.environ.get(
    "ILP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BASE_URL = "http://testserver/fhir"
ROOT = Path(__file__).resolve().parent.parent
PACKAGE_CACHE = ROOT / ".cache" / "fhir"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A migrated SQLite file that each test copies (migrating per test is slow)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    engine = create_db_engine(Settings(database_url=f"sqlite:///{path}"))
    migrate.upgrade(engine)
    engine.dispose()
    return path


@contextlib.contextmanager
def fresh_postgres_database(prefix="ilp_test", *, migrated=True):
    """Create a PostgreSQL database (migrated unless told not), yield its URL, drop it after.

    Fails the test (never skips) when PostgreSQL cannot be reached.
    """
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL is required and unreachable at {POSTGRES_ADMIN_URL}: {exc}")
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        if migrated:
            engine = create_db_engine(Settings(database_url=url))
            migrate.upgrade(engine)
            engine.dispose()
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh, migrated PostgreSQL database for this run, dropped at the end."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A clean, migrated database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "ilp.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_url")
    yield url
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"TRUNCATE {', '.join(metadata.tables)} RESTART IDENTITY")
    engine.dispose()


# Most tests write minimal resources and the official examples, which are not ILP data: profile
# enforcement is off unless a test asks for it (tests/api/test_profile_enforcement.py).
NO_PROFILE_ENFORCEMENT = {"enforce_profiles": "", "enforce_claimed_profiles": False}


# Authentication, the audit trail and rate limits have their own tests (tests/security); the
# rest of the suite talks to the API as a trusted local caller does with ILP_AUTH=off.
NO_SECURITY = {"auth": False, "rate_limit": 0}


@pytest.fixture
def settings(db_url):
    return Settings(database_url=db_url, base_url=BASE_URL, **NO_PROFILE_ENFORCEMENT, **NO_SECURITY)


@pytest.fixture
def ilp_settings(settings):
    """The test settings with profile enforcement as it is by default."""
    defaults = Settings()
    return dataclasses.replace(
        settings,
        enforce_profiles=defaults.enforce_profiles,
        enforce_claimed_profiles=defaults.enforce_claimed_profiles,
    )


@pytest.fixture
def ilp_client(ilp_settings):
    """A client of a server that enforces the ILP profiles (the default settings)."""
    application = create_app(ilp_settings)
    application.config["TESTING"] = True
    yield application.test_client()
    application.extensions["ilp"].engine.dispose()


@pytest.fixture
def app(settings):
    application = create_app(settings)
    application.config["TESTING"] = True
    yield application
    application.extensions["ilp"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(autouse=True)
def _reset_environment(monkeypatch):
    """No test may depend on, or leak, ILP_* variables."""
    for name in list(os.environ):
        if name.startswith("ILP_") and name != "ILP_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
