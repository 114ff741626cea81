"""Profile validator throughput in-process on one core: base R4 and ILP profiles.

The validator (``server.fhir.validation``) is built as the server builds it: the official
R4 package and profiles/ in one ConformanceSet, snapshots generated for profiles that ship
none.  Workloads, each validated round-robin in a single thread pinned to one CPU, after a
warm-up that compiles every definition they need:

- ``obs-base``: the ILP Observation examples (profiles/examples/Observation-ilp-obs-*.json)
  without their ``meta.profile``: base R4 only;
- ``obs-ilp``: the same examples against their ILP profile (given explicitly, as claimed);
- ``bundle-base`` / ``bundle-ilp``: Posyandu visit Bundles of the demo district (a child or
  parent: Patient + the visit's Encounter + its Observations, PUT as the demo loader writes
  them), without and with the ILP profiles the demo resources claim.

Each figure is the median of ``--repeat`` timed runs of ``--seconds`` each.  Cold start (a
fresh process: build the ConformanceSet, then the first validation of an Observation and of a
Bundle) is measured in child processes.  Memory: peak RSS of the process, and the Python
memory the validator holds once warm (tracemalloc, on a second validator built for that).
The script prints a table and rewrites its section of docs/benchmarks.md, keeping a
hand-written ``### Findings`` subsection if there is one.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import gc
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crud import ROOT, git_commit, machine, write_docs_section

if TYPE_CHECKING:
    from server.fhir.validation import Validator

SECTION = "## Validation (bench/validate.py)"
FINDINGS = "### Findings"  # a hand-written subsection, kept as it is
EXAMPLES = ROOT / "profiles" / "examples"
AIM = 2000  # ILP-profiled Observations/s on one core
BASE = "https://gateway.example.id/fhir"  # fullUrl base of the visit Bundles' entries

Validate = Callable[[Any], int]  # validates one item, returns how many errors it found


def build_validator() -> Validator:
    """A Validator over the official package and profiles/, as the server builds it."""
    from server.fhir.packages import R4_EXAMPLES, package_folder
    from server.fhir.validation import ConformanceSet, Validator
    from server.fhir.validation.snapshot import generate_snapshot

    official = package_folder(ROOT / ".cache" / "fhir", R4_EXAMPLES)
    if not (official / "package.json").exists():
        sys.exit(f"{R4_EXAMPLES} is not in {official}; run `make fhir-package`")
    conformance = ConformanceSet.from_folders([official, ROOT / "profiles"])
    conformance.snapshot_builder = generate_snapshot
    return Validator(conformance)


def observations() -> list[dict[str, Any]]:
    found = [json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("Observation-ilp-obs-*.json"))]
    if not found:
        sys.exit(f"no ILP Observation examples in {EXAMPLES}")
    return found


def without_claims(resource: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``resource`` (a Bundle's entries too) without ``meta.profile``."""
    copied = copy.deepcopy(resource)
    for item in [copied, *(e.get("resource") or {} for e in copied.get("entry") or ())]:
        meta = item.get("meta")
        if isinstance(meta, dict):
            meta.pop("profile", None)
            if not meta:
                del item["meta"]
    return copied


def claimed(resource: dict[str, Any]) -> list[str]:
    return list((resource.get("meta") or {}).get("profile") or ())


def _is_posyandu(encounter: dict[str, Any]) -> bool:
    texts = [t.get("text", "") for t in encounter.get("type") or ()]
    return any("posyandu" in text.lower() for text in texts)


