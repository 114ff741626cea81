"""``ilp import FILE [--format NAME]``: a register file into the local database or a server.

Without ``--url`` the rows are stored in-process through the services (the transactions of
``POST /fhir``, with the server's profile checks), so no server need run; with ``--url`` the
transactions are POSTed to that FHIR base.  The format is guessed from the columns when not
given; the old form ``ilp import FORMAT FILE`` still works.  Exit status: 0 when every row was
imported, 1 when a row was rejected or the import stopped, 2 for a usage error (an unknown
format, columns that fit no format or several).  See docs/formats.md#importing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mappers import FORMATS
from mappers.base import RecordError
from server.config import ConfigError, Settings

if TYPE_CHECKING:
    from mappers.importing import MappedFile, Send

BAR_WIDTH = 30


def add_parser(commands: Any, positive: Callable[[str], int]) -> None:
    """Register ``import`` on the ``ilp`` subcommands."""
    parser = commands.add_parser(
        "import", help="import a register file (docs/formats.md) into the database or a server"
    )
    parser.add_argument("file", metavar="FILE", help="CSV (header row), JSON or NDJSON")
    # The former ``ilp import FORMAT FILE``: then ``file`` holds the format.
    parser.add_argument("legacy_file", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument(
        "--format", choices=FORMATS, metavar="NAME", help=f"one of {', '.join(FORMATS)}"
    )
    parser.add_argument("--url", help="FHIR base to POST to (default: the local database)")
    parser.add_argument("--dry-run", action="store_true", help="print the Bundles only")
    parser.add_argument("--batch-size", type=positive, default=100, metavar="ROWS")
    parser.add_argument(
        "--all-or-nothing", action="store_true", help="import nothing when any row is rejected"
    )
    parser.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Import ``args.file``; the exit status (see the module docstring)."""
    from mappers import importing, mapper_for
    from mappers.reading import kind_of

    path, name = _target(args)
    if path is None:
        return 2
    try:
        kind = kind_of(path)
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, RecordError) as exc:
        print(f"ilp: {path}: {exc}", file=sys.stderr)
        return 2
    name = name or _guess(path, text, kind)
    if name is None:
        return 2
    mapped = importing.map_text(mapper_for(name), text, kind)
    for error in mapped.errors:
        print(f"{path}: {error}", file=sys.stderr)
    if args.dry_run:
        return _dry_run(path, name, mapped, args)
    try:
        send, close = _sender(settings, args.url)
    except ConfigError as exc:
        print(f"ilp: {exc}", file=sys.stderr)
        return 2
    bar = _bar(f"{path.name} ({name})") if sys.stderr.isatty() else None
    try:
        summary = importing.import_mapped(
            mapped,
            send,
            batch_size=args.batch_size,
            all_or_nothing=args.all_or_nothing,
            progress=bar,
        )
    finally:
        close()
    if bar is not None and summary.stopped:
        print(file=sys.stderr)  # end the bar's line where it stopped
    for error in summary.refused:
        print(f"{path}: {error}", file=sys.stderr)
    if summary.stopped:
        print(f"ilp: the import stopped: {summary.stopped}", file=sys.stderr)
    print(f"{path} ({name}): {summary.describe()}")
    return 1 if summary.rejected or summary.stopped else 0


def _target(args: argparse.Namespace) -> tuple[Path | None, str | None]:
    """The file and the format named, from either command form (None, None: usage error)."""
    if args.legacy_file is None:
        return Path(args.file), args.format
    if args.format is not None or args.file not in FORMATS:
        problem = "give one FILE" if args.format else f"unknown format {args.file!r}"
        known = ", ".join(FORMATS)
        print(f"ilp import: {problem}; name the format with --format ({known})", file=sys.stderr)
        return None, None
    return Path(args.legacy_file), args.file


def _guess(path: Path, text: str, kind: str) -> str | None:
    from mappers.guess import FormatUnknown, guess_file_format

    try:
        return guess_file_format(text, kind)
    except (RecordError, FormatUnknown) as exc:
        print(f"ilp: {path}: cannot tell the format: {exc}; give --format", file=sys.stderr)
        return None


def _dry_run(path: Path, name: str, mapped: MappedFile, args: argparse.Namespace) -> int:
    from mappers.importing import build_bundles
    from server.fhir import jsonio

    refuse = args.all_or_nothing and mapped.errors
    bundles = [] if refuse else build_bundles(mapped, args.batch_size)
    for bundle in bundles:
        print(jsonio.dumps(bundle, pretty=True).decode())
    rejected = len({e.row for e in mapped.errors})
    entries = sum(len(b["entry"]) for b in bundles)
    print(
        f"{path} ({name}): {mapped.read} rows read, {len(mapped.rows)} mapped, {rejected} "
        f"rejected; {entries} entries in {len(bundles)} Bundle(s)",
        file=sys.stderr,
    )
    return 1 if mapped.errors else 0


def _sender(settings: Settings, url: str | None) -> tuple[Send, Callable[[], None]]:
    """Where the transactions go, and how to let go of it afterwards.

    ConfigError when the local database is not migrated, or profile enforcement lacks its
    definitions (as at server start).
    """
    from mappers import remote

    if url:
        return remote.sender(url), lambda: None
    from sqlalchemy import inspect

    from server.services.context import ServiceContext
    from server.services.operations.import_records import local_sender
    from server.storage.db import create_db_engine

    context = ServiceContext(settings, create_db_engine(settings))
    if not inspect(context.engine).has_table("resource"):
        context.engine.dispose()
        raise ConfigError("the database has no FHIR tables yet: run `ilp db upgrade` first")
    if context.validation.on_write:
        context.validation.require_definitions()
    return local_sender(context), context.engine.dispose


def _bar(label: str) -> Callable[[int, int], None]:
    """A progress bar on stderr, redrawn in place; a newline once complete."""

    def draw(done: int, total: int) -> None:
        filled = int(BAR_WIDTH * done / total) if total else BAR_WIDTH
        print(
            f"\r{label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done:,}/{total:,} rows",
            end="\n" if done >= total else "",
            file=sys.stderr,
            flush=True,
        )

    return draw
