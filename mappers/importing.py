"""Importing a register file: read, check and map every row, then store it in transactions.

Rows are validated against the format's JSON Schema, then mapped; a row that fails either is
reported with its row number and field and left out.  The rows that map are sorted by the
mapper's rank (parents before children; mothers before their babies) and grouped into
transaction Bundles of ``batch_size`` rows (https://hl7.org/fhir/R4/http.html#transaction).
``import_mapped`` sends them through any ``Send`` (the local services, or a remote server:
``mappers.remote``); a row the server refuses is reported and its Bundle sent again without it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mappers.base import Entry, Mapper, RecordError, entry_key
from mappers.reading import Row, check_record, load_schema, read_records, read_text
from server.fhir import storage_codes

_ENTRY = re.compile(r"^Bundle\.entry\[(\d+)\]")

Send = Callable[[dict[str, Any]], dict[str, Any]]  # transaction -> transaction-response
Progress = Callable[[int, int], None]  # (rows done, rows to send)


@dataclass
class MappedFile:
    """The entries of each row that mapped (row number -> entries) and the rows' errors."""

    rows: dict[int, list[Entry]] = field(default_factory=dict)
    errors: list[RecordError] = field(default_factory=list)
    ranks: dict[int, int] = field(default_factory=dict)

    @property
    def read(self) -> int:
        return len(self.rows) + len({e.row for e in self.errors})


@dataclass(frozen=True)
class Batch:
    """One transaction Bundle and, for each of its entries, the row it came from."""

    bundle: dict[str, Any]
    entry_rows: tuple[int, ...]


@dataclass
class ImportSummary:
    """What an import did: rows read, rejected and stored; resources by outcome."""

    read: int
    errors: list[RecordError]  # rows rejected while reading and mapping
    refused: list[RecordError] = field(default_factory=list)  # rows the server refused
    imported: int = 0  # rows stored
    outcomes: Counter[str] = field(default_factory=Counter)  # created, updated, unchanged
    bundles: int = 0
    stopped: str | None = None  # why the import stopped before the end (server unreachable)

    @property
    def rejected(self) -> int:
        return len({e.row for e in [*self.errors, *self.refused]})

    def describe(self) -> str:
        """``6 rows read, 1 rejected, 5 imported; 10 created, 0 updated, 0 unchanged``."""
        counts = self.outcomes
        return (
            f"{self.read} rows read, {self.rejected} rejected, {self.imported} imported; "
            f"{counts['created']} created, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged"
        )


# What a server takes in one transaction unless told otherwise (ILP_MAX_BUNDLE_ENTRIES).
MAX_ENTRIES = 1000


def entry_index(expression: object) -> int | None:
    """The entry an OperationOutcome expression such as ``Bundle.entry[3].resource`` names."""
    match = _ENTRY.match(expression) if isinstance(expression, str) else None
    return int(match[1]) if match else None


class ImportFailed(Exception):
    """The server refused a transaction as a whole, or could not be reached."""


class BundleRefused(ImportFailed):
    """The server refused a transaction because of one entry (its index in the Bundle)."""

    def __init__(self, message: str, entry: int, code: str = "processing") -> None:
        super().__init__(message)
        self.entry = entry
        self.code = code


class RowRefused(RecordError):
    """A row whose resources the server refused; ``code`` is the server's issue code."""

    def __init__(self, row: int, message: str, code: str) -> None:
        super().__init__(row, "", message)
        self.code = code


def map_file(mapper: Mapper, path: Path) -> MappedFile:
    """Every row of ``path`` checked and mapped; a file that cannot be read is one error."""
    return _map(mapper, lambda schema: read_records(path, schema))


def map_text(mapper: Mapper, text: str, kind: str) -> MappedFile:
    """Every row of ``text`` (a file of ``kind``: csv, ndjson or json) checked and mapped."""
    return _map(mapper, lambda schema: read_text(text, kind, schema))


def _map(mapper: Mapper, rows: Callable[[dict[str, Any]], Iterator[Row]]) -> MappedFile:
    validator = load_schema(mapper.schema_path)
    result = MappedFile()
    seen: dict[str, int] = {}
    shared: dict[str, tuple[int, Any]] = {}
    try:
        for row, record in rows(validator.schema):
            if isinstance(record, RecordError):
                result.errors.append(record)
                continue
            if errors := check_record(validator, row, record):
                result.errors += errors
                continue
            try:
                entries = mapper.map(record)
            except RecordError as exc:
                result.errors.append(exc.at(row))
                continue
            # Two rows for one resident or facility would race each other in one transaction.
            shared_types: frozenset[str] = getattr(mapper, "shared", frozenset())
            own = [e for e in entries if e["resource"]["resourceType"] not in shared_types]
            key = entry_key(own[0])  # the row's main resource (its others follow it)
            if key in seen:
                result.errors.append(RecordError(row, "", f"same record as row {seen[key]}"))
                continue
            # A resource several rows share (the kader of a Posyandu sheet) must agree.
            if problem := _disagreement(entries, own, shared):
                result.errors.append(RecordError(row, "", problem))
                continue
            for entry in entries:
                if entry not in own:
                    shared.setdefault(entry_key(entry), (row, entry["resource"]))
            seen[key] = row
            result.rows[row] = entries
            result.ranks[row] = mapper.rank(record)
    except RecordError as exc:
        result.errors.append(exc)
    return result


