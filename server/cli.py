"""The ``ilp`` command: database, conformance resources, FHIR packages, serving.

``ilp db upgrade`` · ``ilp profiles load [DIR]`` · ``ilp package fetch`` · ``ilp serve``
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from server.config import ConfigError, Settings
from server.errors import FhirError

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

    profiles = commands.add_parser("profiles", help="ILP conformance resources")
    load = profiles.add_subparsers(required=True).add_parser("load", help="load a FHIR package")
    load.add_argument("directory", nargs="?", help="package folder (default ILP_PROFILES_DIR)")
    load.set_defaults(handler=_profiles_load)

    package = commands.add_parser("package", help="official FHIR packages")
    fetch = package.add_subparsers(required=True).add_parser(
        "fetch", help="npm pack into the cache"
    )
    fetch.set_defaults(handler=_package_fetch)

    serve = commands.add_parser("serve", help="serve the API with gunicorn")
    serve.set_defaults(handler=_serve)
    return parser


def _db_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    from server.storage import migrate
    from server.storage.db import create_db_engine

    migrate.upgrade(create_db_engine(settings))
    print(f"database at {_safe_url(settings.database_url)} is up to date")
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


def _package_fetch(settings: Settings, _args: argparse.Namespace) -> int:
    from server.fhir import packages

    folder = packages.fetch(settings.package_cache, packages.R4_EXAMPLES)
    print(f"{packages.R4_EXAMPLES} is in {folder}")
    return 0


def _serve(settings: Settings, _args: argparse.Namespace) -> int:
    bind = f"{settings.host}:{settings.port}"
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
