"""``$import-records``: a register file (docs/formats.md) mapped to ILP resources and stored.

``POST [base]/$import-records?format=NAME`` with the file as the body (CSV, NDJSON, or a JSON
array of records; the format is guessed from the columns when not named).  The rows go through
the transaction processing of ``POST [base]`` (``services.bundles``, profile checks included),
in transactions of ``BATCH_ROWS`` rows; ``allOrNothing=true`` stores every row in one
transaction, and nothing when a row is rejected.  The answer is an OperationOutcome: an error
issue per rejected row (``location`` "row 7", ``expression`` the column), an information issue
with the summary, and the counts in the ``SUMMARY_EXTENSION`` extension.  ``store`` is also
how ``ilp import`` writes into the local database.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

# The package, not its names: mappers.codes imports the server package, which imports this
# module while mappers/__init__.py may still be running.
import mappers
from mappers.base import RecordError
from mappers.guess import FormatUnknown, guess_file_format
from mappers.importing import (
    BundleRefused,
    ImportFailed,
    ImportSummary,
    MappedFile,
    Progress,
    RowRefused,
    Send,
    entry_index,
    import_mapped,
    map_text,
)
from server.errors import FhirError, InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from server.services import bundles
from server.services.context import ServiceContext

BATCH_ROWS = 100
SUMMARY_EXTENSION = "https://fhir.ilp-gateway.id/StructureDefinition/import-summary"
MEDIA_KINDS = {
    "text/csv": "csv",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/json": "json",
    "application/fhir+json": "json",
}


def import_records(
    ctx: ServiceContext, raw: bytes, media_type: str, query: Sequence[tuple[str, str]] = ()
) -> tuple[int, dict[str, Any]]:
    """The status (200, or 422 when rows were rejected and none stored) and OperationOutcome.

    UnsupportedMediaType (415) for another Content-Type; PayloadTooLarge (413) beyond
    ILP_MAX_BODY_BYTES; InvalidRequest (400) for an unknown format or parameter, a body that
    is not UTF-8 or cannot be read, or columns that fit no format (or several).
    """
    kind = MEDIA_KINDS.get(media_type.lower())
    if kind is None:
        raise UnsupportedMediaType(
            f"Content-Type {media_type or 'none'} is not a register file; send one of "
            f"{', '.join(MEDIA_KINDS)}"
        )
    if len(raw) > ctx.settings.max_body_bytes:
        raise PayloadTooLarge(f"The file is larger than {ctx.settings.max_body_bytes} bytes")
    name, all_or_nothing = _parameters(query)
    text = _decode(raw)
    name = name or _guess(text, kind)
    mapped = map_text(mappers.mapper_for(name), text, kind)
    if not mapped.rows and (unreadable := [e for e in mapped.errors if e.row == 0]):
        raise InvalidRequest(f"The file cannot be read: {unreadable[0].message}")
    summary = store(ctx, mapped, batch_size=BATCH_ROWS, all_or_nothing=all_or_nothing)
    status = 422 if (summary.rejected or summary.stopped) and not summary.imported else 200
    return status, summary_outcome(name, summary)


def store(
    ctx: ServiceContext,
    mapped: MappedFile,
    *,
    batch_size: int = BATCH_ROWS,
    all_or_nothing: bool = False,
    progress: Progress | None = None,
) -> ImportSummary:
    """Store the mapped rows in this server's database, as ``POST [base]`` transactions would."""
    return import_mapped(
        mapped,
        local_sender(ctx),
        batch_size=batch_size,
        max_entries=ctx.settings.max_bundle_entries,
        all_or_nothing=all_or_nothing,
        progress=progress,
    )