def build_bundles(mapped: MappedFile, batch_size: int = 100) -> list[dict[str, Any]]:
    """Transaction Bundles of at most ``batch_size`` rows each, in rank order."""
    rows = ordered_rows(mapped)
    return [
        build_batch(mapped, rows[start : start + batch_size]).bundle
        for start in range(0, len(rows), batch_size)
    ]


def ordered_rows(mapped: MappedFile) -> list[int]:
    """The rows that mapped, in the order they must be stored (rank, then row)."""
    return sorted(mapped.rows, key=lambda row: (mapped.ranks[row], row))


def build_batch(mapped: MappedFile, rows: list[int]) -> Batch:
    """The transaction of ``rows`` (in that order) and the row of each entry."""
    entries, entry_rows, urls = [], [], set()
    for row in rows:
        for entry in mapped.rows[row]:
            # A resource shared by rows (checked equal by map_file) is written once.
            if entry_key(entry) not in urls:
                urls.add(entry_key(entry))
                entries.append(entry)
                entry_rows.append(row)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    return Batch(bundle, tuple(entry_rows))


def import_mapped(
    mapped: MappedFile,
    send: Send,
    *,
    batch_size: int = 100,
    max_entries: int = MAX_ENTRIES,
    all_or_nothing: bool = False,
    progress: Progress | None = None,
) -> ImportSummary:
    """Store the rows of ``mapped`` through ``send``, in transactions of ``batch_size`` rows
    and at most ``max_entries`` entries (a visit row may give a dozen).

    A row whose entry the server refuses (BundleRefused) is reported and its transaction sent
    again without it (rows that needed it fail in turn).  ``all_or_nothing`` sends nothing
    when a row was rejected, and otherwise every row in one transaction.  ImportFailed for a
    transaction as a whole stops the import (``stopped``); the rows stored before stay.
    """
    summary = ImportSummary(mapped.read, list(mapped.errors))
    if all_or_nothing and mapped.errors:
        return summary
    rows = ordered_rows(mapped)
    chunks = [rows] if all_or_nothing else _chunks(mapped, rows, batch_size, max_entries)
    done = 0
    for chunk in chunks:
        try:
            _store(mapped, chunk, send, summary, retry=not all_or_nothing)
        except ImportFailed as exc:
            summary.stopped = str(exc)
            break
        done += len(chunk)
        if progress is not None:
            progress(done, len(rows))
    return summary


def _chunks(
    mapped: MappedFile, rows: list[int], batch_size: int, max_entries: int
) -> list[list[int]]:
    """``rows`` cut into runs of at most ``batch_size`` rows and ``max_entries`` entries."""
    chunks: list[list[int]] = [[]]
    entries = 0
    for row in rows:
        size = len(mapped.rows[row])
        if chunks[-1] and (len(chunks[-1]) >= batch_size or entries + size > max_entries):
            chunks.append([])
            entries = 0
        chunks[-1].append(row)
        entries += size
    return chunks if chunks[0] else []


def _store(
    mapped: MappedFile, chunk: list[int], send: Send, summary: ImportSummary, *, retry: bool
) -> None:
    """Send one transaction of ``chunk``, leaving out each row the server refuses."""
    while chunk:
        batch = build_batch(mapped, chunk)
        try:
            response = send(batch.bundle)
        except BundleRefused as refused:
            if not 0 <= refused.entry < len(batch.entry_rows):
                raise
            row = batch.entry_rows[refused.entry]
            summary.refused.append(RowRefused(row, str(refused), refused.code))
            if not retry:
                return
            chunk = [r for r in chunk if r != row]
            continue
        summary.bundles += 1
        summary.imported += len(chunk)
        summary.outcomes += count_outcomes(response)
        return


def count_outcomes(response: dict[str, Any]) -> Counter[str]:
    """How many entries of a transaction-response were created (201), updated (200), or found
    unchanged (200 with a no-change code in ``response.outcome``)."""
    counts: Counter[str] = Counter()
    for entry in response.get("entry", []):
        answer = entry.get("response", {})
        if str(answer.get("status", "")).startswith("201"):
            counts["created"] += 1
        elif _no_change(answer.get("outcome")):
            counts["unchanged"] += 1
        else:
            counts["updated"] += 1
    return counts


def _no_change(outcome: Any) -> bool:
    if not isinstance(outcome, dict):
        return False
    return any(
        coding.get("system") == storage_codes.SYSTEM
        and coding.get("code") in storage_codes.NO_CHANGE
        for issue in outcome.get("issue", [])
        for coding in (issue.get("details") or {}).get("coding", [])
    )


def _disagreement(
    entries: list[Entry], own: list[Entry], shared: dict[str, tuple[int, Any]]
) -> str | None:
    """Why a shared entry of this row contradicts the one an earlier row gave, or None."""
    for entry in entries:
        url = entry_key(entry)
        if entry not in own and url in shared and shared[url][1] != entry["resource"]:
            return f"{url} differs from row {shared[url][0]}"
    return None
