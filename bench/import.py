"""Importing the demo district's registers and sheets end to end, on SQLite and PostgreSQL.

The demo district (``ilp demo export``) is written once as the files a district keeps (the
facility and resident registers, the Posyandu sheets, the visit exports); then, for each
database, a fresh one is migrated and served by gunicorn on a free loopback port with the ILP
profiles enforced (the server's default), and every file is imported with ``ilp import FILE
--url`` in the order a district would (registers first): reading, checking and mapping each
row, then POSTing transactions of ``--batch-size`` rows.  The clock runs from the start of the
first ``ilp import`` to the end of the last, so it counts the mapping client, HTTP, profile
validation, indexing and commits.  A second import of the same files (every resource
unchanged) is timed too.  The script prints a table and rewrites its section of
docs/benchmarks.md.  Needs, for PostgreSQL, a server where --pg-url may create databases.
"""

from __future__ import annotations

import argparse
import datetime
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from crud import (
    BIN,
    LABELS,
    ROOT,
    Server,
    database_kinds,
    git_commit,
    machine,
    write_docs_section,
)

SECTION = "## Import of register files (bench/import.py)"
AIM_RESOURCES_PER_S = 1_000
# "{read} rows read, {rejected} rejected, {imported} imported; {c} created, {u} updated, ..."
SUMMARY = re.compile(
    r"([\d,]+) rows read, ([\d,]+) rejected, ([\d,]+) imported; ([\d,]+) created, "
    r"([\d,]+) updated, ([\d,]+) unchanged"
)


def export(folder: Path, args: argparse.Namespace) -> tuple[list[tuple[str, Path]], float]:
    """The demo files in import order, and the seconds the export took."""
    command = [str(BIN / "ilp"), "demo", "export", str(folder), "--preset", "bench"]
    command += ["--observations", str(args.observations)]
    started = time.monotonic()
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    seconds = time.monotonic() - started
    files = [re.match(r"(\S+): [\d,]+ rows \((\S+)\)", line) for line in run.stdout.splitlines()]
    return [(m[2], Path(m[1])) for m in files if m], seconds


def import_all(
    server: Server, files: list[tuple[str, Path]], args: argparse.Namespace
) -> dict[str, Any]:
    """``ilp import`` of every file into the served database: per format and in total."""
    per_format: dict[str, dict[str, int]] = {}
    started = time.monotonic()
    for name, path in files:
        command = [str(BIN / "ilp"), "import", str(path), "--format", name, "--url"]
        command += [server.env["ILP_BASE_URL"], "--batch-size", str(args.batch_size)]
        begun = time.monotonic()
        run = subprocess.run(command, env=server.env, cwd=ROOT, capture_output=True, text=True)
        found = SUMMARY.search(run.stdout)
        if run.returncode or not found:
            raise RuntimeError(
                f"ilp import {path.name} failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}"
            )
        numbers = [int(n.replace(",", "")) for n in found.groups()]
        per_format[name] = dict(zip(("rows", "rejected", "imported", "created", "updated",
                                     "unchanged"), numbers, strict=True))  # fmt: skip
        per_format[name]["seconds"] = time.monotonic() - begun
    seconds = time.monotonic() - started
    rows = sum(f["rows"] for f in per_format.values())
    resources = sum(f["created"] + f["updated"] + f["unchanged"] for f in per_format.values())
    return {"formats": per_format, "seconds": seconds, "rows": rows, "resources": resources}


