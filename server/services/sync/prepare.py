"""A local resource as the upstream wants it: upstream ids, UTC times, a facility identifier.

Pure functions.  References to local resources are rewritten to what the caller resolves
them to (``Type/{upstream id}``, or the ``urn:uuid`` of an entry in the same Bundle); one
that cannot be resolved yet (a cycle, such as an Encounter whose diagnosis names a
Condition that names the Encounter, sent one resource at a time) is left out of this send,
with the smallest part that holds it (the list item, or the top-level element), and
reported so the worker sends the resource again once the target has an upstream id.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from server.fhir.elements import elements_of
from server.fhir.references import parse_reference

SYS_IDS = "http://sys-ids.kemkes.go.id"
# SATUSEHAT's names for the per-facility identifier systems, where they are not the type
# in lower case (shared/DOMAIN.md).
_SYSTEM_NAMES = {"AllergyIntolerance": "allergy", "EpisodeOfCare": "episode-of-care"}

_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_LOCAL_META = ("versionId", "lastUpdated", "source")


class _Drop:
    """Marks a value left out of this send."""


_DROP = _Drop()

Resolve = Callable[[str, str], "str | None"]


def facility_system(res_type: str, organization_id: str) -> str:
    """``http://sys-ids.kemkes.go.id/{type}/{organization id}``: where local ids go upstream."""
    name = _SYSTEM_NAMES.get(res_type, res_type.lower())
    return f"{SYS_IDS}/{name}/{organization_id}"


def has_identifier(res_type: str) -> bool:
    found = elements_of(res_type).get("identifier")
    return found is not None and found.repeats


def upstream_body(
    resource: dict[str, Any],
    *,
    upstream_id: str | None,
    resolve: Resolve,
    organization_id: str,
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The body to send and the (type, id) references left out because ``resolve`` had none.

    ``resolve(type, id)`` gives the reference to write (``Patient/P0123``, ``urn:uuid:...``).
    """
    res_type = resource["resourceType"]
    left_out: list[tuple[str, str]] = []

    def rewrite(value: Any, top: bool) -> Any:
        if isinstance(value, dict):
            target = _local_target(value)
            if target is not None:
                found = resolve(*target)
                if found is None:
                    left_out.append(target)
                    return _DROP
                value = {**value, "reference": found}
            result: dict[str, Any] = {}
            for key, item in value.items():
                if key == "contained" and top:
                    result[key] = [rewrite(r, True) for r in item]
                    continue
                new = rewrite(item, False)
                if new is _DROP:
                    if not top:
                        return _DROP  # up to the list item or the top-level element
                    continue
                result[key] = new
            return result
        if isinstance(value, list):
            kept = [new for new in (rewrite(item, False) for item in value) if new is not _DROP]
            return kept if kept or not value else _DROP
        if isinstance(value, str):
            return to_utc(value)
        return value

    body: dict[str, Any] = rewrite(resource, True)
    _set_id_and_meta(body, upstream_id)
    local_id = resource.get("id")
    if local_id and has_identifier(res_type):
        system = facility_system(res_type, organization_id)
        identifiers = body.setdefault("identifier", [])
        if not any(i.get("system") == system for i in identifiers):
            identifiers.append({"use": "official", "system": system, "value": local_id})
    if res_type == "Organization" and "partOf" not in body:
        body["partOf"] = {"reference": f"Organization/{organization_id}"}
    return body, left_out


def to_utc(value: str) -> str:
    """A dateTime or instant with a zone (WIB +07:00, WITA +08:00, WIT +09:00) in UTC."""
    match = _DATETIME.fullmatch(value)
    if match is None or match.group(3) in ("Z", "+00:00"):
        return value
    whole, fraction, zone = match.groups()
    moment = datetime.fromisoformat(whole + zone).astimezone(UTC)
    seconds = ":%S" if whole.count(":") == 2 else ""
    return moment.strftime(f"%Y-%m-%dT%H:%M{seconds}") + (fraction or "") + "+00:00"


def _local_target(value: dict[str, Any]) -> tuple[str, str] | None:
    reference = value.get("reference")
    if not isinstance(reference, str):
        return None
    return parse_reference(reference, "")


def _set_id_and_meta(body: dict[str, Any], upstream_id: str | None) -> None:
    if upstream_id is None:
        body.pop("id", None)
    else:
        body["id"] = upstream_id
    meta = body.get("meta")
    if isinstance(meta, dict):
        for key in _LOCAL_META:
            meta.pop(key, None)
        if not meta:
            del body["meta"]
