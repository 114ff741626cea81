"""Two writers on one resource: the version guard lets exactly one win (both databases)."""

from __future__ import annotations

import threading

import pytest

from server.errors import PreconditionFailed, VersionConflict
from server.services import resources
from server.services.context import ServiceContext
from server.storage.db import create_db_engine
from tests.helpers import patient


@pytest.fixture
def context(settings):
    ctx = ServiceContext(settings, create_db_engine(settings))
    yield ctx
    ctx.engine.dispose()


def _create(context):
    with context.unit_of_work(write=True) as uow:
        return resources.create(uow, "Patient", patient()).stored.res_id


def test_concurrent_updates_with_same_if_match_let_one_win(context):
    rid = _create(context)
    first_written, release_first = threading.Event(), threading.Event()
    outcomes = {}

    def first():
        with context.unit_of_work(write=True) as uow:
            resources.update(uow, "Patient", rid, {**patient(family="A"), "id": rid}, if_match=1)
            first_written.set()
            release_first.wait(10)
        outcomes["first"] = "ok"

    def second():
        first_written.wait(10)
        try:
            with context.unit_of_work(write=True) as uow:
                resources.update(
                    uow, "Patient", rid, {**patient(family="B"), "id": rid}, if_match=1
                )
            outcomes["second"] = "ok"
        except (PreconditionFailed, VersionConflict) as exc:
            outcomes["second"] = type(exc).__name__

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_written.wait(10)
    # Give the second writer time to reach the lock before the first commits.
    threads[1].join(0.5)
    release_first.set()
    for thread in threads:
        thread.join(20)
    assert outcomes == {"first": "ok", "second": "PreconditionFailed"}
    with context.unit_of_work() as uow:
        stored = resources.read(uow, "Patient", rid)
    assert stored.version_id == 2 and stored.content["name"][0]["family"] == "A"


def test_concurrent_creates_on_same_id_store_one_version_each(context):
    errors = []

    def put(family):
        try:
            with context.unit_of_work(write=True) as uow:
                resources.update(
                    uow,
                    "Organization",
                    "pkm-1",
                    {"resourceType": "Organization", "id": "pkm-1", "name": family},
                )
        except VersionConflict as exc:
            errors.append(exc)

    threads = [threading.Thread(target=put, args=(f"Puskesmas {i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    with context.unit_of_work() as uow:
        stored = resources.read(uow, "Organization", "pkm-1")
        versions = uow.store.history("Organization", "pkm-1", since=None, before_seq=None, limit=50)
    assert [v.version_id for v in versions] == list(range(stored.version_id, 0, -1))
    assert stored.version_id + len(errors) == 6
