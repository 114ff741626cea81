"""Telling a register's format from its columns, when the user does not name it.

A format fits a file when the file has every column the format's JSON Schema requires (and
one column of each ``anyOf`` of ``required`` alternatives, such as ``nik`` or ``nik_ibu``) and
the schema knows every column of the file.  Formats with the same columns (the Posyandu sheets
after balita, told apart by the ages they are for) are then told apart by their rows: the one
whose schema and mapper accept the most of the first rows, if only one does.  Everything is
read from the schemas and mappers, so a format added to ``mappers.FORMATS`` takes part without
any change here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from itertools import islice
from typing import Any

import orjson

# The package, not its names: mappers.codes imports the server package, which imports this
# module (through $import-records) while mappers/__init__.py may still be running.
import mappers
from mappers.base import RecordError
from mappers.reading import check_record, columns_of, load_schema, read_text

SAMPLE_ROWS = 20  # the rows that decide between formats with the same columns


@dataclass(frozen=True)
class Fit:
    """How well the columns of a file fit one format."""

    name: str
    missing: tuple[str, ...]  # required columns absent ("nik or nik_ibu" for alternatives)
    unknown: tuple[str, ...]  # columns of the file that the format does not have

    @property
    def fits(self) -> bool:
        return not self.missing and not self.unknown

    def describe(self) -> str:
        """``sasaran: lacks nama; does not know berat`` (or ``sasaran: fits``)."""
        problems = []
        if self.missing:
            problems.append(f"lacks {', '.join(self.missing)}")
        if self.unknown:
            problems.append(f"does not know {', '.join(self.unknown)}")
        return f"{self.name}: {'; '.join(problems) or 'fits'}"


class FormatUnknown(Exception):
    """No format, or more than one, fits the columns; ``fits`` says how each format fared."""

    def __init__(self, message: str, fits: list[Fit]) -> None:
        super().__init__(message)
        self.fits = fits


def guess_format(columns: Iterable[str], formats: Iterable[str] | None = None) -> str:
    """The one format among ``formats`` (default: all) that the columns fit; FormatUnknown
    otherwise."""
    columns = list(columns)
    fits = [fit_of(name, columns) for name in (mappers.FORMATS if formats is None else formats)]
    matching = [fit.name for fit in fits if fit.fits]
    if len(matching) == 1:
        return matching[0]
    shown = ", ".join(columns)
    if matching:
        raise FormatUnknown(
            f"the columns ({shown}) fit several formats: {', '.join(matching)}; name one", fits
        )
    reasons = "; ".join(f"[{fit.describe()}]" for fit in fits)
    raise FormatUnknown(f"the columns ({shown}) fit no format: {reasons}", fits)


def guess_file_format(text: str, kind: str) -> str:
    """The format of a file (``kind``: csv, ndjson or json) from its columns, and its first
    rows when several formats have those columns.

    FormatUnknown when no format fits, or several accept the rows alike; RecordError when the
    file has no header row or records.
    """
    try:
        return guess_format(columns_of(text, kind))
    except FormatUnknown as exc:
        candidates = [fit.name for fit in exc.fits if fit.fits]
        if len(candidates) < 2:
            raise
        accepted = {name: _accepted_rows(name, text, kind) for name in candidates}
        best = max(accepted.values())
        if best > 0 and list(accepted.values()).count(best) == 1:
            return next(name for name, count in accepted.items() if count == best)
        shown = ", ".join(f"{name} {count}" for name, count in accepted.items())
        raise FormatUnknown(
            f"{exc}: they accept alike the first {SAMPLE_ROWS} rows ({shown})", exc.fits
        ) from None


def fit_of(name: str, columns: Iterable[str]) -> Fit:
    """How the columns fit format ``name``."""
    required, alternatives, known = _columns(name)
    present = set(columns)
    missing = [column for column in required if column not in present]
    missing += [
        " or ".join(", ".join(group) for group in choice)
        for choice in alternatives
        if not any(set(group) <= present for group in choice)
    ]
    unknown = tuple(column for column in dict.fromkeys(columns) if column not in known)
    return Fit(name, tuple(missing), unknown)


@cache
def _columns(
    name: str,
) -> tuple[tuple[str, ...], tuple[tuple[tuple[str, ...], ...], ...], frozenset[str]]:
    """Required columns, ``anyOf`` groups of required columns, and all columns of a format."""
    schema = orjson.loads(mappers.mapper_for(name).schema_path.read_bytes())
    required = tuple(schema.get("required", ()))
    alternatives = tuple(_alternatives(schema))
    return required, alternatives, frozenset(schema.get("properties", {}))


def _alternatives(schema: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], ...]]:
    """Each unconditional ``anyOf`` whose branches only require columns (top level or allOf)."""
    for part in [schema, *schema.get("allOf", ())]:
        branches = part.get("anyOf")
        if branches and all(set(branch) == {"required"} for branch in branches):
            yield tuple(tuple(branch["required"]) for branch in branches)


def _accepted_rows(name: str, text: str, kind: str) -> int:
    """How many of the first rows format ``name`` checks and maps without an error."""
    mapper = mappers.mapper_for(name)
    validator = load_schema(mapper.schema_path)
    rows = islice(read_text(text, kind, validator.schema), SAMPLE_ROWS)
    accepted = 0
    while True:
        try:
            row, record = next(rows)
        except (StopIteration, RecordError):  # the end, or a file that cannot be read
            return accepted
        if isinstance(record, RecordError) or check_record(validator, row, record):
            continue
        try:
            mapper.map(record)
        except RecordError:
            continue
        accepted += 1
