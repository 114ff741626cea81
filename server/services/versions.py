"""A new version's body and bookkeeping: id, meta.versionId, meta.lastUpdated, content hash."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from server.fhir import jsonio
from server.storage.repository import NewVersion


def new_version(
    resource_type: str,
    res_id: str,
    version_id: int,
    resource: dict[str, Any],
    method: str,
    org_scope: str | None,
) -> NewVersion:
    """The version ``version_id`` of ``resource`` as stored, belonging to ``org_scope``."""
    moment = now()
    body = {**resource, "id": res_id}
    content_hash = jsonio.content_hash(body)
    meta = dict(body.get("meta") or {})
    meta["versionId"] = str(version_id)
    meta["lastUpdated"] = format_instant(moment)
    body["meta"] = meta
    body = _resource_type_first(body)
    return NewVersion(
        resource_type,
        res_id,
        version_id,
        moment,
        method,
        body,
        content_hash,
        org_scope,
    )


def _resource_type_first(body: dict[str, Any]) -> dict[str, Any]:
    ordered = {"resourceType": body["resourceType"], "id": body["id"], "meta": body["meta"]}
    ordered.update(body)
    return ordered


def now() -> datetime:
    """Now in UTC, to the millisecond (what meta.lastUpdated shows)."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def format_instant(moment: datetime) -> str:
    """A FHIR instant in UTC with milliseconds: 2026-11-23T09:25:00.123Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
