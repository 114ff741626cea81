"""Loading the demo district through the service layer, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import pytest
import sqlalchemy as sa

from server.cli import main
from server.demo import codes
from server.demo.district import DemoSize, generate
from server.services import demo, resources
from server.services.context import ServiceContext
from server.storage.db import create_db_engine

TINY = DemoSize(kecamatan=1, desa_per_kecamatan=2, households_per_desa=2, months=2)


@pytest.fixture
def context(settings):
    # counts what the generator made; tests/indicators covers the derived z-scores
    settings = dataclasses.replace(settings, derive_growth=False)
    engine = create_db_engine(settings)
    yield ServiceContext(settings, engine)
    engine.dispose()


def stored_counts(engine):
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT res_type, count(*) FROM resource GROUP BY res_type")
        ).all()
        versions = connection.execute(sa.text("SELECT count(*) FROM resource_version")).scalar()
    return dict(rows), versions


def test_load_stores_every_resource_and_a_second_load_changes_nothing(context):
    generated = list(generate(TINY))
    expected = Counter(r["resourceType"] for r in generated)
    progress = []

    first = demo.load_demo(context, TINY, batch_size=40, on_progress=progress.append)

    assert (first.written, first.unchanged) == (len(generated), 0)
    assert first.written_by_type == expected
    assert len(progress) == math.ceil(len(generated) / 40)
    assert progress[-1].processed == len(generated)
    assert stored_counts(context.engine) == (expected, len(generated))

    second = demo.load_demo(context, TINY)

    assert (second.written, second.unchanged) == (0, len(generated))
    assert stored_counts(context.engine) == (expected, len(generated))


def test_loaded_patients_are_found_by_nik(context):
    demo.load_demo(context, TINY)
    patient = next(r for r in generate(TINY) if r["resourceType"] == "Patient")
    nik = patient["identifier"][0]["value"]
    with context.unit_of_work() as uow:
        found = resources.matching_ids(uow, "Patient", [("identifier", f"{codes.NIK}|{nik}")])
        stored = resources.read(uow, "Patient", patient["id"])
    assert found == [patient["id"]]
    assert stored.content["birthDate"] == patient["birthDate"]


def test_validation_on_load_accepts_the_district(context):
    report = demo.load_demo(context, TINY, validate=True)
    assert report.written == sum(1 for _ in generate(TINY))


def test_cli_loads_and_reports(db_url, monkeypatch, capsys):
    monkeypatch.setenv("ILP_DATABASE_URL", db_url)
    assert main(["demo", "load", "--observations", "50"]) == 0
    first = capsys.readouterr().out
    assert main(["demo", "load", "--observations", "50"]) == 0
    second = capsys.readouterr().out
    assert "unchanged" in first and " 0 unchanged" in first and "Observation" in first
    assert " 0 written" in second


def test_cli_counts_the_indicators_after_a_load(db_url, monkeypatch, capsys):
    monkeypatch.setenv("ILP_DATABASE_URL", db_url)
    assert main(["demo", "load", "--observations", "50"]) == 0
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        counted = connection.execute(sa.text("SELECT month FROM ind_month")).scalars().all()
        events = connection.execute(sa.text("SELECT DISTINCT month FROM ind_event")).all()
    engine.dispose()
    assert len(counted) == len(events) > 0  # the dashboard's first page counts nothing
    capsys.readouterr()
    assert main(["indicators", "count"]) == 0
    assert capsys.readouterr().out.startswith("0 months counted")
