"""Sending a fuzz ``Call`` and judging the answer: no 5xx, 4xx as OperationOutcome, no writes.

Shared by tests/fuzz and bench/fuzz.py.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient

from server.storage.schema import metadata
from tests.fuzz.strategies import Call, seeds

# What a write touches: every version gets a row, the current row its version id and flag.
_COUNTED = [name for name in metadata.tables if name not in ("search_param_state",)]


def snapshot(engine: sa.Engine) -> tuple[int, ...]:
    """Row counts of the stored tables plus a checksum of the current versions."""
    with engine.connect() as connection:
        counts = [
            connection.execute(
                sa.select(sa.func.count()).select_from(metadata.tables[name])
            ).scalar_one()
            for name in _COUNTED
        ]
        resource = metadata.tables["resource"]
        versions = connection.execute(
            sa.select(sa.func.coalesce(sa.func.sum(resource.c.version_id), 0))
        ).scalar_one()
    return (*counts, int(versions))


def send(client: FlaskClient, call: Call) -> Any:
    return client.open(
        call.path,
        method=call.method,
        query_string=call.query,
        data=call.body,
        headers=call.headers,
    )


def problems(
    call: Call, response: Any, before: tuple[int, ...], after: tuple[int, ...]
) -> list[str]:
    """What is wrong with the answer to ``call`` (empty when nothing is)."""
    found = []
    status = response.status_code
    if status >= 500:
        found.append(f"{status} answer")
    if 400 <= status < 600:
        try:
            body = json.loads(response.get_data())
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
            found.append(
                f"{status} answer is not an OperationOutcome: {response.get_data()[:200]!r}"
            )
        if call.atomic and before != after:
            found.append(f"{status} answer but the store changed: {before} -> {after}")
    return found


def describe(call: Call, response: Any) -> str:
    body = (call.body or b"")[:600]
    return (
        f"{call.method} {call.path}?{call.query} [{call.endpoint}] -> {response.status_code}\n"
        f"request: {body!r}\nresponse: {response.get_data()[:600]!r}"
    )


def load_seeds(client: FlaskClient) -> None:
    """The seed resources stored, so that updates, patches and searches meet real data."""
    for resource in seeds():
        response = client.put(
            f"/fhir/{resource['resourceType']}/{resource['id']}",
            data=json.dumps(resource),
            headers={"Content-Type": "application/fhir+json"},
        )
        assert response.status_code in (200, 201), response.get_data()
