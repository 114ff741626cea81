"""Dashboard page times on a demo district (issue 9): server time per page, cold and warm.

A fresh SQLite database gets the demo district of ``--kecamatan`` x 8 desa with at least
``--observations`` measurement Observations over 12 months, loaded through the write path (so
the indicator facts and the derived z-scores are made as in production).  Then, in process
(the Flask test client: the time is the server's, no network), each page is timed: the first
overview after the load (every month of the trend counted from the facts), the warm overview,
a desa page, a Posyandu's children at risk, the overview CSV, a MeasureReport; and the
overview after one new weighing (one month counted again).  Prints the figures and rewrites
its subsection of docs/benchmarks.md (``--no-docs`` to skip).
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crud import machine, write_subsection  # noqa: E402

from server import create_app  # noqa: E402
from server.config import Settings  # noqa: E402
from server.demo.district import DemoSize  # noqa: E402
from server.services import demo  # noqa: E402
from server.storage.db import create_db_engine  # noqa: E402
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
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ilp-dashboard-bench-"))
    settings = Settings(
        database_url=f"sqlite:///{work}/bench.sqlite3",
        auth=False,
        rate_limit=0,
        log_level="WARNING",
    )
    engine = create_db_engine(settings)
    upgrade(engine)
    app = create_app(settings)
    context = app.extensions["ilp"]
    size = DemoSize(args.kecamatan, 8, 0, 12, observations=args.observations)
    started = time.perf_counter()
    loaded = demo.load_demo(context, size)
    load_seconds = time.perf_counter() - started
    with engine.connect() as connection:
        count = connection.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM resource WHERE res_type = 'Observation'),"
                " (SELECT count(*) FROM resource WHERE res_id LIKE 'zscore-%'),"
                " (SELECT count(*) FROM ind_person WHERE birth_date > '2021-10-31'),"
                " (SELECT count(*) FROM ind_area WHERE length(code) = 10),"
                " (SELECT posyandu FROM ind_person WHERE posyandu IS NOT NULL LIMIT 1)"
            )
        ).one()
    observations, derived, children, desa, posyandu = count
    client = app.test_client()
    first = f"/dashboard/?month={MONTH}"
    figures = {"first overview (12 months counted)": timed(client, first, 1)}
    figures["overview"] = timed(client, first, args.rounds)
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
    # one more weighing of a child: a copy of a stored one, a day later in the month
    with engine.connect() as connection:
        stored = connection.execute(
            sa.text(
                "SELECT res_id FROM ind_event WHERE kind = 'weight' AND month = :month LIMIT 1"
            ),
            {"month": MONTH},
        ).scalar_one()
    weighing = client.get(f"/fhir/Observation/{stored}").get_json()
    for key in ("id", "meta", "identifier"):
        weighing.pop(key, None)
    after_write = []
    for _ in range(5):
        posted = client.post(
            "/fhir/Observation", data=json.dumps(weighing), content_type="application/fhir+json"
        )
        assert posted.status_code == 201, posted.get_json()
        after_write += timed(client, first, 1)
    figures["overview after a write (the month counted again)"] = after_write

    lines = [
        f"- Run: {datetime.date.today().isoformat()}, {machine()}; command: "
        f"`.venv/bin/python bench/dashboard.py --kecamatan {args.kecamatan} --observations "
        f"{args.observations}`",
        f"- Data: {loaded.written:,} resources written in {load_seconds:,.0f} s "
        f"({loaded.written / load_seconds:,.0f}/s, indicator facts and z-score derivation "
        f"included); {observations:,} Observations of which {derived:,} derived z-scores; "
        f"{children:,} children under five; {desa} desa; SQLite.",
        "",
        "| Page | Median ms | Max ms | Rounds |",
        "|---|---|---|---|",
    ]
    for name, times in figures.items():
        lines.append(
            f"| {name} | {statistics.median(times):,.1f} | {max(times):,.1f} | {len(times)} |"
        )
    body = "\n".join(lines) + "\n"
    print(body)
    if not args.no_docs:
        write_subsection(SECTION, INTRO, f"### {args.observations:,} Observations", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
