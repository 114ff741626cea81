"""URLs of resources on this server."""

from __future__ import annotations


def resource_url(base: str, resource_type: str, res_id: str, version_id: int | None = None) -> str:
    """``{base}/{type}/{id}``, with ``/_history/{vid}`` when a version is given."""
    url = f"{base}/{resource_type}/{res_id}"
    return f"{url}/_history/{version_id}" if version_id is not None else url
