"""Importing a register file: read, check and map every row, then batch into transactions.

Rows are validated against the format's JSON Schema, then mapped; a row that fails either is
reported with its row number and field and left out.  The rows that map are sorted by the
mapper's rank (parents before children; mothers before their babies) and grouped into
transaction Bundles of ``batch_size`` rows (https://hl7.org/fhir/R4/http.html#transaction).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from mappers.base import Entry, Mapper, RecordError
from mappers.reading import check_record, load_schema, read_records

FHIR_JSON = "application/fhir+json"


@dataclass
class MappedFile:
    """The entries of each row that mapped (row number -> entries) and the rows' errors."""

    rows: dict[int, list[Entry]] = field(default_factory=dict)
    errors: list[RecordError] = field(default_factory=list)
    ranks: dict[int, int] = field(default_factory=dict)

    @property
    def read(self) -> int:
        return len(self.rows) + len({e.row for e in self.errors})


def map_file(mapper: Mapper, path: Path) -> MappedFile:
    """Every row of ``path`` checked and mapped; a file that cannot be read is one error."""
    validator = load_schema(mapper.schema_path)
    result = MappedFile()
    seen: dict[str, int] = {}
    shared: dict[str, tuple[int, Any]] = {}
    try:
        for row, record in read_records(path, validator.schema):
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
            key = own[0]["request"]["url"]  # the row's main resource (its others follow it)
            if key in seen:
                result.errors.append(RecordError(row, "", f"same record as row {seen[key]}"))
                continue
            # A resource several rows share (the kader of a Posyandu sheet) must agree.
            if problem := _disagreement(entries, own, shared):
                result.errors.append(RecordError(row, "", problem))
                continue
            for entry in entries:
                if entry not in own:
                    shared.setdefault(entry["request"]["url"], (row, entry["resource"]))
            seen[key] = row
            result.rows[row] = entries
            result.ranks[row] = mapper.rank(record)
    except RecordError as exc:
        result.errors.append(exc)
    return result


def build_bundles(mapped: MappedFile, batch_size: int = 100) -> list[dict[str, Any]]:
    """Transaction Bundles of at most ``batch_size`` rows each, in rank order."""
    rows = sorted(mapped.rows, key=lambda row: (mapped.ranks[row], row))
    bundles = []
    for start in range(0, len(rows), batch_size):
        entries, urls = [], set()
        for row in rows[start : start + batch_size]:
            for entry in mapped.rows[row]:
                # A resource shared by rows (checked equal by map_file) is written once.
                if entry["request"]["url"] not in urls:
                    urls.add(entry["request"]["url"])
                    entries.append(entry)
        bundles.append({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    return bundles


def _disagreement(
    entries: list[Entry], own: list[Entry], shared: dict[str, tuple[int, Any]]
) -> str | None:
    """Why a shared entry of this row contradicts the one an earlier row gave, or None."""
    for entry in entries:
        url = entry["request"]["url"]
        if entry not in own and url in shared and shared[url][1] != entry["resource"]:
            return f"{url} differs from row {shared[url][0]}"
    return None


def post_bundle(base_url: str, bundle: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
    """POST a transaction to the FHIR base; ImportFailed with the OperationOutcome text."""
    request = urllib.request.Request(
        base_url.rstrip("/"),
        data=orjson.dumps(bundle),
        method="POST",
        headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, "Prefer": "return=minimal"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer: dict[str, Any] = orjson.loads(response.read())
            return answer
    except urllib.error.HTTPError as exc:
        raise ImportFailed(f"{exc.code} {exc.reason}: {_diagnostics(exc.read())}") from None
    except urllib.error.URLError as exc:
        raise ImportFailed(f"cannot reach {base_url}: {exc.reason}") from None


def count_outcomes(response: dict[str, Any]) -> Counter[str]:
    """How many entries of a transaction-response were created (201) or matched (200: updated,
    or unchanged when the row had not changed)."""
    counts: Counter[str] = Counter()
    for entry in response.get("entry", []):
        status = str(entry.get("response", {}).get("status", ""))
        counts["created" if status.startswith("201") else "updated"] += 1
    return counts


class ImportFailed(Exception):
    """The server refused a transaction, or could not be reached."""


def _diagnostics(body: bytes) -> str:
    try:
        outcome = orjson.loads(body)
        return "; ".join(i.get("diagnostics", i.get("code", "")) for i in outcome["issue"])
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return body.decode("utf-8", "replace")[:500]
