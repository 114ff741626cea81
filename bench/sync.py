"""Sync throughput: the demo district sent from a Puskesmas node to a national node on loopback.

For each database, the demo district is loaded once (``ilp demo load``) into a Puskesmas
database; then, for each sending mode and each repeat, a copy of that database (every outbox
row pending) sends everything with ``ilp sync once`` to a fresh national node: gunicorn (2
workers) in national mode (``docs/national-mode.md``: token endpoint, ``/fhir-r4/v1`` behind a
bearer token), the outbox off, the ILP profiles enforced (the server's default), on a database
of the same kind.  Persons are created upstream (``ILP_SYNC_PERSONS=create``, an ILP node
upstream); the facility's Organization is registered there first.  The clock runs from the
start of ``ilp sync once`` to its exit (about a second of it is Python starting), so it counts
reading the outbox, shaping each body, HTTP, the national node's validation, indexing and
commits, and recording the results.  ``--senders N`` runs N ``ilp sync once`` at once (their
claims do not overlap); ``--no-national-profiles`` shows what the national node's profile
validation costs.  The script checks that every outbox row ended sent and that the national
node holds as many resources of each type as the Puskesmas, prints a table and rewrites the
subsection of this configuration in docs/benchmarks.md (the hand-written ``### Findings`` is
kept).  Needs, for PostgreSQL, a server where --pg-url may create databases.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from crud import (
    BIN,
    LABELS,
    ROOT,
    Server,
    admin,
    cpu_by_pid,
    database_kinds,
    git_commit,
    machine,
    postgres_pids,
    write_subsection,
)

SECTION = "## Sync"  # docs/sync.md links to benchmarks.md#sync
INTRO = (
    "Sending the demo district from a Puskesmas node to a national node on loopback with"
    " `ilp sync once` (bench/sync.py). Each subsection is one configuration, rewritten when the"
    " script runs it again."
)
AIM_RESOURCES_PER_S = 500
ORGANIZATION_ID = "10526001"  # the demo Puskesmas pkm-526001's synthetic SATUSEHAT id
FACILITY = "pkm-526001"
CLIENT_ID, SECRET = "puskesmas-526001", uuid.uuid4().hex + uuid.uuid4().hex
# "demo district (small, seed 1): 4,561 written, 0 unchanged in 3.7 s (1,233/s); 1,064 Encounter"
LOADED = re.compile(r": ([\d,]+) written, .* in ([\d.]+) s .*?; (.*)$")
SENT = re.compile(r"sent ([\d,]+), postponed ([\d,]+), failed ([\d,]+), parked ([\d,]+)")


class Puskesmas:
    """The loaded Puskesmas database, and fresh copies of it to send from."""

    def __init__(self, kind: str, work: Path, args: argparse.Namespace) -> None:
        self.kind, self.work, self.args = kind, work, args
        self.pg_url = args.pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
        self.template = f"ilp_bench_pkm_{uuid.uuid4().hex[:10]}"
        self.copies: list[str] = []
        self.load_seconds = 0.0
        self.types: dict[str, int] = {}

    def url(self, name: str) -> str:
        return f"{self.pg_url}/{name}" if self.kind == "postgresql" else f"sqlite:///{name}"

    def load(self) -> None:
        """``ilp db upgrade`` and ``ilp demo load`` into the template database."""
        if self.kind == "postgresql":
            admin(self.args.pg_url, f'CREATE DATABASE "{self.template}"')
        else:
            self.template = str(self.work / "puskesmas.sqlite3")
        env = _env(self.url(self.template))
        subprocess.run([str(BIN / "ilp"), "db", "upgrade"], env=env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        command = [str(BIN / "ilp"), "demo", "load"]
        if self.args.observations:
            command += ["--observations", str(self.args.observations)]
        run = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
        found = LOADED.search(run.stdout.strip().splitlines()[-1])
        if not found:
            raise RuntimeError(f"unexpected output of ilp demo load:\n{run.stdout}")
        self.load_seconds = float(found[2])
        for part in found[3].split(", "):
            count, res_type = part.split(" ")
            self.types[res_type] = int(count.replace(",", ""))

    @contextmanager
    def copy(self) -> Iterator[str]:
        """A fresh copy of the loaded database (its URL): every outbox row pending."""
        if self.kind == "postgresql":
            name = f"ilp_bench_run_{uuid.uuid4().hex[:10]}"
            admin(self.args.pg_url, f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        else:
            name = str(self.work / f"run-{uuid.uuid4().hex[:8]}.sqlite3")
            shutil.copy(self.template, name)
        try:
            yield self.url(name)
        finally:
            if self.kind == "postgresql":
                admin(self.args.pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            else:
                Path(name).unlink(missing_ok=True)

    def drop(self) -> None:
        if self.kind == "postgresql":
            admin(self.args.pg_url, f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')


def _env(database_url: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ILP_")}
    env.update(ILP_DATABASE_URL=database_url, ILP_LOG_LEVEL="WARNING")
    env.update(ILP_AUTH="off", ILP_RATE_LIMIT="0")  # /fhir-r4/v1 still needs tokens
    env.update({f"ILP_{name.upper()}": value for name, value in settings.items()})
    return env


def _national(kind: str, work: Path, args: argparse.Namespace) -> Server:
    """A fresh national node (its own folder: Server puts SQLite files and the log there)."""
    folder = work / f"national-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    server = Server(kind, folder, args)
    if args.national_profiles:
        server.env.pop("ILP_ENFORCE_PROFILES", None)  # the server's default: ILP profiles on
    else:
        server.env.update(ILP_ENFORCE_PROFILES="", ILP_ENFORCE_CLAIMED_PROFILES="false")
    server.env.update(ILP_NATIONAL_CLIENTS=f"{CLIENT_ID}:{SECRET}", ILP_OUTBOX="false")
    return server


def _register_facility(server: Server) -> None:
    """The facility's Organization, as the national platform knows it before any sync."""
    root = f"http://{server.bind}"
    form = urllib.parse.urlencode({"client_id": CLIENT_ID, "client_secret": SECRET}).encode()
    token_url = f"{root}/oauth2/v1/accesstoken?grant_type=client_credentials"
    with urllib.request.urlopen(urllib.request.Request(token_url, data=form)) as answer:
        token = json.load(answer)["access_token"]
    body = {"resourceType": "Organization", "id": ORGANIZATION_ID, "name": "Puskesmas"}
    request = urllib.request.Request(
        f"{root}/fhir-r4/v1/Organization/{ORGANIZATION_ID}",
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
    )
    with urllib.request.urlopen(request):
        pass


