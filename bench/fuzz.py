"""A longer fuzz run of the FHIR API than tests/fuzz: many examples on a fresh SQLite database.

The same strategies and checks as tests/fuzz (no 5xx, every 4xx an OperationOutcome, a rejected
request changes no stored row), but failures are collected instead of stopping the run.  Prints
the date, the machine, the cases run by endpoint and status class, and each distinct failure.

    .venv/bin/python bench/fuzz.py --examples 2000 [--seed 1] [--random] [--docs]

``--docs`` writes the figures to the ``## Fuzz`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402

from server import create_app  # noqa: E402
from server.config import Settings  # noqa: E402
from server.storage import migrate  # noqa: E402
from server.storage.db import create_db_engine  # noqa: E402
from tests.fuzz import strategies  # noqa: E402
from tests.fuzz.driving import describe, load_seeds, problems, send, snapshot  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1, help="hypothesis seed (reproducible)")
    parser.add_argument("--random", action="store_true", help="a fresh random seed instead")
    parser.add_argument("--docs", action="store_true", help="record in docs/benchmarks.md")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # faults are counted here, not logged

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/fuzz.sqlite3"
        engine = create_db_engine(Settings(database_url=url))
        migrate.upgrade(engine)
        engine.dispose()
        app = create_app(
            Settings(
                database_url=url,
                base_url="http://testserver/fhir",
                enforce_profiles="",
                enforce_claimed_profiles=False,
                auth=False,  # tests/fuzz/test_fuzz_auth.py fuzzes tokens and bound clients
                rate_limit=0,
            )
        )
        client = app.test_client()
        load_seeds(client)
        engine = app.extensions["ilp"].engine

        cases: collections.Counter[tuple[str, str]] = collections.Counter()
        failures: dict[str, str] = {}

        @settings(
            max_examples=args.examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(call=strategies.calls())
        def run(call: strategies.Call) -> None:
            before = snapshot(engine)
            response = send(client, call)
            found = problems(call, response, before, snapshot(engine))
            cases[(call.endpoint, f"{response.status_code // 100}xx")] += 1
            for problem in found:
                key = f"{call.endpoint}: {problem[:80]}"
                failures.setdefault(key, problem + "\n" + describe(call, response))

        if not args.random:
            run = seed(args.seed)(run)
        started = time.perf_counter()
        run()
        elapsed = time.perf_counter() - started
        engine.dispose()

    lines = [
        f"bench/fuzz.py  {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}  "
        f"{platform.node()}  {platform.platform()}  {platform.processor() or platform.machine()}"
        f"  {os.cpu_count()} CPUs  Python {platform.python_version()}",
        f"{sum(cases.values())} cases in {elapsed:.1f} s (SQLite, "
        f"{'random seed' if args.random else f'seed {args.seed}'})",
        "",
    ]
    endpoints = sorted({endpoint for endpoint, _ in cases})
    classes = sorted({status for _, status in cases})
    lines.append(f"{'endpoint':<20}" + "".join(f"{c:>7}" for c in classes) + f"{'total':>8}")
    for endpoint in endpoints:
        row = [cases[(endpoint, c)] for c in classes]
        lines.append(f"{endpoint:<20}" + "".join(f"{n:>7}" for n in row) + f"{sum(row):>8}")
    lines.append(f"\n{len(failures)} distinct failures")
    print("\n".join(lines))
    for key, detail in failures.items():
        print(f"\n--- {key}\n{detail}")
    if args.docs:
        _record(lines, " ".join(sys.argv[1:]))
    return 1 if failures else 0


def _record(lines: list[str], arguments: str) -> None:
    """Replace the ``## Fuzz`` section of docs/benchmarks.md with this run."""
    docs = ROOT / "docs" / "benchmarks.md"
    text = docs.read_text()
    section = (
        "## Fuzz (bench/fuzz.py)\n\n"
        f"`.venv/bin/python bench/fuzz.py {arguments}`: hypothesis calls to every endpoint "
        "(random and mutated resources, searches, bundles, patches, headers); a failure is a 5xx, "
        "a 4xx that is not an OperationOutcome, or a rejected request that changed a stored "
        "row.\n\n```\n" + "\n".join(lines).strip() + "\n```\n"
    )
    start = text.find("## Fuzz (bench/fuzz.py)")
    if start == -1:
        text = text.rstrip() + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    docs.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
