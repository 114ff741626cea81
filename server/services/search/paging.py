"""A searchset Bundle for a page: entries, self/next links, total, _summary/_elements."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from server.fhir.elements import summary_keys
from server.fhir.references import resource_url
from server.services.search.execute import SearchPage
from server.storage.repository import StoredResource

# meta.tag a server adds to a resource it returns only in part (R4 search.html#summary).
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "Resource encoded in summary mode",
}
_MANDATORY = ("resourceType", "id", "meta")


def searchset_bundle(base: str, page: SearchPage) -> dict[str, Any]:
    request = page.request
    path = f"{base}/{request.resource_type}"
    kept = [(k, v) for k, v in request.used if k not in ("_count", "_cursor")]
    count = [("_count", str(request.count))]
    links = [_link("self", path, kept + count + _cursor(request.cursor))]
    if page.next_cursor:
        links.append(_link("next", path, kept + count + _cursor(page.next_cursor)))
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = links
    entries = [_entry(base, r, "match", request.summary, request.elements) for r in page.resources]
    entries += [_entry(base, r, "include", request.summary, ()) for r in page.included]
    if entries:  # FHIR JSON forbids empty arrays
        bundle["entry"] = entries
    return bundle


def _cursor(cursor: str | None) -> list[tuple[str, str]]:
    return [("_cursor", cursor)] if cursor else []


def _entry(
    base: str, stored: StoredResource, mode: str, summary: str | None, elements: tuple[str, ...]
) -> dict[str, Any]:
    return {
        "fullUrl": resource_url(base, stored.res_type, stored.res_id),
        "resource": shape(stored.content or {}, summary, elements),
        "search": {"mode": mode},
    }


def shape(
    resource: dict[str, Any], summary: str | None, elements: tuple[str, ...]
) -> dict[str, Any]:
    """The resource as ``_summary``/``_elements`` ask, marked SUBSETTED when cut."""
    if summary == "true":
        keep = summary_keys(resource["resourceType"])
        shaped = {k: v for k, v in resource.items() if k in keep}
    elif summary == "text":
        shaped = {k: v for k, v in resource.items() if k in (*_MANDATORY, "text")}
    elif summary == "data":
        shaped = {k: v for k, v in resource.items() if k != "text"}
    elif elements:
        wanted = {*_MANDATORY, *elements, *(f"_{e}" for e in elements)}
        shaped = {k: v for k, v in resource.items() if k in wanted}
    else:
        return resource
    if len(shaped) == len(resource):
        return resource
    meta = dict(shaped.get("meta") or {})
    meta["tag"] = [*meta.get("tag", ()), SUBSETTED]
    return {**shaped, "meta": meta}


def _link(relation: str, path: str, query: list[tuple[str, str]]) -> dict[str, str]:
    return {"relation": relation, "url": f"{path}?{urlencode(query)}"}
