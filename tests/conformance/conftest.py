"""A server per database for the whole conformance module (examples do not collide)."""

from __future__ import annotations

import shutil

import pytest

from server import create_app
from server.config import Settings
from tests.conftest import BASE_URL, NO_PROFILE_ENFORCEMENT, NO_SECURITY, fresh_postgres_database

# The official package holds bundles of 35 MB (Bundle-resources.json).
CONFORMANCE_MAX_BODY = 64 * 1024 * 1024


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def conformance_client(request, tmp_path_factory, sqlite_template):
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("conformance") / "ilp.sqlite3"
        shutil.copy(sqlite_template, path)
        yield from _client(f"sqlite:///{path}")
    else:
        with fresh_postgres_database("ilp_conformance") as url:
            yield from _client(url)


def _client(url):
    app = create_app(
        Settings(
            database_url=url,
            base_url=BASE_URL,
            max_body_bytes=CONFORMANCE_MAX_BODY,
            log_level="WARNING",
            **NO_PROFILE_ENFORCEMENT,
            **NO_SECURITY,
        )
    )
    yield app.test_client()
    app.extensions["ilp"].engine.dispose()
