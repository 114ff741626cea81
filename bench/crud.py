"""CRUD throughput and latency of ILP Gateway under gunicorn, on SQLite and PostgreSQL.

For each database a fresh one is migrated and served by gunicorn on a free loopback port;
``wrk`` (a cheap C load generator, scripted in Lua) then drives creates (POST
/fhir/Observation) and reads of the created resources, each after a warm-up.  The script
prints a table and rewrites its section of docs/benchmarks.md.  Needs ``wrk`` (Debian:
``apt-get install wrk``) and, for PostgreSQL, a server where --pg-url may create databases.
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
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## CRUD (bench/crud.py)"
TICK = os.sysconf("SC_CLK_TCK")
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}

# A body-weight vital sign as an ILP client sends it; @ID@ becomes a unique identifier value.
OBSERVATION = """{
  "resourceType": "Observation",
  "identifier": [{"system": "https://fhir.example.id/ilp/observation", "value": "@ID@"}],
  "status": "final",
  "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "vital-signs", "display": "Vital Signs"}]}],
  "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}],
           "text": "Body weight"},
  "subject": {"reference": "Patient/p1"},
  "effectiveDateTime": "2026-11-02T09:30:00+07:00",
  "valueQuantity": {"value": 12.4, "unit": "kg", "system": "http://unitsofmeasure.org",
                    "code": "kg"}
}"""

# BENCH_MODE=create POSTs unique bodies and writes the new ids to BENCH_IDS; BENCH_MODE=read
# GETs those ids.  done() prints one RESULT line: requests, duration (us), p50, p95, p99 (us),
# errors (socket errors, timeouts and 4xx/5xx answers).
LUA = r"""
local threads, n = {}, 0
local mode, file = os.getenv("BENCH_MODE"), os.getenv("BENCH_IDS")
local head, tail = [==[@HEAD@]==], [==[@TAIL@]==]
seq, ids, paths = 0, {}, {}  -- globals: done() fetches ids with thread:get
function setup(thread) n = n + 1; thread:set("tid", n); table.insert(threads, thread) end
function init(args)
  if mode == "create" then return end
  for id in io.lines(file) do paths[#paths + 1] = "/fhir/Observation/" .. id end
  seq = tid * 7919
end
function request()
  seq = seq + 1
  if mode == "read" then return wrk.format("GET", paths[seq % #paths + 1]) end
  return wrk.format(nil, nil, nil, head .. "bench-" .. tid .. "-" .. seq .. tail)
end
if mode == "create" then  -- only then: wrk parses response headers only if response() exists
  wrk.method, wrk.headers["Content-Type"] = "POST", "application/fhir+json"
  function response(status, headers, body)
    local id = headers["Location"] and headers["Location"]:match("/Observation/([^/]+)/_history")
    if status == 201 and id then ids[#ids + 1] = id end
  end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status))
  if mode ~= "create" then return end
  local out = assert(io.open(file, "w"))
  for _, t in ipairs(threads) do for _, id in ipairs(t:get("ids")) do out:write(id, "\n") end end
  out:close()
end
"""


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def machine() -> str:
    model = re.search(r"^model name\s*:\s*(.+)$", _read(Path("/proc/cpuinfo")), re.M)
    mem = re.search(r"^MemTotal:\s*(\d+)", _read(Path("/proc/meminfo")), re.M)
    ram = f"{int(mem[1]) / 2**20:.0f} GiB RAM" if mem else "unknown RAM"
    cores = len(os.sched_getaffinity(0))
    return f"{model[1] if model else 'unknown CPU'}, {cores} cores, {ram}"


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    dirty = " + uncommitted changes in server/" if git("status", "--porcelain", "server") else ""
    return (git("rev-parse", "--short", "HEAD").strip() or "unknown") + dirty


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """utime + stime in seconds of each live process in ``pids``."""
    stats = {pid: _read(Path(f"/proc/{pid}/stat")).rsplit(")", 1)[-1].split() for pid in pids}
    return {pid: (int(f[11]) + int(f[12])) / TICK for pid, f in stats.items() if len(f) > 12}


def postgres_pids(database: str) -> list[int]:
    """Backends of ``database`` and PostgreSQL's shared background processes (WAL writer...)."""
    titles = {int(p.parent.name): _read(p) for p in Path("/proc").glob("[0-9]*/cmdline")}
    others = re.compile(r"\(|\[local]|autovacuum worker")  # other clients' backends
    ours = (pid for pid, t in titles.items() if database in t or not others.search(t))
    return [pid for pid in ours if titles[pid].startswith("postgres:")]


def admin(pg_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{pg_url}/postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.encode())


class Server:
    """A fresh database served by gunicorn in its own session; a context manager."""

    def __init__(self, kind: str, work: Path, args: argparse.Namespace) -> None:
        self.work, self.args = work, args
        self.proc: subprocess.Popen[bytes] | None = None
        self.db = f"ilp_bench_{uuid.uuid4().hex[:10]}" if kind == "postgresql" else ""
        with socket.socket() as sock:  # a free port (the race with other programs is harmless)
            sock.bind(("127.0.0.1", 0))
            self.bind = f"127.0.0.1:{sock.getsockname()[1]}"
        pg_url = args.pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
        url = f"{pg_url}/{self.db}" if self.db else f"sqlite:///{work / 'ilp.sqlite3'}"
        base_url = f"http://{self.bind}/fhir"
        self.env = dict(os.environ, ILP_DATABASE_URL=url, ILP_BASE_URL=base_url)
        self.env["ILP_LOG_LEVEL"] = "WARNING"
        self.env.setdefault("ILP_AUTH", "off")  # bench/load.py measures with tokens
        self.env.setdefault("ILP_RATE_LIMIT", "0")
        # The synthetic payloads are not ILP data; bench/validate.py measures profile checks.
        self.env.setdefault("ILP_ENFORCE_PROFILES", "")

    def __enter__(self) -> Server:
        try:
            if self.db:
                admin(self.args.pg_url, f'CREATE DATABASE "{self.db}"')
            upgrade = [str(BIN / "ilp"), "db", "upgrade"]
            subprocess.run(upgrade, env=self.env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
            command = [str(BIN / "python"), "-m", "gunicorn", "--bind", self.bind, "--workers"]
            command += [str(self.args.workers), "--no-control-socket", "server:create_app()"]
            with (self.work / "gunicorn.log").open("wb") as log:
                self.proc = subprocess.Popen(
                    command, env=self.env, cwd=ROOT, stdout=log, stderr=log, start_new_session=True
                )
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_ready(self, timeout: float = 60) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.work / "gunicorn.log").read_text()[-2000:]
                raise RuntimeError(f"gunicorn exited:\n{log}")
            try:
                with urllib.request.urlopen(f"http://{self.bind}/fhir/metadata", timeout=2):
                    if len(self.worker_pids()) == self.args.workers:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer GET /fhir/metadata within {timeout} s")

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # graceful: workers finish the request in hand
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.db:
            admin(self.args.pg_url, f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in _read(children).split()]

    def worker_rss_mib(self) -> list[float]:
        status = [_read(Path(f"/proc/{pid}/status")) for pid in self.worker_pids()]
        return [int(m[1]) / 1024 for s in status if (m := re.search(r"VmRSS:\s*(\d+)", s))]

    def cpu(self) -> dict[str, dict[int, float]]:
        """Cumulative CPU seconds of the workers, our PostgreSQL processes, wrk and everything."""
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped: wrk (gunicorn lives)
        busy = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
        return {
            "workers": cpu_by_pid(self.worker_pids()),
            "postgres": cpu_by_pid(postgres_pids(self.db)) if self.db else {},
            "wrk": {0: children.ru_utime + children.ru_stime},
            "other": {0: (sum(busy) - busy[3] - busy[4]) / TICK},  # all but idle and iowait
        }

    def load(self, mode: str, ids: Path, seconds: int) -> dict[str, float]:
        """One wrk run: rate, latency percentiles (ms), errors and CPU (% of one core)."""
        command = ["wrk", f"-t{self.args.threads}", f"-c{self.args.clients}", f"-d{seconds}s"]
        command += ["--timeout", "10s", "-s", str(self.work / "bench.lua")]
        command.append(f"http://{self.bind}/fhir/Observation")
        env = dict(os.environ, BENCH_MODE=mode, BENCH_IDS=str(ids))
        before, started = self.cpu(), time.monotonic()
        wrk = subprocess.run(command, env=env, capture_output=True, text=True)
        after, wall = self.cpu(), time.monotonic() - started
        found = re.search(r"^RESULT ([\d ]+)$", wrk.stdout, re.M)
        if wrk.returncode or not found:
            raise RuntimeError(f"wrk failed:\n{wrk.stdout}{wrk.stderr}")
        requests, micros, p50, p95, p99, errors = map(int, found[1].split())
        if not requests:
            raise RuntimeError(f"wrk completed no request:\n{wrk.stdout}")
        cpu = {
            key: sum(t - before[key].get(pid, 0.0) for pid, t in after[key].items()) / wall * 100
            for key in after
        }
        cpu["other"] = max(0.0, cpu["other"] - cpu["workers"] - cpu["postgres"] - cpu["wrk"])
        rate = requests / micros * 1e6
        result = dict(cpu, rate=rate, errors=errors, cpu_ms=cpu["workers"] * 10 / rate)
        return dict(result, p50=p50 / 1e3, p95=p95 / 1e3, p99=p99 / 1e3)


def bench(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """Migrate and serve a fresh database, run the four wrk phases; always clean up."""
    with tempfile.TemporaryDirectory(prefix="ilp-bench-") as tmp:
        work = Path(tmp)
        head, tail = json.dumps(json.loads(OBSERVATION), separators=(",", ":")).split("@ID@")
        (work / "bench.lua").write_text(LUA.replace("@HEAD@", head).replace("@TAIL@", tail))
        with Server(kind, work, args) as server:
            print(f"{LABELS[kind]}: serving on {server.bind}; measuring", flush=True)
            ids = work / "ids.txt"
            server.load("create", work / "warm-up.txt", args.warmup)
            create = server.load("create", ids, args.seconds)
            if not (created := len(ids.read_text().split())):
                raise RuntimeError("no create answered 201 with a Location header")
            server.load("read", ids, args.warmup)
            read = server.load("read", ids, args.seconds)
            return {"create": create, "read": read, "rss": server.worker_rss_mib(), "n": created}


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
        " per phase; the client runs on the same cores as the server.",
        "",
        "| Database | Phase | Requests/s | p50 ms | p95 ms | p99 ms | Errors | Workers CPU "
        "| Worker CPU ms/request | PostgreSQL CPU | wrk CPU | Other CPU |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    row = (
        "| {db} | {phase} | {rate:,.0f} | {p50:.1f} | {p95:.1f} | {p99:.1f} | {errors} "
        "| {workers:.0f} % | {cpu_ms:.2f} | {pg} | {wrk:.0f} % | {other:.0f} % |"
    )
    for kind, res in results.items():
        for phase in ("create", "read"):
            pg = f"{res[phase]['postgres']:.0f} %" if kind == "postgresql" else "-"
            lines.append(row.format(db=LABELS[kind], phase=phase, pg=pg, **res[phase]))
    lines += [
        "",
        "CPU is a percentage of one core (200 % = the whole machine); Other is every other"
        " process and the kernel, i.e. noise. Reads cycle through the resources created in"
        " the measured create phase. With sync workers, connections beyond the worker count"
        " wait in the listen queue, so p50 is roughly connections / throughput.",
        "",
    ]
    for kind, res in results.items():
        p50, rss = res["read"]["p50"], ", ".join(f"{m:.0f}" for m in res["rss"])
        lines.append(
            f"- {LABELS[kind]}: {res['n']:,} resources created; worker RSS after the run: {rss}"
            f" MiB; aim of read p50 under 3 ms: {'met' if p50 < 3 else 'NOT met'}"
        )
    if "postgresql" in results:
        rate = results["postgresql"]["create"]["rate"]
        met = "met" if rate >= 1500 else "NOT met"
        lines.append(f"- Aim of at least 1,500 creates/s on PostgreSQL: {met} ({rate:,.0f}/s)")
    return "\n".join(lines) + "\n"


def write_subsection(section: str, intro: str, heading: str, body: str) -> None:
    """Replace (or add, before ``### Findings``) one subsection of ``section`` in DOCS, the
    section made (with ``intro``) at the end when missing (bench/sync.py, bench/load.py)."""
    text = DOCS.read_text()
    found = re.search(f"^{re.escape(section)}$", text, re.M)
    if found is None:
        text = text.rstrip("\n") + f"\n\n{section}\n\n{intro}\n"
        found = re.search(f"^{re.escape(section)}$", text, re.M)
        assert found is not None
    following = re.compile(r"^## ", re.M).search(text, found.end())
    end = following.start() if following else len(text)
    lead, *subsections = re.split(r"(?m)^(?=### )", text[found.start() : end])
    titles = [part.split("\n", 1)[0] for part in subsections]
    new = f"{heading}\n\n{body}"
    if heading in titles:
        subsections[titles.index(heading)] = new
    else:
        at = titles.index("### Findings") if "### Findings" in titles else len(subsections)
        subsections.insert(at, new)
    section_text = "\n\n".join(part.rstrip("\n") for part in [lead, *subsections]) + "\n"
    DOCS.write_text(text[: found.start()] + section_text + ("\n" + text[end:] if following else ""))


INTRO = """# Benchmarks

Figures on this page are medians and other percentiles from one run of each script on a
noisy 2-core machine, where the load generator shares the CPU with the server and the
database: read them as orders of magnitude and ratios between configurations, not as
capacity guarantees.  Each script rewrites only its own section.
"""


def write_docs_section(section: str, body: str, *, keep: str | None = None) -> None:
    """Replace ``section`` of docs/benchmarks.md (or append it), leaving the others alone.

    ``keep`` names a hand-written subsection (e.g. ``### Findings``) carried over as it is.
    """
    text = DOCS.read_text() if DOCS.exists() else INTRO
    start = text.find(section)
    kept = ""
    if start < 0:
        text = text.rstrip("\n") + "\n\n"
        start = end = len(text)
        following = None
    else:
        following = re.compile(r"^## ", re.M).search(text, start + len(section))
        end = following.start() if following else len(text)
        found = text.find(keep, start, end) if keep else -1
        if found >= 0:
            kept = "\n" + text[found:end].rstrip("\n") + "\n"
    new = f"{section}\n\n{body}{kept}"
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text[:start] + new + ("\n" if following else "") + text[end:])


def database_kinds(script: str, db: str, pg_url: str, *, wrk: bool = True) -> list[str]:
    """The databases to run on; exits with a clear message when a prerequisite is missing."""
    if wrk and shutil.which("wrk") is None:
        sys.exit(
            f"{script} needs the load generator `wrk`, which is not installed.\n"
            "Install it with: apt-get install wrk   (Debian/Ubuntu)"
        )
    if not (BIN / "python").exists():
        sys.exit(f"{BIN / 'python'} is missing; run `make install` first.")
    kinds = ["sqlite", "postgresql"] if db == "both" else [db]
    if "postgresql" in kinds:
        try:
            admin(pg_url, "SELECT 1")
        except Exception as exc:  # whatever the cause, PostgreSQL is not usable
            sys.exit(f"PostgreSQL at {pg_url} is not usable ({exc}); use --db sqlite?")
    return kinds


def add_load_arguments(parser: argparse.ArgumentParser, unit: str) -> None:
    """Options every wrk-driven script takes (``unit``: what one measured stretch is)."""
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--seconds", type=int, default=12, help=f"per measured {unit}")
    parser.add_argument("--warmup", type=int, default=3, help=f"per warm-up {unit}")
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs")


def run_and_record(
    script: str,
    section: str,
    args: argparse.Namespace,
    bench: Callable[[str, argparse.Namespace], dict[str, Any]],
    report: Callable[[dict[str, dict[str, Any]], argparse.Namespace, str], str],
) -> None:
    """Run ``bench`` on each database, print the report and record it in docs/benchmarks.md."""
    kinds = database_kinds(script, args.db, args.pg_url)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up as on Ctrl-C
    try:
        results = {kind: bench(kind, args) for kind in kinds}
    except KeyboardInterrupt:
        sys.exit("interrupted; gunicorn stopped and the benchmark database dropped")
    body = report(results, args, " ".join([".venv/bin/python", script, *sys.argv[1:]]))
    print("\n" + body)
    if not args.no_docs:
        write_docs_section(section, body)
        print(f"updated {DOCS.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_arguments(parser, "phase")
    run_and_record("bench/crud.py", SECTION, parser.parse_args(), bench, report)


if __name__ == "__main__":
    main()