def bench(kind: str, files: list[tuple[str, Path]], args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ilp-bench-") as tmp:
        server = Server(kind, Path(tmp), args)
        server.env.pop("ILP_ENFORCE_PROFILES", None)  # the server's default: ILP profiles on
        with server:
            print(f"{LABELS[kind]}: serving on {server.bind}; importing", flush=True)
            first = import_all(server, files, args)
            print(f"  first import: {_rates(first)}", flush=True)
            again = import_all(server, files, args)
            print(f"  second import: {_rates(again)}", flush=True)
            return {"first": first, "again": again, "rss": server.worker_rss_mib()}


def _rates(result: dict[str, Any]) -> str:
    seconds = result["seconds"]
    return (
        f"{result['rows']:,} rows, {result['resources']:,} resources in {seconds:.0f} s "
        f"({result['rows'] / seconds:,.0f} rows/s, "
        f"{result['resources'] / seconds:,.0f} resources/s)"
    )


def report(
    results: dict[str, dict[str, Any]], export_seconds: float, args: argparse.Namespace,
    command: str, commit: str,
) -> str:  # fmt: skip
    lines = [
        f"- Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- Command: `{command}`",
        f"- Machine: {machine()}",
        f"- Commit: {commit}",
        f"- Setup: the demo district of {args.observations:,} Observations written as register"
        f" and sheet files by `ilp demo export` ({export_seconds:.0f} s), then `ilp import FILE"
        f" --url` of each file in turn against gunicorn ({args.workers} sync workers) with the"
        f" ILP profiles enforced, transactions of {args.batch_size} rows; the importing client"
        " runs on the same cores as the server.",
        "",
        "| Database | Import | Rows | Resources | Seconds | Rows/s | Resources/s | Created "
        "| Updated | Unchanged |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for kind, res in results.items():
        for label, key in (("first", "first"), ("second (no change)", "again")):
            run = res[key]
            total = {k: sum(f[k] for f in run["formats"].values())
                     for k in ("created", "updated", "unchanged")}  # fmt: skip
            lines.append(
                f"| {LABELS[kind]} | {label} | {run['rows']:,} | {run['resources']:,} "
                f"| {run['seconds']:.0f} | {run['rows'] / run['seconds']:,.0f} "
                f"| {run['resources'] / run['seconds']:,.0f} | {total['created']:,} "
                f"| {total['updated']:,} | {total['unchanged']:,} |"
            )
    lines += ["", "Per format, first import:", "",
              "| Database | Format | Rows | Resources | Seconds | Resources/s |",
              "|---|---|--:|--:|--:|--:|"]  # fmt: skip
    for kind, res in results.items():
        for name, f in res["first"]["formats"].items():
            resources = f["created"] + f["updated"] + f["unchanged"]
            lines.append(
                f"| {LABELS[kind]} | {name} | {f['rows']:,} | {resources:,} | {f['seconds']:.1f} "
                f"| {resources / f['seconds']:,.0f} |"
            )
    lines.append("")
    for kind, res in results.items():
        rate = res["first"]["resources"] / res["first"]["seconds"]
        met = "met" if rate >= AIM_RESOURCES_PER_S else "NOT met"
        rss = ", ".join(f"{m:.0f}" for m in res["rss"])
        lines.append(
            f"- {LABELS[kind]}: aim of at least {AIM_RESOURCES_PER_S:,} resources/s end to end:"
            f" {met} ({rate:,.0f}/s); worker RSS after the run: {rss} MiB"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--observations",
        type=int,
        default=1_000_000,
        metavar="N",
        help="size of the demo district (the issue's large demo: 1,000,000)",
    )
    parser.add_argument("--batch-size", type=int, default=100, metavar="ROWS")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs")
    args = parser.parse_args()  # fmt: skip
    kinds = database_kinds("bench/import.py", args.db, args.pg_url, wrk=False)
    commit = git_commit()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up as on Ctrl-C
    with tempfile.TemporaryDirectory(prefix="ilp-demo-files-") as folder:
        print(f"exporting the demo district of {args.observations:,} Observations", flush=True)
        files, export_seconds = export(Path(folder), args)
        try:
            results = {kind: bench(kind, files, args) for kind in kinds}
        except KeyboardInterrupt:
            sys.exit("interrupted; gunicorn stopped and the benchmark database dropped")
    command = " ".join([".venv/bin/python", "bench/import.py", *sys.argv[1:]])
    body = report(results, export_seconds, args, command, commit)
    print("\n" + body)
    if not args.no_docs:
        write_docs_section(SECTION, body, keep="### Findings")
        print("updated docs/benchmarks.md")


if __name__ == "__main__":
    main()
