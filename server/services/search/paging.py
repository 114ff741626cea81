"""A searchset Bundle for a page of matches, with self and next links."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from server.fhir.references import resource_url
from server.services.search.execute import SearchPage


def searchset_bundle(base: str, page: SearchPage) -> dict[str, Any]:
    request = page.request
    path = f"{base}/{request.resource_type}"
    kept = [(k, v) for k, v in request.used if k not in ("_count", "_offset")]
    links = [_link("self", path, kept, request.count, request.offset)]
    if page.has_next:
        links.append(_link("next", path, kept, request.count, request.offset + request.count))
    if request.offset > 0:
        previous = max(request.offset - request.count, 0)
        links.append(_link("previous", path, kept, request.count, previous))
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "link": links}
    if page.resources:  # FHIR JSON forbids empty arrays
        bundle["entry"] = [
            {
                "fullUrl": resource_url(base, stored.res_type, stored.res_id),
                "resource": stored.content,
                "search": {"mode": "match"},
            }
            for stored in page.resources
        ]
    return bundle


def _link(
    relation: str, path: str, kept: list[tuple[str, str]], count: int, offset: int
) -> dict[str, str]:
    query = kept + [("_count", str(count))] + ([("_offset", str(offset))] if offset else [])
    return {"relation": relation, "url": f"{path}?{urlencode(query)}"}
