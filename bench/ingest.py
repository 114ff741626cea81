"""Transaction ingest throughput of ILP Gateway under gunicorn, on SQLite and PostgreSQL.

Three transaction Bundles, each POSTed to /fhir by ``wrk`` (8 connections) after a warm-up,
every request with a fresh NIK so that every resource is new:

- small: Blaze's small-transaction test, 1 Patient + 1 Observation linked by urn:uuid;
- posyandu: a Posyandu visit, Patient (ifNoneExist on the NIK) + Encounter + 10 Observations;
- bundle100: 100 entries, Patient + Encounter + 98 Observations.

Structural validation and search indexing are on, as in production.  Prints a table
(transactions/s, resources/s, latency, CPU, RSS) and rewrites its section of
docs/benchmarks.md.  ``--profile`` also samples the workers with py-spy (when installed)
and reports where their time goes.  Shares the server and CPU accounting of bench/crud.py.
Needs ``wrk`` (Debian: ``apt-get install wrk``) and, for PostgreSQL, a server where
--pg-url may create databases.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from crud import (
    BIN,
    LABELS,
    ROOT,
    Server,
    add_load_arguments,
    git_commit,
    machine,
    run_and_record,
)

DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Transaction ingest (bench/ingest.py)"
NIK = "https://fhir.kemkes.go.id/id/nik"
AIM = 2000  # resources/s on PostgreSQL
RUNS = itertools.count(100)  # numbers each wrk run, so that no NIK repeats

# Every request replaces @ID@ with a unique value (run, wrk thread and sequence number).
LUA = r"""
local parts = {}
local template = [==[@BODY@]==]
for piece in (template .. "@ID@"):gmatch("(.-)@ID@") do parts[#parts + 1] = piece end
wrk.method, wrk.headers["Content-Type"] = "POST", "application/fhir+json"
local n, seq, run = 0, 0, tonumber(os.getenv("BENCH_RUN"))
function setup(thread) n = n + 1; thread:set("tid", n) end
function request()
  seq = seq + 1  -- unique across runs and threads: 16 digits, like a NIK
  local id = string.format("%03d%02d%011d", run, tid, seq)
  return wrk.format(nil, nil, nil, table.concat(parts, id))
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status))
end
"""


def _entry(full_url: str, resource: dict[str, Any], **request: str) -> dict[str, Any]:
    url = str(resource["resourceType"])
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": url, **request},
    }


def _observation(k: int, child: str, visit: str | None) -> dict[str, Any]:
    code = ("29463-7", "Body weight", "kg") if k % 2 == 0 else ("8302-2", "Body height", "cm")
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [{"system": "https://fhir.example.id/ilp/observation", "value": f"@ID@-{k}"}],
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code[0], "display": code[1]}]},
        "subject": {"reference": child},
        "effectiveDateTime": "2026-11-02T09:30:00+07:00",
        "valueQuantity": {
            "value": 10 + k / 10,
            "unit": code[2],
            "system": "http://unitsofmeasure.org",
            "code": code[2],
        },
    }
    if visit is not None:
        resource["encounter"] = {"reference": visit}
    return resource


def transaction(observations: int, *, encounter: bool, conditional: bool) -> dict[str, Any]:
    """A transaction: one child, optionally a visit, and ``observations`` measurements."""
    child, visit = "urn:uuid:7f1c0d4e-0000-4000-8000-000000000001", None
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": NIK, "value": "@ID@"}],
        "name": [{"family": "Lestari", "given": ["Ayu"]}],
        "gender": "female",
        "birthDate": "2024-02-11",
    }
    condition = {"ifNoneExist": f"identifier={NIK}|@ID@"} if conditional else {}
    entries = [_entry(child, patient, **condition)]
    if encounter:
        visit = "urn:uuid:7f1c0d4e-0000-4000-8000-000000000002"
        entries.append(
            _entry(
                visit,
                {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "AMB",
                    },
                    "subject": {"reference": child},
                    "period": {"start": "2026-11-02T09:00:00+07:00"},
                },
            )
        )
    for k in range(observations):
        entries.append(
            _entry(f"urn:uuid:{k:08d}-0000-4000-8000-{k:012d}", _observation(k, child, visit))
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


SCENARIOS = {
    "small": (
        "1 Patient + 1 Observation (Blaze's small transaction)",
        transaction(1, encounter=False, conditional=False),
    ),
    "posyandu": (
        "Posyandu visit: Patient (ifNoneExist) + Encounter + 10 Observations",
        transaction(10, encounter=True, conditional=True),
    ),
    "bundle100": (
        "100 entries: Patient + Encounter + 98 Observations",
        transaction(98, encounter=True, conditional=False),
    ),
}


def load(
    server: Server, work: Path, name: str, seconds: int, args: argparse.Namespace
) -> dict[str, float]:
    """One wrk run of scenario ``name``: rates, latency (ms), errors and CPU (% of one core)."""
    script = work / f"{name}.lua"
    command = ["wrk", f"-t{args.threads}", f"-c{args.clients}", f"-d{seconds}s", "--timeout", "30s"]
    command += ["-s", str(script), f"http://{server.bind}/fhir"]
    env = dict(os.environ, BENCH_RUN=str(next(RUNS)))
    before, started = server.cpu(), time.monotonic()
    wrk = subprocess.run(command, env=env, capture_output=True, text=True)
    after, wall = server.cpu(), time.monotonic() - started
    found = next((line for line in wrk.stdout.splitlines() if line.startswith("RESULT ")), None)
    if wrk.returncode or found is None:
        raise RuntimeError(f"wrk failed:\n{wrk.stdout}{wrk.stderr}")
    requests, micros, p50, p95, p99, errors = map(int, found.split()[1:])
    if not requests:
        raise RuntimeError(f"wrk completed no request:\n{wrk.stdout}")
    cpu = {
        key: sum(t - before[key].get(pid, 0.0) for pid, t in after[key].items()) / wall * 100
        for key in after
    }
    cpu["other"] = max(0.0, cpu["other"] - cpu["workers"] - cpu["postgres"] - cpu["wrk"])
    rate = requests / micros * 1e6
    size = len(SCENARIOS[name][1]["entry"])
    return dict(
        cpu,
        rate=rate,
        resources=rate * size,
        errors=errors,
        cpu_ms=cpu["workers"] * 10 / (rate * size),
        p50=p50 / 1e3,
        p95=p95 / 1e3,
        p99=p99 / 1e3,
    )


def profile(server: Server, work: Path, name: str, args: argparse.Namespace) -> Counter[str]:
    """Sample the workers with py-spy during one extra wrk run; samples per category."""
    outputs = [work / f"{name}-{pid}.txt" for pid in server.worker_pids()]
    spies = [
        subprocess.Popen(
            [str(BIN / "py-spy"), "record", "--pid", str(pid), "--format", "raw", "--rate", "200",
             "--duration", str(args.seconds), "--output", str(out), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for pid, out in zip(server.worker_pids(), outputs, strict=True)
    ]  # fmt: skip
    load(server, work, name, args.seconds, args)
    for spy in spies:
        spy.wait(timeout=60)
    counts: Counter[str] = Counter()
    for out in outputs:
        for line in out.read_text().splitlines() if out.exists() else ():
            stack, _, samples = line.rpartition(" ")
            counts[_category(stack)] += int(samples)
    return counts


# Where a sample is spent: the first category whose marker is in its stack, in this order.
CATEGORIES = [
    ("structural validation (pydantic + JSON walk)", ("fhir/structure.py", "pydantic")),
    ("search index extraction", ("fhir/extract.py", "fhirpath", "storage/indexing.py")),
    ("bundle links (urn:uuid rewriting)", ("bundles/links.py",)),
    ("SQL: SQLAlchemy and the driver", ("sqlalchemy", "psycopg", "sqlite3")),
    ("JSON encode/decode and hashing", ("orjson", "jsonio.py", "hashlib")),
    ("bundle processing (other)", ("services/bundles/",)),
    ("services (other)", ("server/services/", "server/fhir/")),
    ("Flask, Werkzeug, gunicorn", ("flask", "werkzeug", "gunicorn")),
]  # fmt: skip


def _category(stack: str) -> str:
    for label, markers in CATEGORIES:
        if any(marker in stack for marker in markers):
            return label
    return "other"


def bench(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """Migrate and serve a fresh database, run each scenario; always clean up."""
    with tempfile.TemporaryDirectory(prefix="ilp-ingest-") as tmp:
        work = Path(tmp)
        for name, (_, body) in SCENARIOS.items():
            text = json.dumps(body, separators=(",", ":"))
            (work / f"{name}.lua").write_text(LUA.replace("@BODY@", text))
        with Server(kind, work, args) as server:
            print(f"{LABELS[kind]}: serving on {server.bind}", flush=True)
            results: dict[str, Any] = {}
            for name in args.scenarios:
                load(server, work, name, args.warmup, args)
                results[name] = load(server, work, name, args.seconds, args)
                print(f"  {name}: {results[name]['resources']:,.0f} resources/s", flush=True)
                if args.profile:
                    results[name]["profile"] = profile(server, work, name, args)
            results["rss"] = server.worker_rss_mib()
            return results


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace, command: str) -> str:
    lines = [
        f"- Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- Command: `{command}`",
        f"- Machine: {machine()}",
        f"- Commit: {git_commit()}",
        f"- Setup: gunicorn {args.workers} sync workers, ILP_LOG_LEVEL=WARNING,"
        " ILP_ENFORCE_PROFILES"
        f" empty (synthetic payloads); wrk {args.threads}"
        f" thread(s), {args.clients} connections, {args.warmup} s warm-up then {args.seconds} s"
        " per scenario; every resource new (a fresh NIK per request); structural validation"
        " and search indexing on; responses with the default `Prefer: return=representation`;"
        " the client runs on the same cores as the server.",
        "",
    ]
    lines += [f"- `{name}`: {SCENARIOS[name][0]}" for name in args.scenarios]
    lines += [
        "",
        "| Database | Scenario | Transactions/s | Resources/s | p50 ms | p95 ms | p99 ms | Errors "
        "| Workers CPU | Worker CPU ms/resource | PostgreSQL CPU | wrk CPU | Other CPU |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    row = (
        "| {db} | {name} | {rate:,.0f} | {resources:,.0f} | {p50:.1f} | {p95:.1f} | {p99:.1f} "
        "| {errors} | {workers:.0f} % | {cpu_ms:.2f} | {pg} | {wrk:.0f} % | {other:.0f} % |"
    )
    for kind, res in results.items():
        for name in args.scenarios:
            pg = f"{res[name]['postgres']:.0f} %" if kind == "postgresql" else "-"
            lines.append(row.format(db=LABELS[kind], name=name, pg=pg, **res[name]))
    lines += [
        "",
        "CPU is a percentage of one core (200 % = the whole machine); Other is every other"
        " process and the kernel. Errors are non-2xx answers and socket errors.",
        "",
    ]
    for kind, res in results.items():
        rss = ", ".join(f"{m:.0f}" for m in res["rss"])
        lines.append(f"- {LABELS[kind]}: worker RSS after the run: {rss} MiB")
    if "postgresql" in results:
        best = max(results["postgresql"][name]["resources"] for name in args.scenarios)
        met = "met" if best >= AIM else "NOT met"
        lines.append(
            f"- Aim of at least {AIM:,} resources/s on PostgreSQL: {met} (best {best:,.0f}/s)"
        )
    if args.profile:
        lines += ["", _profile_table(results, args), "", _dominant(results, args)]
    return "\n".join(lines) + "\n"


def _profile_table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    """Share of worker samples (py-spy, wall clock incl. waiting on the database) by category."""
    columns = [(kind, name) for kind in results for name in args.scenarios]
    header = "| Where the workers' time goes (py-spy samples) | " + " | ".join(
        f"{LABELS[k]} {n}" for k, n in columns
    )
    lines = [header + " |", "|---|" + "--:|" * len(columns)]
    for label in [c[0] for c in CATEGORIES] + ["other"]:
        cells = []
        for kind, name in columns:
            counts: Counter[str] = results[kind][name]["profile"]
            share = counts[label] / max(1, sum(counts.values())) * 100
            cells.append(f"{share:.0f} %")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _dominant(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    """One sentence: the largest share of worker samples, summed over every run."""
    total: Counter[str] = Counter()
    for kind in results:
        for name in args.scenarios:
            total.update(results[kind][name]["profile"])
    (first, a), (second, b) = total.most_common(2)
    share = sum(total.values()) / 100
    return (
        f"Over all runs the workers' samples go first to {first} ({a / share:.0f} %), then to "
        f"{second} ({b / share:.0f} %). py-spy counts only samples where a worker is busy "
        "(idle waits, e.g. on the database, are left out); PostgreSQL's own CPU is the column "
        "above."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_arguments(parser, "run")
    parser.add_argument("--scenario", dest="scenarios", action="append", choices=list(SCENARIOS))
    parser.add_argument("--profile", action="store_true", help="sample workers with py-spy")
    args = parser.parse_args()
    args.scenarios = args.scenarios or list(SCENARIOS)
    if args.profile and not (BIN / "py-spy").exists():
        sys.exit(f"--profile needs py-spy in the venv: {BIN / 'pip'} install py-spy")
    run_and_record("bench/ingest.py", SECTION, args, bench, report)


if __name__ == "__main__":
    main()