def sync_once(puskesmas: Puskesmas, kind: str, bundle_size: int, args: argparse.Namespace,
              work: Path) -> dict[str, Any]:  # fmt: skip
    """``ilp sync once`` (``--senders`` at once) from a fresh copy to a fresh national node."""
    with _national(kind, work, args) as server, puskesmas.copy() as database_url:
        _register_facility(server)
        root = f"http://{server.bind}"
        settings = {
            "upstream_url": f"{root}/fhir-r4/v1",
            "upstream_token_url": f"{root}/oauth2/v1/accesstoken",
            "upstream_client_id": CLIENT_ID,
            "upstream_client_secret": SECRET,
            "upstream_organization_id": ORGANIZATION_ID,
            "sync_facility": FACILITY,
            "sync_persons": "create",
            "sync_bundle_size": str(bundle_size),
        }
        if args.batch_size:
            settings["sync_batch_size"] = str(args.batch_size)
        env = _env(database_url, **settings)
        pg = [server.db, database_url.rsplit("/", 1)[1]] if kind == "postgresql" else []
        postgres = sorted({pid for db in pg for pid in postgres_pids(db)})
        workers = server.worker_pids()
        national_cpu, postgres_cpu = cpu_by_pid(workers), cpu_by_pid(postgres)
        sync_cpu = _children_cpu()
        started = time.monotonic()
        senders = [
            subprocess.Popen([str(BIN / "ilp"), "sync", "once"], env=env, cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(args.senders)
        ]  # fmt: skip
        outputs = [sender.communicate() for sender in senders]
        seconds = time.monotonic() - started
        sync_cpu = _children_cpu() - sync_cpu
        national_cpu = _used(national_cpu, cpu_by_pid(workers))
        postgres_cpu = _used(postgres_cpu, cpu_by_pid(postgres))
        sent = 0
        for sender, (stdout, stderr) in zip(senders, outputs, strict=True):
            found = SENT.search(stdout)
            if sender.returncode or not found:
                raise RuntimeError(f"ilp sync once failed:\n{stdout[-2000:]}{stderr[-2000:]}")
            sent += int(found[1].replace(",", ""))
        status = subprocess.run([str(BIN / "ilp"), "sync", "status", "--json"], env=env, cwd=ROOT,
                                capture_output=True, text=True, check=True)  # fmt: skip
        outbox = json.loads(status.stdout)["outbox"]
        if outbox["pending"] or outbox["failed"] or outbox["parked"]:
            raise RuntimeError(f"not everything was sent: {outbox}")
        _check_national(server, puskesmas.types)
        rss = server.worker_rss_mib()

    return {
        "seconds": seconds,
        "rows": outbox["sent"],
        "sent": sent,
        "sync_cpu": sync_cpu,
        "national_cpu": national_cpu,
        "postgres_cpu": postgres_cpu,
        "rss": rss,
    }


def _check_national(server: Server, types: dict[str, int]) -> None:
    """Every resource arrived once: the national node holds as many of each type as were sent."""
    for res_type, count in types.items():  # the facility's Organization was registered there
        url = f"http://{server.bind}/fhir/{res_type}?_summary=count"
        with urllib.request.urlopen(url) as answer:
            total = json.load(answer)["total"]
        if total != count:
            raise RuntimeError(f"the national node holds {total:,} {res_type}, not {count:,}")


def _used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds the processes of ``before`` used since (those gone since count nothing)."""
    return sum(after[pid] - cpu for pid, cpu in before.items() if pid in after)


def _children_cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime


def bench(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ilp-bench-sync-") as tmp:
        work = Path(tmp)
        puskesmas = Puskesmas(kind, work, args)
        try:
            puskesmas.load()
            total = sum(puskesmas.types.values())
            print(f"{LABELS[kind]}: {total:,} resources loaded in {puskesmas.load_seconds:.0f} s",
                  flush=True)  # fmt: skip
            modes: dict[int, list[dict[str, Any]]] = {}
            for bundle_size in args.bundle_sizes:
                modes[bundle_size] = []
                for repeat in range(args.repeats):
                    run = sync_once(puskesmas, kind, bundle_size, args, work)
                    modes[bundle_size].append(run)
                    print(f"  bundle size {bundle_size}, run {repeat + 1}: {run['rows']:,} "
                          f"resources in {run['seconds']:.1f} s "
                          f"({run['rows'] / run['seconds']:,.0f}/s)", flush=True)  # fmt: skip
        finally:
            puskesmas.drop()
    return {"types": puskesmas.types, "load_seconds": puskesmas.load_seconds, "modes": modes}


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]


def _mode(bundle_size: int) -> str:
    return "one request per resource" if bundle_size == 1 else f"Bundles of {bundle_size}"


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace, command: str,
           commit: str) -> str:  # fmt: skip
    size = f"{args.observations:,} Observations" if args.observations else "small preset"
    batch = args.batch_size or "50 (the default)"
    profiles = "the ILP profiles enforced" if args.national_profiles else "profiles not enforced"
    clock = "time from the start of `ilp sync once` to its exit"
    if args.senders > 1:
        clock = f"{args.senders} `ilp sync once` at once, timed from their start to the last exit"
    lines = [
        f"- Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- Command: `{command}`",
        f"- Machine: {machine()}",
        f"- Commit: {commit}",
        f"- Setup: the demo district ({size}) loaded with `ilp demo load` into the Puskesmas"
        " database; for each run, a fresh copy of it (every outbox row pending) and a fresh"
        f" national node: gunicorn ({args.workers} sync workers) in national mode, outbox off,"
        f" {profiles}, on a database of the same kind. `ILP_SYNC_PERSONS=create`,"
        f" `ILP_SYNC_BATCH_SIZE` {batch}; {clock} (about 1 s of Python start-up included)."
        " Everything runs on the same cores.",
        "",
        "| Database | Mode | Resources | Seconds | Resources/s | Runs (s) | Sync CPU "
        "| National CPU | PostgreSQL CPU |",
        "|---|---|--:|--:|--:|---|--:|--:|--:|",
    ]
    for kind, res in results.items():
        for bundle_size, runs in res["modes"].items():
            seconds = statistics.median(run["seconds"] for run in runs)
            middle = _median_run(runs)
            rows = middle["rows"]
            each = ", ".join(f"{run['seconds']:.1f}" for run in runs)
            pg = (
                f"{middle['postgres_cpu'] / middle['seconds']:.0%}" if kind == "postgresql" else "-"
            )
            lines.append(
                f"| {LABELS[kind]} | {_mode(bundle_size)} | {rows:,} | {seconds:.1f} "
                f"| {rows / seconds:,.0f} | {each} "
                f"| {middle['sync_cpu'] / middle['seconds']:.0%} "
                f"| {middle['national_cpu'] / middle['seconds']:.0%} | {pg} |"
            )
    lines += [
        "",
        "Seconds and resources/s are the median of the runs. CPU is a share of one core over the"
        " median run (200 % = the whole machine): the `ilp sync once` process, the national"
        " node's gunicorn workers, and PostgreSQL (both databases' backends and its background"
        " processes).",
        "",
    ]
    for kind, res in results.items():
        types = ", ".join(f"{n:,} {t}" for t, n in sorted(res["types"].items()))
        lines.append(
            f"- {LABELS[kind]}: {sum(res['types'].values()):,} resources ({types}), loaded in"
            f" {res['load_seconds']:.0f} s"
        )
        for bundle_size, runs in res["modes"].items():
            rate = _median_run(runs)["rows"] / statistics.median(r["seconds"] for r in runs)
            met = "met" if rate >= AIM_RESOURCES_PER_S else "NOT met"
            lines.append(
                f"  - {_mode(bundle_size)}: aim of at least {AIM_RESOURCES_PER_S} resources/s:"
                f" {met} ({rate:,.0f}/s)"
            )
    return "\n".join(lines) + "\n"


def title(args: argparse.Namespace, kinds: list[str]) -> str:
    """The subsection of one configuration: data size, databases, what differs from defaults."""
    size = f"{args.observations:,} Observations" if args.observations else "Small preset"
    parts = [size, " and ".join(LABELS[kind] for kind in kinds)]
    if args.senders > 1:
        parts.append(f"{args.senders} senders")
    if args.batch_size:
        parts.append(f"batches of {args.batch_size}")
    if not args.national_profiles:
        parts.append("national profiles off")
    return "### " + ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument(
        "--observations",
        type=int,
        metavar="N",
        help="grow the demo district to N Observations (default: small preset)",
    )
    parser.add_argument(
        "--bundle-sizes",
        default="1,100",
        metavar="N,N",
        help="ILP_SYNC_BUNDLE_SIZE values to run (1: one request per resource)",
    )
    parser.add_argument(
        "--batch-size", type=int, metavar="ROWS", help="ILP_SYNC_BATCH_SIZE (default: the server's)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per mode (median)")
    parser.add_argument(
        "--senders",
        type=int,
        default=1,
        help="`ilp sync once` processes sending at once (claims: SKIP LOCKED)",
    )
    parser.add_argument(
        "--no-national-profiles",
        dest="national_profiles",
        action="store_false",
        help="the national node does not enforce profiles",
    )
    parser.add_argument("--workers", type=int, default=2, help="national gunicorn workers")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs")
    args = parser.parse_args()  # fmt: skip
    args.bundle_sizes = [int(size) for size in args.bundle_sizes.split(",")]
    kinds = database_kinds("bench/sync.py", args.db, args.pg_url, wrk=False)
    commit = git_commit()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up as on Ctrl-C
    try:
        results = {kind: bench(kind, args) for kind in kinds}
    except KeyboardInterrupt:
        sys.exit("interrupted; gunicorn stopped and the benchmark databases dropped")
    command = " ".join([".venv/bin/python", "bench/sync.py", *sys.argv[1:]])
    body = report(results, args, command, commit)
    print("\n" + body)
    if not args.no_docs:
        write_subsection(SECTION, INTRO, title(args, kinds), body)
        print("updated docs/benchmarks.md")


if __name__ == "__main__":
    main()
