"""URLs of resources on this server."""

from __future__ import annotations

import re


def resource_url(base: str, resource_type: str, res_id: str, version_id: int | None = None) -> str:
    """``{base}/{type}/{id}``, with ``/_history/{vid}`` when a version is given."""
    url = f"{base}/{resource_type}/{res_id}"
    return f"{url}/_history/{version_id}" if version_id is not None else url


_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")


def parse_reference(reference: str, base: str) -> tuple[str, str] | None:
    """``(type, id)`` of a reference to a resource on this server, or None.

    Relative references (``Patient/1``, ``Patient/1/_history/2``) and absolute
    ones under ``base`` are local; anything else (other servers, ``urn:``,
    canonical URLs, contained ``#x``) is not.
    """
    if base and reference.startswith(base + "/"):
        reference = reference[len(base) + 1 :]
    elif "://" in reference or reference.startswith(("urn:", "#")):
        return None
    parts = reference.split("/")
    if len(parts) == 4 and parts[2] == "_history":
        parts = parts[:2]
    if len(parts) != 2 or not _TYPE.fullmatch(parts[0]) or not _ID.fullmatch(parts[1]):
        return None
    return parts[0], parts[1]
