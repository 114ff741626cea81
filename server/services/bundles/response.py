"""The batch-response or transaction-response Bundle: one entry per request entry, in order.

Each entry's ``response`` carries the status line, ``location``, ``etag`` and
``lastModified`` of what was written, or the OperationOutcome of a failed batch entry;
``resource`` follows ``Prefer: return=`` for writes.  A write that stored nothing (the
resource was already so; an ``ifNoneExist`` match) says so in ``response.outcome`` with
HAPI's storage response codes (``SUCCESSFUL_UPDATE_NO_CHANGE``...), since its ``200 OK``
alone does not tell it from an update.  See https://hl7.org/fhir/R4/http.html#transaction-response.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from server.errors import FhirError, Issue, operation_outcome
from server.fhir import storage_codes
from server.fhir.references import resource_url
from server.services.bundles.entries import Entry
from server.services.resources import StoredResource, format_instant

_WRITES = ("POST", "PUT", "PATCH")


@dataclass(frozen=True)
class Outcome:
    """What one entry produced: its status, and the resource or Bundle to report."""

    status: int
    stored: StoredResource | None = None
    body: dict[str, Any] | None = None
    location: bool = False
    error: FhirError | None = None
    issues: tuple[Issue, ...] = ()  # profile warnings, for Prefer: return=OperationOutcome
    changed: bool = True  # False for a write that found the resource as it was sent


def response_bundle(
    base: str, kind: str, entries: list[Entry], outcomes: dict[int, Outcome], prefer: str
) -> dict[str, Any]:
    """The ``kind`` (batch-response or transaction-response) Bundle for ``outcomes``."""
    bundle: dict[str, Any] = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": kind}
    if entries:  # FHIR JSON forbids empty arrays
        bundle["entry"] = [_response_entry(base, e, outcomes[e.index], prefer) for e in entries]
    return bundle


def _response_entry(base: str, entry: Entry, outcome: Outcome, prefer: str) -> dict[str, Any]:
    response: dict[str, Any] = {"status": f"{outcome.status} {HTTPStatus(outcome.status).phrase}"}
    item: dict[str, Any] = {}
    stored = outcome.stored
    if stored is not None:
        if not stored.deleted:
            item["fullUrl"] = resource_url(base, stored.res_type, stored.res_id)
        if outcome.location:
            response["location"] = resource_url(
                base, stored.res_type, stored.res_id, stored.version_id
            )
        response["etag"] = f'W/"{stored.version_id}"'
        response["lastModified"] = format_instant(stored.last_updated)
    body = outcome.body or (stored.content if stored is not None else None)
    writes = entry.method in _WRITES
    shown = prefer == "representation" or not writes
    if body is not None and shown and entry.method != "HEAD" and outcome.status != 304:
        item["resource"] = body
    if outcome.error is not None:
        response["outcome"] = outcome.error.to_operation_outcome()
    elif writes and stored is not None and not outcome.changed:
        shown_issues = outcome.issues if prefer == "OperationOutcome" else ()
        response["outcome"] = operation_outcome(list(shown_issues))
        response["outcome"]["issue"].append(_no_change_issue(entry, stored))
    elif writes and prefer == "OperationOutcome" and stored is not None:
        message = f"{stored.res_type}/{stored.res_id} stored as version {stored.version_id}"
        stored_issue = Issue("information", "informational", message)
        response["outcome"] = operation_outcome([*outcome.issues, stored_issue])
    item["response"] = response
    return item


def _no_change_issue(entry: Entry, stored: StoredResource) -> dict[str, Any]:
    """HAPI's informational issue for a write that stored nothing new."""
    if entry.method == "POST":
        code, what = "SUCCESSFUL_CREATE_WITH_CONDITIONAL_MATCH", "ifNoneExist matched"
    elif entry.interaction == "conditional-update":
        code = "SUCCESSFUL_UPDATE_WITH_CONDITIONAL_MATCH_NO_CHANGE"
        what = "the conditional update matched it and found no change"
    else:
        code = (
            "SUCCESSFUL_PATCH_NO_CHANGE"
            if entry.method == "PATCH"
            else "SUCCESSFUL_UPDATE_NO_CHANGE"
        )
        what = "no change was detected"
    current = f"{stored.res_type}/{stored.res_id}/_history/{stored.version_id}"
    return {
        "severity": "information",
        "code": "informational",
        "details": {"coding": [{"system": storage_codes.SYSTEM, "code": code}]},
        "diagnostics": f"{current} kept as it was: {what}",
    }
