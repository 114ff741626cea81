"""Dashboard page times on a demo district (issue 9): server time per page, warm and after writes.

A fresh database (``--db sqlite`` or ``postgresql``) gets the demo district of ``--kecamatan`` x 8
desa with at least ``--observations`` measurement Observations over 12 months, loaded through the
write path (so the indicator facts and the derived z-scores are made as in production).  With
``--children`` the write path loads the health network and one household per desa, and the facts
of that many children (and their mothers and neighbours) go in bulk (bench/indicator_facts.py):
the scale of a whole district, which the write path would take hours to load here.  Every month
is then counted as ``ilp indicators count`` does after a load (timed).  Then, in process (the
Flask test client: the time is the server's, no network), each page is timed: the overview, a
desa page, a Posyandu's children at risk, the overview CSV, the MeasureReports; and the overview
after each of a few writes: a new weighing (its desa's month recounted) and a newly registered
child (the denominators changed in place).  Prints the figures and rewrites its subsection of
docs/benchmarks.md (``--no-docs`` to skip).
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import indicator_facts  # noqa: E402
from crud import LABELS, admin, machine, write_subsection  # noqa: E402

from server import create_app  # noqa: E402
from server.config import Settings  # noqa: E402
from server.demo.district import DemoSize  # noqa: E402
from server.services import demo, indicators  # noqa: E402
from server.storage.db import analyze, create_db_engine  # noqa: E402
from server.storage.migrate import upgrade  # noqa: E402

SECTION = "## Dashboard (bench/dashboard.py)"
INTRO = "Server time of the /dashboard pages on a demo district (issue 9, docs/indicators.md)."
MONTH = "2026-10"


def timed(client, path: str, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kecamatan", type=int, default=4)
    parser.add_argument("--observations", type=int, default=50_000)
    parser.add_argument("--children", type=int, help="bulk facts of this many children")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    database = f"ilp_dashboard_{uuid.uuid4().hex[:10]}"
    if args.db == "postgresql":
        admin(args.pg_url, f'CREATE DATABASE "{database}"')
        url = f"{args.pg_url}/{database}".replace("postgresql://", "postgresql+psycopg://", 1)
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='ilp-dashboard-bench-')}/bench.sqlite3"
    try:
        body, title = run(args, url)
    finally:
        if args.db == "postgresql":
            admin(args.pg_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    print(body)
    if not args.no_docs:
        write_subsection(SECTION, INTRO, f"### {title}", body)
    return 0


def run(args: argparse.Namespace, url: str) -> tuple[str, str]:
    settings = Settings(database_url=url, auth=False, rate_limit=0, log_level="WARNING")
    engine = create_db_engine(settings)
    upgrade(engine)
    app = create_app(settings)
    context = app.extensions["ilp"]
    if args.children:
        size = DemoSize(args.kecamatan, 8, 1, 12)
    else:
        size = DemoSize(args.kecamatan, 8, 0, 12, observations=args.observations)
    started = time.perf_counter()
    loaded = demo.load_demo(context, size)
    load_seconds = time.perf_counter() - started
    if args.children:
        with engine.connect() as connection:
            query = sa.text("SELECT village, org_id FROM ind_facility WHERE kind = 'posyandu'")
            cells = [(row.village, row.org_id) for row in connection.execute(query)]
        started = time.perf_counter()
        months = indicators.month_range(MONTH, 12)
        bulk = indicator_facts.fill(engine, sorted(cells), months, args.children)
        bulk_seconds = time.perf_counter() - started
    analyze(engine)
    started = time.perf_counter()
    counted = indicators.count_all(context)
    count_seconds = time.perf_counter() - started
    with engine.connect() as connection:
        count = connection.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM resource WHERE res_type = 'Observation'),"
                " (SELECT count(*) FROM resource WHERE res_id LIKE 'zscore-%'),"
                " (SELECT count(*) FROM ind_person WHERE birth_date > '2021-10-31'),"
                " (SELECT count(*) FROM ind_area WHERE length(code) = 10),"
                " (SELECT posyandu FROM ind_person WHERE posyandu IS NOT NULL"
                "  ORDER BY patient_id LIMIT 1),"
                " (SELECT count(*) FROM ind_event)"
            )
        ).one()
    observations, derived, children, desa, posyandu, facts = count
    client = app.test_client()
    overview = f"/dashboard/?month={MONTH}"
    figures = {"overview": timed(client, overview, args.rounds)}
    village = "".join(ch for ch in posyandu.split("-")[1] if ch.isdigit())
    figures["desa page"] = timed(client, f"/dashboard/desa/{village}?month={MONTH}", args.rounds)
    figures["children at risk"] = timed(
        client, f"/dashboard/posyandu/{posyandu}?month={MONTH}", args.rounds
    )
    figures["overview CSV"] = timed(
        client, f"/dashboard/export/overview.csv?month={MONTH}", args.rounds
    )
    figures["MeasureReport (all 16, district)"] = timed(
        client, f"/fhir/MeasureReport?period={MONTH}", args.rounds
    )
    weighing, child = stored_examples(engine, client)
    figures["overview after a new weighing (its desa's month recounted)"] = after_writes(
        client, "Observation", weighing, overview
    )
    figures["overview after a child is registered (denominators changed in place)"] = after_writes(
        client, "Patient", child, overview
    )

    command = f"--kecamatan {args.kecamatan} --observations {args.observations}"
    data = (
        f"{loaded.written:,} resources written in {load_seconds:,.0f} s "
        f"({loaded.written / load_seconds:,.0f}/s, indicator facts and z-score derivation "
        f"included); {observations:,} Observations of which {derived:,} derived z-scores"
    )
    title = f"{args.observations:,} Observations"
    if args.children:
        command = f"--kecamatan {args.kecamatan} --children {args.children}"
        data = (
            f"health network and one household per desa through the write path "
            f"({loaded.written:,} resources); then in bulk in {bulk_seconds:,.0f} s "
            f"(bench/indicator_facts.py) the facts of {bulk.children:,} children, "
            f"{bulk.women:,} pregnant women ({bulk.visits:,} antenatal visits) and "
            f"{bulk.adults:,} adults: {bulk.measurements:,} measurement Observations and "
            f"{bulk.derived:,} derived z-scores, {facts:,} fact rows"
        )
        title = f"{args.children:,} children, {bulk.measurements:,} Observations (facts in bulk)"
    label = LABELS[engine.dialect.name]
    lines = [
        f"- Run: {datetime.date.today().isoformat()}, {machine()}; command: "
        f"`.venv/bin/python bench/dashboard.py {command} --db {args.db}`",
        f"- Data: {data}; {children:,} children under five; {desa} desa; {label}.",
        f"- Counting every month after the load (`ilp indicators count`): {len(counted)} months "
        f"in {count_seconds:,.1f} s.",
        "",
        "| Page | Median ms | Max ms | Rounds |",
        "|---|---|---|---|",
    ]
    for name, times in figures.items():
        lines.append(
            f"| {name} | {statistics.median(times):,.1f} | {max(times):,.1f} | {len(times)} |"
        )
    return "\n".join(lines) + "\n", f"{title}, {label}"


def stored_examples(engine: sa.Engine, client) -> tuple[dict, dict]:
    """A weighing of this month and a child's Patient, as stored (not bulk facts), to copy."""
    with engine.connect() as connection:
        weighing_id, child_id = connection.execute(
            sa.text(
                "SELECT res_id, patient_id FROM ind_event WHERE kind = 'weight'"
                " AND month = :month AND res_id NOT LIKE :bulk ORDER BY res_id LIMIT 1"
            ),
            {"month": MONTH, "bulk": f"{indicator_facts.PREFIX}%"},
        ).one()
    weighing = client.get(f"/fhir/Observation/{weighing_id}").get_json()
    child = client.get(f"/fhir/Patient/{child_id}").get_json()
    for resource in (weighing, child):
        resource.pop("id")
        resource.pop("meta")
    weighing.pop("identifier", None)
    return weighing, child


def after_writes(client, resource_type: str, resource: dict, page: str) -> list[float]:
    """The page's time after each of five new copies of ``resource`` (a Patient gets NIKs of
    its own)."""
    times = []
    for copy in range(5):
        for identifier in resource.get("identifier", []) if resource_type == "Patient" else []:
            identifier["value"] = f"{identifier['value'][:-4]}{9000 + copy}"
        posted = client.post(
            f"/fhir/{resource_type}",
            data=json.dumps(resource),
            content_type="application/fhir+json",
        )
        assert posted.status_code == 201, posted.get_json()
        times += timed(client, page, 1)
    return times


if __name__ == "__main__":
    sys.exit(main())