def visit_bundles(count: int, seed: int) -> list[dict[str, Any]]:
    """The first ``count`` Posyandu visits of the small demo district, as transactions."""
    from server.demo.district import PRESETS, generate

    patients: dict[str, dict[str, Any]] = {}
    bundles: list[dict[str, Any]] = []
    visit: list[dict[str, Any]] = []

    def close() -> None:
        if len(visit) > 2:  # Patient, Encounter and at least one Observation
            entries = [
                {
                    "fullUrl": f"{BASE}/{r['resourceType']}/{r['id']}",
                    "resource": r,
                    "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                }
                for r in visit
            ]
            bundles.append({"resourceType": "Bundle", "type": "transaction", "entry": entries})
        visit.clear()

    for made in generate(PRESETS["small"], seed):
        kind = made["resourceType"]
        if kind == "Patient":
            patients[made["id"]] = made
        elif kind == "Encounter":
            close()
            if len(bundles) == count:
                break
            if _is_posyandu(made):
                subject = made["subject"]["reference"].split("/", 1)[1]
                visit.extend([copy.deepcopy(patients[subject]), copy.deepcopy(made)])
        elif kind == "Observation" and visit:
            if made.get("encounter", {}).get("reference") == f"Encounter/{visit[1]['id']}":
                visit.append(copy.deepcopy(made))
    close()
    if not bundles:
        sys.exit("the demo district produced no Posyandu visit")
    return bundles[:count]


def workloads(validator: Validator, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """name -> what it is, its items, resources per item and the call that validates one."""

    def errors(issues: list[Any]) -> int:
        return sum(issue.severity in ("error", "fatal") for issue in issues)

    examples = observations()
    bundles = visit_bundles(args.bundles, args.seed)
    base_obs = [without_claims(o) for o in examples]
    ilp_obs = [(o, tuple(claimed(o))) for o in examples]
    base_bundles = [without_claims(b) for b in bundles]
    size = statistics.fmean(len(b["entry"]) for b in bundles) + 1  # entries and the Bundle
    return {
        "obs-base": {
            "what": f"{len(examples)} ILP Observation examples, base R4 only",
            "items": base_obs,
            "resources": 1.0,
            "call": lambda o: errors(validator.validate(o)),
        },
        "obs-ilp": {
            "what": f"the same {len(examples)} against their ILP profile",
            "items": ilp_obs,
            "resources": 1.0,
            "call": lambda pair: errors(validator.validate(pair[0], profiles=pair[1])),
        },
        "bundle-base": {
            "what": f"{len(bundles)} Posyandu visit Bundles of the demo, base R4 only",
            "items": base_bundles,
            "resources": size,
            "call": lambda b: errors(validator.validate(b)),
        },
        "bundle-ilp": {
            "what": f"the same {len(bundles)} with the ILP profiles their resources claim",
            "items": bundles,
            "resources": size,
            "call": lambda b: errors(validator.validate(b)),
        },
    }


def _cycle(items: list[Any]) -> Iterator[Any]:
    while True:
        yield from items


def timed_run(call: Validate, items: list[Any], seconds: float) -> float:
    """Items validated per second over at least ``seconds``, whole rounds of ``items``."""
    gc.collect()
    done, started = 0, time.perf_counter()
    while True:
        for item in items:
            call(item)
        done += len(items)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return done / elapsed


def measure(loads: dict[str, dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Warm every workload, then ``args.repeat`` timed runs of each, interleaved."""
    found: dict[str, int] = {}
    for name, load in loads.items():
        for _ in range(args.warmup):
            found[name] = sum(load["call"](item) for item in load["items"])
    rates: dict[str, list[float]] = {name: [] for name in loads}
    for _ in range(args.repeat):  # interleaved: a slow spell of the machine hits all alike
        for name, load in loads.items():
            rates[name].append(timed_run(load["call"], load["items"], args.seconds))
        print(".", end="", flush=True)
    print()
    return {
        name: {
            "median": statistics.median(rates[name]),
            "low": min(rates[name]),
            "high": max(rates[name]),
            "errors": found[name],
        }
        for name in loads
    }


def cache_memory(args: argparse.Namespace) -> dict[str, float]:
    """MiB that a second validator holds once warm on every workload (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    validator = build_validator()
    loads = workloads(validator, args)
    data = tracemalloc.get_traced_memory()[0] - before  # the workloads' own items
    for load in loads.values():
        for item in load["items"]:
            load["call"](item)
    gc.collect()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"held": (held - before - data) / 2**20, "peak": (peak - before) / 2**20}


def cold_child() -> None:
    """In a fresh process: import, build, first Observation, first Bundle; prints JSON."""
    started = time.perf_counter()
    import server.fhir.validation  # noqa: F401 - timed: the import is part of a cold start

    imported = time.perf_counter()
    validator = build_validator()
    built = time.perf_counter()
    example = observations()[0]
    validator.validate(example, profiles=claimed(example))
    first = time.perf_counter()
    bundles = visit_bundles(1, 1)
    ready = time.perf_counter()
    validator.validate(bundles[0])
    bundle = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "import": imported - started,
                "build": built - imported,
                "first_obs": first - built,
                "first_bundle": bundle - ready,
                "rss": rss,
            }
        )
    )


def cold_starts(args: argparse.Namespace) -> dict[str, float]:
    """Medians over ``args.cold`` child processes of cold_child's timings."""
    runs = []
    command = [sys.executable, str(Path(__file__).resolve()), "--cold-child"]
    command += ["--cpu", str(args.cpu)]
    for _ in range(args.cold):
        child = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if child.returncode:
            raise RuntimeError(f"cold-start child failed:\n{child.stderr[-2000:]}")
        runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    found = re.search(r"VmRSS:\s*(\d+)", status)
    return int(found[1]) / 1024 if found else 0.0


def report(
    loads: dict[str, dict[str, Any]],
    results: dict[str, Any],
    memory: dict[str, float],
    cold: dict[str, float],
    args: argparse.Namespace,
    command: str,
) -> str:
    lines = [
        f"- Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- Command: `{command}`",
        f"- Machine: {args.machine}",
        f"- Commit: {git_commit()}",
        f"- Setup: in-process, one thread pinned to CPU {args.cpu}; the validator built as the"
        " server builds it (official R4 package + profiles/, snapshots generated); each"
        f" workload warmed {args.warmup} round(s), then {args.repeat} timed runs of at least"
        f" {args.seconds:g} s each, interleaved; medians, with the slowest and fastest run.",
        "",
    ]
    lines += [f"- `{name}`: {load['what']}" for name, load in loads.items()]
    lines += [
        "",
        "| Workload | Items/s | Resources/s | µs/resource | Slowest–fastest run, items/s"
        " | Resources/item | Errors found per round |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for name, load in loads.items():
        res = results[name]
        per_item = load["resources"]
        rate = res["median"] * per_item
        lines.append(
            f"| `{name}` | {res['median']:,.0f} | {rate:,.0f} | {1e6 / rate:,.0f}"
            f" | {res['low']:,.0f}–{res['high']:,.0f} | {per_item:.1f} | {res['errors']} |"
        )
    lines += [
        "",
        "A Bundle's resources count its entries and the Bundle itself; for the Bundle"
        " workloads Items/s is Bundles/s. Errors found: errors the validator reported in one"
        " round over the items (0 = the examples and the demo meet their profiles).",
        "",
        f"- Cold start (fresh process, median of {args.cold}): import"
        f" {cold['import'] * 1000:,.0f} ms, ConformanceSet + Validator"
        f" {cold['build'] * 1000:,.0f} ms, first ILP Observation"
        f" {cold['first_obs'] * 1000:,.0f} ms, then first visit Bundle"
        f" {cold['first_bundle'] * 1000:,.0f} ms; peak RSS {cold['rss']:,.0f} MiB.",
        f"- Memory: peak RSS of this run {memory['peak_rss']:,.0f} MiB (RSS"
        f" {memory['rss_before']:,.0f} MiB before the validator was built,"
        f" {memory['rss_warm']:,.0f} MiB once warm); the warm validator holds"
        f" {memory['held']:,.1f} MiB of Python objects"
        f" (tracemalloc: parsed definitions, snapshots, compiled trees, terminology caches;"
        f" {memory['peak']:,.1f} MiB at peak while warming).",
    ]
    rate = results["obs-ilp"]["median"]
    met = "met" if rate >= AIM else "NOT met"
    lines.append(
        f"- Aim of at least {AIM:,} Observations/s against their ILP profile on one core:"
        f" {met} ({rate:,.0f}/s)"
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per timed run")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per workload")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up rounds per workload")
    parser.add_argument("--bundles", type=int, default=20, help="distinct visit Bundles")
    parser.add_argument("--seed", type=int, default=1, help="of the demo district")
    parser.add_argument("--cold", type=int, default=3, help="cold-start processes")
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: first)")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs")
    parser.add_argument("--cold-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.machine = machine()  # before pinning: it counts the CPUs we may use
    allowed = sorted(os.sched_getaffinity(0))
    args.cpu = allowed[0] if args.cpu is None else args.cpu
    os.sched_setaffinity(0, {args.cpu})
    os.chdir(ROOT)
    if args.cold_child:
        cold_child()
        return
    command = " ".join([".venv/bin/python", "bench/validate.py", *sys.argv[1:]])
    print("cold starts", flush=True)
    cold = cold_starts(args)
    import server.demo.district  # noqa: F401 - loaded before the "RSS before" reading
    import server.fhir.validation  # noqa: F401

    rss_before = rss_mib()
    validator = build_validator()
    loads = workloads(validator, args)
    print(f"measuring {', '.join(loads)} ", end="", flush=True)
    results = measure(loads, args)
    memory = {
        "rss_before": rss_before,
        "rss_warm": rss_mib(),
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    described = {
        name: {"what": w["what"], "resources": w["resources"]} for name, w in loads.items()
    }
    del validator, loads
    memory.update(cache_memory(args))
    body = report(described, results, memory, cold, args, command)
    print("\n" + body)
    if not args.no_docs:
        write_docs_section(SECTION, body, keep=FINDINGS)
        print(f"updated {(ROOT / 'docs' / 'benchmarks.md').relative_to(ROOT)}")


if __name__ == "__main__":
    main()
