"""The ``ilp`` command: database, conformance resources, FHIR packages, demo data, serving.

``ilp db upgrade`` · ``ilp profiles load [DIR]`` · ``ilp profiles snapshot [DIR]``
· ``ilp validate FILE...`` · ``ilp package fetch`` · ``ilp demo load`` · ``ilp reindex``
· ``ilp import FILE [--format NAME]`` (``server/import_command.py``)
· ``ilp sync run|once|status|retry`` (``server/sync_command.py``)
· ``ilp clients add|list|revoke`` (``server/clients_command.py``) · ``ilp serve``
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from server import clients_command, import_command, sync_command
from server.config import ConfigError, Settings
from server.demo.district import DEFAULT_SEED, PRESETS
from server.errors import FhirError

if TYPE_CHECKING:
    from server.services.demo import LoadReport

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"ilp: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(message)s")
    try:
        result: int = args.handler(settings, args)
        return result
    except FhirError as exc:
        print(f"ilp: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ilp", description="ILP Gateway FHIR server")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    db = commands.add_parser("db", help="database schema").add_subparsers(required=True)
    db.add_parser("upgrade", help="apply the migrations").set_defaults(handler=_db_upgrade)
    db.add_parser(
        "analyze", help="refresh planner statistics (demo load and reindex do it too)"
    ).set_defaults(handler=_db_analyze)

    profiles = commands.add_parser("profiles", help="ILP conformance resources")
    profile_commands = profiles.add_subparsers(required=True)
    load = profile_commands.add_parser("load", help="load a FHIR package")
    load.add_argument("directory", nargs="?", help="package folder (default ILP_PROFILES_DIR)")
    load.set_defaults(handler=_profiles_load)
    snapshot = profile_commands.add_parser(
        "snapshot", help="write the snapshot of every StructureDefinition from its differential"
    )
    snapshot.add_argument("directory", nargs="?", help="package folder (default ILP_PROFILES_DIR)")
    snapshot.set_defaults(handler=_profiles_snapshot)

    validate = commands.add_parser(
        "validate", help="validate resource files offline (no server, no database)"
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="JSON resources or Bundles")
    validate.add_argument("--profile", metavar="URL", help="also validate against this profile")
    validate.add_argument(
        "--with",
        dest="supporting",
        action="append",
        default=[],
        metavar="FILE_OR_DIR",
        help="load StructureDefinitions, ValueSets and CodeSystems (files, Bundles, folders)",
    )
    validate.add_argument("--json", action="store_true", help="print the OperationOutcome")
    validate.set_defaults(handler=_validate)

    package = commands.add_parser("package", help="official FHIR packages")
    fetch = package.add_subparsers(required=True).add_parser(
        "fetch", help="npm pack into the cache"
    )
    fetch.set_defaults(handler=_package_fetch)

    demo = commands.add_parser("demo", help="synthetic ILP demo district")
    demo_commands = demo.add_subparsers(required=True)
    demo_load = demo_commands.add_parser(
        "load", help="generate the demo district and store it (loading twice changes nothing)"
    )
    demo_load.add_argument("--preset", choices=sorted(PRESETS), default="small")
    demo_load.add_argument(
        "--observations", type=_positive, metavar="N", help="add families until N Observations"
    )
    demo_load.add_argument("--seed", type=int, default=DEFAULT_SEED)
    demo_load.add_argument("--batch-size", type=_positive, default=500, metavar="N")
    demo_load.add_argument(
        "--validate",
        action="store_true",
        help="validate each resource first: structure, and the profiles of ILP_ENFORCE_PROFILES",
    )
    demo_load.set_defaults(handler=_demo_load)
    demo_export = demo_commands.add_parser(
        "export", help="write the demo district as register and sheet files (docs/formats.md)"
    )
    demo_export.add_argument("folder", metavar="FOLDER", help="where {format}.csv are written")
    demo_export.add_argument("--preset", choices=sorted(PRESETS), default="small")
    demo_export.add_argument(
        "--observations", type=_positive, metavar="N", help="add families until N Observations"
    )
    demo_export.add_argument("--seed", type=int, default=DEFAULT_SEED)
    demo_export.add_argument(
        "--import",
        dest="then_import",
        action="store_true",
        help="then import every file, in order, as `ilp import` does",
    )
    demo_export.add_argument("--url", help="with --import: FHIR base to POST to (default: local)")
    demo_export.set_defaults(handler=_demo_export)

    indicators = commands.add_parser("indicators", help="the PWS indicators (docs/indicators.md)")
    indicators.add_subparsers(required=True).add_parser(
        "count", help="count every month holding data now, not on the first page that shows it"
    ).set_defaults(handler=_indicators_count)

    reindex = commands.add_parser(
        "reindex", help="make stored SearchParameters searchable (resumable)"
    )
    reindex.add_argument("--batch-size", type=_positive, default=500, metavar="N")
    reindex.add_argument(
        "--settle-seconds",
        type=float,
        default=None,
        metavar="S",
        help="wait before scanning, for running workers to start indexing (default 10)",
    )
    reindex.set_defaults(handler=_reindex)

    import_command.add_parser(commands, _positive)
    sync_command.add_parser(commands)
    clients_command.add_parser(commands)

    serve = commands.add_parser("serve", help="serve the API with gunicorn")
    serve.set_defaults(handler=_serve)
    return parser


def _db_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    from server.storage import migrate
    from server.storage.db import create_db_engine

    migrate.upgrade(create_db_engine(settings))
    print(f"database at {_safe_url(settings.database_url)} is up to date")
    return 0


def _db_analyze(settings: Settings, _args: argparse.Namespace) -> int:
    from server.storage.db import analyze, create_db_engine

    analyze(create_db_engine(settings))
    print(f"statistics of {_safe_url(settings.database_url)} refreshed")
    return 0


def _profiles_load(settings: Settings, args: argparse.Namespace) -> int:
    from server.services import conformance
    from server.services.context import ServiceContext
    from server.storage.db import create_db_engine

    directory = args.directory or settings.profiles_dir
    context = ServiceContext(settings, create_db_engine(settings))
    report = conformance.load_package(context, directory)
    print(f"{directory}: {report.stored} stored, {report.unchanged} unchanged")
    return 0


def _profiles_snapshot(settings: Settings, args: argparse.Namespace) -> int:
    from server.fhir import packages
    from server.fhir.validation.snapshot import write_snapshots

    directory = args.directory or settings.profiles_dir
    official = packages.package_folder(settings.package_cache, packages.R4_EXAMPLES)
    if not (official / "package.json").exists():
        print(f"ilp: {official} is missing; run `ilp package fetch`", file=sys.stderr)
        return 1
    report = write_snapshots(directory, [official])
    for path in report.written:
        print(f"wrote the snapshot of {path}")
    print(f"{directory}: {len(report.written)} snapshots written, {report.unchanged} unchanged")
    return 0


def _validate(settings: Settings, args: argparse.Namespace) -> int:
    from server.errors import operation_outcome
    from server.fhir import jsonio
    from server.services import validation

    try:
        checks = validation.ProfileValidation(settings, validation.read_supporting(args.supporting))
        checks.require_definitions()
    except ConfigError as exc:
        print(f"ilp: {exc}", file=sys.stderr)
        return 2
    reports = validation.validate_files(checks, args.files, args.profile)
    if args.json:
        outcomes = [operation_outcome(validation.outcome_issues(r.issues)) for r in reports]
        entries = [
            {"fullUrl": r.uri, "resource": o} for r, o in zip(reports, outcomes, strict=True)
        ]
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
        print(jsonio.dumps(outcomes[0] if len(reports) == 1 else bundle, pretty=True).decode())
    else:
        for report in reports:
            for issue in report.issues:
                where = f" {', '.join(issue.expression)}" if issue.expression else ""
                print(f"{report.path}: {issue.severity}{where}: {issue.diagnostics}")
        counts = Counter(i.severity for r in reports for i in r.issues)
        failed = sum(1 for r in reports if r.failed)
        print(
            f"{len(reports)} file(s): {failed} with errors; {counts['fatal'] + counts['error']} "
            f"error(s), {counts['warning']} warning(s), {counts['information']} information"
        )
    return 1 if any(r.failed for r in reports) else 0


def _package_fetch(settings: Settings, _args: argparse.Namespace) -> int:
    from server.fhir import packages

    folder = packages.fetch(settings.package_cache, packages.R4_EXAMPLES)
    print(f"{packages.R4_EXAMPLES} is in {folder}")
    return 0


def _demo_load(settings: Settings, args: argparse.Namespace) -> int:
    from server.services import demo, indicators
    from server.services.context import ServiceContext
    from server.storage.db import analyze, create_db_engine

    size = PRESETS[args.preset]
    if args.observations is not None:
        size = dataclasses.replace(size, observations=args.observations)
    context = ServiceContext(settings, create_db_engine(settings))
    report = demo.load_demo(
        context,
        size,
        args.seed,
        batch_size=args.batch_size,
        validate=args.validate,
        on_progress=_ProgressLine(),
    )
    if report.written:
        analyze(context.engine)
        indicators.count_all(context)  # the dashboard's first page need not count the load
    written = ", ".join(f"{n:,} {t}" for t, n in sorted(report.written_by_type.items()))
    print(
        f"demo district ({args.preset}, seed {args.seed}): {report.written:,} written, "
        f"{report.unchanged:,} unchanged in {report.seconds:.1f} s ({report.rate:,.0f}/s)"
        + (f"; {written}" if written else "")
    )
    return 0


def _demo_export(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from mappers import FORMATS
    from mappers.demo_records import write_files
    from server.demo import district

    size = PRESETS[args.preset]
    if args.observations is not None:
        size = dataclasses.replace(size, observations=args.observations)
    files, counts = write_files(district.generate(size, args.seed), Path(args.folder))
    ordered = sorted(files, key=FORMATS.index)  # the order to import them in
    for name in ordered:
        print(f"{files[name]}: {counts[name]:,} rows ({name})")
    status = 0
    for name in ordered if args.then_import else ():
        one_file = argparse.Namespace(
            file=str(files[name]), legacy_file=None, format=name, url=args.url,
            dry_run=False, batch_size=100, all_or_nothing=False,
        )  # fmt: skip
        status = max(status, import_command.run(settings, one_file))
    return status


def _indicators_count(settings: Settings, _args: argparse.Namespace) -> int:
    from server.services import indicators
    from server.services.context import ServiceContext
    from server.storage.db import create_db_engine

    started = time.perf_counter()
    counted = indicators.count_all(ServiceContext(settings, create_db_engine(settings)))
    print(f"{len(counted)} months counted in {time.perf_counter() - started:.1f} s")
    return 0


def _reindex(settings: Settings, args: argparse.Namespace) -> int:
    from server.services.context import ServiceContext
    from server.services.reindex import Progress, reindex
    from server.storage.db import analyze, create_db_engine

    def bar(progress: Progress) -> None:
        share = progress.done / progress.total if progress.total else 1.0
        filled = int(share * 30)
        print(
            f"\rreindex {', '.join(progress.params)} [{'#' * filled}{'.' * (30 - filled)}] "
            f"{progress.done:,}/{progress.total:,}",
            end="",
            file=sys.stderr,
            flush=True,
        )

    context = ServiceContext(settings, create_db_engine(settings))
    settle = {} if args.settle_seconds is None else {"settle_seconds": args.settle_seconds}
    report = reindex(context, batch_size=args.batch_size, progress=bar, **settle)
    if report.resources:
        analyze(context.engine)
    if report.activated:
        print(file=sys.stderr)
    for line in report.skipped:
        print(f"skipped SearchParameter/{line}", file=sys.stderr)
    activated = ", ".join(report.activated) or "nothing new"
    print(f"reindexed {report.resources:,} resources; active: {activated}")
    return 0


class _ProgressLine:
    """Prints where a load stands every few seconds."""

    EVERY_SECONDS = 5.0

    def __init__(self) -> None:
        self._next = time.monotonic() + self.EVERY_SECONDS

    def __call__(self, report: LoadReport) -> None:
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self.EVERY_SECONDS
        print(
            f"demo: {report.processed:,} resources ({report.written:,} written, "
            f"{report.unchanged:,} unchanged), {report.rate:,.0f}/s",
            flush=True,
        )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _serve(settings: Settings, _args: argparse.Namespace) -> int:
    host = settings.host
    if not settings.auth:
        # Without authentication anyone who reaches the port reads and writes health records.
        logger.warning(
            "!!! ILP_AUTH is off: every request is trusted, no token asked, nothing audited. "
            "Serving on loopback (127.0.0.1) only. Never run a real facility like this; "
            "see docs/security.md !!!"
        )
        host = "127.0.0.1"
    bind = f"{host}:{settings.port}"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        bind,
        "--workers",
        str(settings.workers),
        "--access-logfile",
        "-",
        "--no-control-socket",
        "server:create_app()",
    ]
    print(f"serving FHIR at {settings.fhir_base} (gunicorn on {bind})", flush=True)
    os.execv(sys.executable, command)
    return 0  # not reached


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
