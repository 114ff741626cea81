"""Official R4 examples loaded once per database for the search suites (read-only tests)."""

from __future__ import annotations

import pytest

from server import create_app
from server.config import Settings
from server.fhir.packages import R4_EXAMPLES, package_folder, resources_in
from tests.conftest import (
    BASE_URL,
    NO_PROFILE_ENFORCEMENT,
    NO_SECURITY,
    PACKAGE_CACHE,
    fresh_postgres_database,
)

# The types the search suite queries; their examples cross-reference each other.
TYPES = (
    "Patient",
    "Observation",
    "Encounter",
    "Organization",
    "Practitioner",
    "Location",
    "Condition",
    "Procedure",
    "ValueSet",
)


def official_examples():
    folder = package_folder(PACKAGE_CACHE, R4_EXAMPLES)
    for _path, resource in resources_in(folder):
        if resource["resourceType"] in TYPES and "id" in resource:
            yield resource


def _load(url):
    app = create_app(
        Settings(database_url=url, base_url=BASE_URL, **NO_PROFILE_ENFORCEMENT, **NO_SECURITY)
    )
    client = app.test_client()
    for resource in official_examples():
        response = client.put(
            f"/fhir/{resource['resourceType']}/{resource['id']}",
            json=resource,
            headers={"Content-Type": "application/fhir+json"},
        )
        assert response.status_code in (200, 201), (resource["id"], response.json)
    return app, client


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def examples_client(request, tmp_path_factory):
    """A client over a database holding the official examples of TYPES."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("search") / "examples.sqlite3"
        from server.storage import migrate
        from server.storage.db import create_db_engine

        engine = create_db_engine(Settings(database_url=f"sqlite:///{path}"))
        migrate.upgrade(engine)
        engine.dispose()
        app, client = _load(f"sqlite:///{path}")
        yield client
        app.extensions["ilp"].engine.dispose()
        return
    with fresh_postgres_database("ilp_search") as url:
        app, client = _load(url)
        yield client
        app.extensions["ilp"].engine.dispose()
