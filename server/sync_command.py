"""``ilp sync run|once|status|retry``: the store-and-forward worker and its operator view.

``run`` keeps sending until stopped (SIGTERM or Ctrl-C finish the resource in flight);
``once`` sends everything due now and exits (cron, tests); ``status`` prints rows per
state and the problems with their reasons; ``retry`` puts failed and parked rows back in
the queue after a fix.  See docs/sync.md.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

from server.config import Settings


def add_parser(commands: Any) -> None:
    """Register ``sync`` on the ``ilp`` subcommands."""
    sync = commands.add_parser("sync", help="send what was written here to the upstream platform")
    actions = sync.add_subparsers(required=True)
    run = actions.add_parser("run", help="keep sending until stopped")
    run.add_argument("--idle", type=float, default=2.0, metavar="SECONDS", help="wait when idle")
    run.set_defaults(handler=_run)
    actions.add_parser("once", help="send everything due now, then exit").set_defaults(
        handler=_once
    )
    status = actions.add_parser("status", help="rows per state and the problems")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.add_argument("--limit", type=int, default=20, metavar="N", help="problems shown")
    status.set_defaults(handler=_status)
    retry = actions.add_parser("retry", help="queue failed and parked rows again")
    retry.add_argument(
        "--id", dest="seqs", type=int, action="append", metavar="SEQ", help="only this row"
    )
    retry.set_defaults(handler=_retry)


def _context(settings: Settings) -> Any:
    from server.services.context import ServiceContext
    from server.storage.db import create_db_engine

    return ServiceContext(settings, create_db_engine(settings))


def _run(settings: Settings, args: argparse.Namespace) -> int:
    from server.services import sync

    stopping = False

    def stop(_signal: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker = sync.worker(_context(settings))
    print(f"ilp sync: sending to {settings.upstream_url}", flush=True)
    worker.run(lambda: stopping, args.idle)
    return 0


def _once(settings: Settings, _args: argparse.Namespace) -> int:
    from server.services import sync

    worker = sync.worker(_context(settings))
    worker.release_dead_claims()
    report = worker.drain()
    print(
        f"sent {report.sent:,}, postponed {report.postponed:,}, failed {report.failed:,}, "
        f"parked {report.parked:,}"
    )
    return 0


def _status(settings: Settings, args: argparse.Namespace) -> int:
    from server.services import sync

    found = sync.status(_context(settings), args.limit)
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=False))
        return 0
    print(f"upstream: {found['upstream'] or '(ILP_UPSTREAM_URL not set)'}")
    print("outbox:   " + ", ".join(f"{state} {n:,}" for state, n in found["outbox"].items()))
    print(f"mapped:   {found['mapped']:,} resources have an upstream id")
    for problem in found["problems"]:
        print(
            f"  #{problem['seq']} {problem['resource']} {problem['state']} "
            f"(attempts {problem['attempts']}): {problem['reason']}"
        )
    return 0


def _retry(settings: Settings, args: argparse.Namespace) -> int:
    from server.services import sync

    count = sync.requeue(_context(settings), args.seqs)
    print(f"queued again: {count:,}", file=sys.stderr)
    return 0
