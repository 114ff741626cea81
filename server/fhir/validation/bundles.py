"""Rules of Bundles (and Parameters) that span entries, which no single definition states.

- ``fullUrl`` is absolute (http://..., urn:uuid:, urn:oid:) and, when it is a RESTful URL,
  ends with the entry's type and id (https://hl7.org/fhir/R4/bundle.html#bundle-unique).
- Each link relation occurs once.
- A searchset's matches have ids and are of the searched type; ``outcome`` entries are
  OperationOutcomes (https://hl7.org/fhir/R4/search.html#searchset).
- In documents every reference resolves to exactly one entry (versioned references to that
  version), as https://hl7.org/fhir/R4/bundle.html#references requires of a self-contained
  Bundle; in messages an unresolved reference is a warning.
- In Parameters, a relative reference to a type that the parameters carry must resolve to one
  of them (the parameters are meant to be read together).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from server.fhir.validation.validator import Run

_RELATIVE = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/([^/]+))?$")
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")  # a URI with a scheme
_SELF_CONTAINED = frozenset({"document", "message"})


def check_bundle(run: Run, bundle: dict[str, Any], path: str) -> None:
    entries = [e for e in bundle.get("entry") or () if isinstance(e, dict)]
    _full_urls(run, entries, path)
    _links(run, bundle, path)
    if bundle.get("type") == "searchset":
        _search_results(run, bundle, entries, path)
    if bundle.get("type") in _SELF_CONTAINED:
        # A document must hold what it cites; a message should (its receiver may resolve
        # the rest), so there a missing target is a warning.
        severity = "error" if bundle.get("type") == "document" else "warning"
        _references_resolve(run, entries, path, severity)


def check_parameters(run: Run, parameters: dict[str, Any], path: str) -> None:
    held: dict[str, set[str]] = {}
    located: list[tuple[int, dict[str, Any]]] = []
    for index, parameter in enumerate(parameters.get("parameter") or ()):
        resource = parameter.get("resource") if isinstance(parameter, dict) else None
        if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
            held.setdefault(resource["resourceType"], set()).add(str(resource.get("id")))
            located.append((index, resource))
    for index, resource in located:
        base = f"{path}.parameter[{index}].resource"
        for where, target in _references(resource, base):
            match = _RELATIVE.match(target)
            if match and match.group(1) in held and match.group(2) not in held[match.group(1)]:
                message = f"Unable to resolve resource with reference '{target}'"
                run.add("error", "not-found", message, where)


def _full_urls(run: Run, entries: list[dict[str, Any]], path: str) -> None:
    for index, entry in enumerate(entries):
        full_url = entry.get("fullUrl")
        resource = entry.get("resource")
        if not isinstance(full_url, str):
            continue
        where = f"{path}.entry[{index}]"
        if not _ABSOLUTE.match(full_url):
            run.add(
                "error", "value", f"The fullUrl must be an absolute URL (not {full_url!r})", where
            )
            continue
        if isinstance(resource, dict) and "://" in full_url and "/_history/" not in full_url:
            expected = f"/{resource.get('resourceType')}/{resource.get('id')}"
            if resource.get("id") and not full_url.endswith(expected):
                message = (
                    f"The fullUrl {full_url!r} looks like a RESTful server URL, so it must end "
                    f"with the correct type and id ({expected})"
                )
                run.add("error", "value", message, where)


def _links(run: Run, bundle: dict[str, Any], path: str) -> None:
    seen: Counter[str] = Counter()
    for index, link in enumerate(bundle.get("link") or ()):
        relation = link.get("relation") if isinstance(link, dict) else None
        if not isinstance(relation, str):
            continue
        seen[relation] += 1
        if seen[relation] == 2:
            message = f"The link relationship type {relation!r} can only occur once"
            run.add("error", "structure", message, f"{path}.link[{index}]")


def _search_results(
    run: Run, bundle: dict[str, Any], entries: list[dict[str, Any]], path: str
) -> None:
    types = _searched_types(bundle)
    if types is None:
        return  # without a self link the search is unknown: nothing to hold the results to
    for index, entry in enumerate(entries):
        resource = entry.get("resource")
        search = entry.get("search")
        if not isinstance(resource, dict):
            continue
        if not isinstance(search, dict):
            search = {}
        where = f"{path}.entry[{index}].resource"
        kind = resource.get("resourceType")
        if search.get("mode") == "outcome":
            if kind != "OperationOutcome":
                run.add("error", "structure", f"This is not an OperationOutcome ({kind})", where)
            continue
        if search.get("mode", "match") != "match":
            continue
        if not resource.get("id"):
            run.add("error", "required", "Search results must have ids", where)
        if types and kind not in types:
            expected = ", ".join(types)
            message = (
                f"This is not a matching resource type for the specified search "
                f"({kind} expecting [{expected}])"
            )
            run.add("error", "structure", message, where)


def _searched_types(bundle: dict[str, Any]) -> list[str] | None:
    """The types a searchset's ``self`` link searched for (its path, or ``_type``); None
    without a self link."""
    for link in bundle.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "self":
            url = urlsplit(str(link.get("url", "")))
            for pair in url.query.split("&"):
                name, _, value = pair.partition("=")
                if name == "_type" and value:
                    return value.replace("%2C", ",").split(",")
            last = url.path.rstrip("/").rsplit("/", 1)[-1]
            return [last] if last[:1].isupper() and last.isalpha() else []
    return None


def _references_resolve(run: Run, entries: list[dict[str, Any]], path: str, severity: str) -> None:
    by_url: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        full_url = entry.get("fullUrl")
        resource = entry.get("resource")
        if isinstance(full_url, str) and isinstance(resource, dict):
            by_url.setdefault(full_url, []).append(resource)
    for index, entry in enumerate(entries):
        resource = entry.get("resource")
        full_url = entry.get("fullUrl")
        if not isinstance(resource, dict) or not isinstance(full_url, str):
            continue
        base = _server_base(full_url)
        for where, target in _references(resource, f"{path}.entry[{index}].resource"):
            candidates, version = _candidates(target, base, by_url)
            if candidates is None:
                continue
            matches = [r for r in candidates if version is None or _version_of(r) == version]
            if not matches:
                run.add(severity, "not-found", f"Can't find {target!r} in the bundle", where)
            elif len(matches) > 1:
                message = f"Found {len(matches)} matches for {target!r} in the bundle"
                run.add("error", "structure", message, where)


def _candidates(
    target: str, base: str | None, by_url: dict[str, list[dict[str, Any]]]
) -> tuple[list[dict[str, Any]] | None, str | None]:
    """Entries a reference may mean, and the version it asks for; None: not ours to judge."""
    if target.startswith(("urn:uuid:", "urn:oid:")):
        return by_url.get(target, []), None
    match = _RELATIVE.match(target)
    if match and base is not None:
        return by_url.get(f"{base}/{match.group(1)}/{match.group(2)}", []), match.group(3)
    if "://" in target:
        plain, _, version = target.partition("/_history/")
        return (by_url.get(plain, []), version or None) if plain in by_url else (None, None)
    return None, None


def _server_base(full_url: str) -> str | None:
    parts = full_url.rstrip("/").rsplit("/", 2)
    return parts[0] if "://" in full_url and len(parts) == 3 else None


def _version_of(resource: dict[str, Any]) -> str | None:
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    return version if isinstance(version, str) else None


def _references(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(FHIRPath, target) of every literal Reference in ``value``, contained ones excluded."""
    if isinstance(value, dict):
        target = value.get("reference")
        if isinstance(target, str) and not target.startswith("#"):
            yield path, target
        for key, child in value.items():
            if key in ("contained", "reference") or key.startswith("_"):
                continue
            if isinstance(child, list):
                for index, item in enumerate(child):
                    yield from _references(item, f"{path}.{key}[{index}]")
            elif isinstance(child, dict):
                yield from _references(child, f"{path}.{key}")
