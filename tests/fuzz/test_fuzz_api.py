"""Property-based fuzzing of every endpoint (hypothesis), on SQLite and PostgreSQL.

Random and mutated resources, search strings, bundles, patches and history queries: no answer
is a 5xx, every 4xx is an OperationOutcome, and a rejected request changes no stored row.  The
examples are derandomized (CI reproducible) and no example database is kept; bench/fuzz.py
runs many more.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import strategies
from tests.fuzz.driving import describe, load_seeds, problems, send, snapshot

FUZZ = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture
def seeded(app: Flask, client: FlaskClient) -> FlaskClient:
    load_seeds(client)
    return client


def _check(app: Flask, client: FlaskClient, call: strategies.Call) -> None:
    engine = app.extensions["ilp"].engine
    before = snapshot(engine)
    response = send(client, call)
    found = problems(call, response, before, snapshot(engine))
    assert not found, "\n".join(found) + "\n" + describe(call, response)


@FUZZ
@given(call=strategies.calls())
def test_any_endpoint(app: Flask, seeded: FlaskClient, call: strategies.Call) -> None:
    _check(app, seeded, call)


@FUZZ
@given(rtype=st.sampled_from(strategies.TYPES), data=st.data())
def test_searches(app: Flask, seeded: FlaskClient, rtype: str, data: st.DataObject) -> None:
    query = data.draw(strategies.query_strings(rtype))
    _check(app, seeded, strategies.Call("search", "GET", f"/fhir/{rtype}", query))


@FUZZ
@given(bundle=strategies.bundles())
def test_bundles(app: Flask, seeded: FlaskClient, bundle: dict[str, Any]) -> None:
    call = strategies.Call(
        "bundle",
        "POST",
        "/fhir",
        "",
        strategies.dump(bundle),
        {"Content-Type": strategies.FHIR_JSON},
        atomic=bundle.get("type") != "batch",
    )
    _check(app, seeded, call)


@FUZZ
@given(rtype=st.sampled_from(strategies.TYPES), data=st.data())
def test_mutated_writes(app: Flask, seeded: FlaskClient, rtype: str, data: st.DataObject) -> None:
    resource = data.draw(strategies.mutated(rtype))
    method = data.draw(st.sampled_from(["POST", "PUT", "VALIDATE"]))
    path = f"/fhir/{rtype}"
    if method == "PUT":
        path += "/" + data.draw(strategies.ids)
    elif method == "VALIDATE":
        method, path = "POST", path + "/$validate"
    _check(app, seeded, strategies.json_call("write", method, path, resource))