def local_sender(ctx: ServiceContext) -> Send:
    """A ``Send`` running each transaction through ``services.bundles``.

    A failure located on an entry becomes BundleRefused (the importer leaves that row out);
    any other FhirError, ImportFailed (the importer stops, keeping its summary).
    """

    def send(bundle: dict[str, Any]) -> dict[str, Any]:
        try:
            return bundles.process(ctx, bundle, prefer="minimal")
        except FhirError as error:
            located = (entry_index(e) for issue in error.issues for e in issue.expression)
            index = next((i for i in located if i is not None), None)
            diagnostics = "; ".join(issue.diagnostics for issue in error.issues)
            message = f"{error.status} {HTTPStatus(error.status).phrase}: {diagnostics}"
            if index is None:
                raise ImportFailed(message) from None
            raise BundleRefused(message, index, error.issues[0].code) from None

    return send


def summary_outcome(name: str, summary: ImportSummary) -> dict[str, Any]:
    """The OperationOutcome of an import: rejected rows, the summary, and its counts."""
    rejected = sorted([*summary.errors, *summary.refused], key=lambda e: e.row)
    issues = [_row_issue(error) for error in rejected]
    if summary.stopped:
        issues.append(_issue("error", "processing", f"The import stopped: {summary.stopped}"))
    issues.append(_issue("information", "informational", f"{name}: {summary.describe()}"))
    counts = {
        "rowsRead": summary.read,
        "rowsRejected": summary.rejected,
        "rowsImported": summary.imported,
        "created": summary.outcomes["created"],
        "updated": summary.outcomes["updated"],
        "unchanged": summary.outcomes["unchanged"],
    }
    extension = {
        "url": SUMMARY_EXTENSION,
        "extension": [{"url": "format", "valueCode": name}]
        + [{"url": key, "valueUnsignedInt": value} for key, value in counts.items()],
    }
    return {"resourceType": "OperationOutcome", "extension": [extension], "issue": issues}


def _row_issue(error: RecordError) -> dict[str, Any]:
    if isinstance(error, RowRefused):
        code = error.code
    elif error.message.startswith(("is required", "give ")):
        code = "required"
    else:
        code = "value" if error.field else "invalid"
    issue = _issue("error", code, str(error) if error.row else error.message)
    if error.row:
        issue["location"] = [f"row {error.row}"]
    if error.field:
        issue["expression"] = [error.field]
    return issue


def _issue(severity: str, code: str, diagnostics: str) -> dict[str, Any]:
    return {"severity": severity, "code": code, "diagnostics": diagnostics}


def _parameters(query: Sequence[tuple[str, str]]) -> tuple[str | None, bool]:
    """The ``format`` and ``allOrNothing`` parameters; InvalidRequest for anything else."""
    values: dict[str, str] = {}
    for key, value in query:
        if key.startswith("_"):  # _format, _pretty: the HTTP layer's
            continue
        if key not in ("format", "allOrNothing"):
            raise InvalidRequest(
                f"$import-records takes the parameters format and allOrNothing, not {key!r}", key
            )
        if key in values:
            raise InvalidRequest(f"The parameter {key} is given twice", key)
        values[key] = value
    name = values.get("format")
    if name is not None and name not in mappers.FORMATS:
        raise InvalidRequest(
            f"Unknown format {name!r}; the formats are {', '.join(mappers.FORMATS)}", "format"
        )
    flag = values.get("allOrNothing", "false")
    if flag not in ("true", "false"):
        raise InvalidRequest(f"allOrNothing must be true or false, got {flag!r}", "allOrNothing")
    return name, flag == "true"


def _decode(raw: bytes) -> str:
    if not raw.strip():
        raise InvalidRequest("The body must hold the register file (CSV, NDJSON or JSON)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"The file must be UTF-8 text: {exc}") from None


def _guess(text: str, kind: str) -> str:
    try:
        return guess_file_format(text, kind)
    except RecordError as exc:
        raise InvalidRequest(f"The file cannot be read: {exc.message}") from None
    except FormatUnknown as exc:
        raise InvalidRequest(f"Cannot tell the format: {exc}; give ?format=", "format") from None
