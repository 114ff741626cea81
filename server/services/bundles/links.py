"""Links between the entries of a Bundle: found in each resource, resolved or refused.

In a transaction every ``Reference.reference`` naming another entry (its ``fullUrl``:
``urn:uuid:``, ``urn:oid:`` or a URL) becomes that entry's ``Type/id``, and so do links in
uri, url, oid and uuid elements and narrative ``href``/``src`` (as absolute URLs; canonical
elements are left alone).  Conditional references (``Patient?identifier=...``) become the
one resource they match.  A batch resolves nothing and refuses links between entries.
See https://hl7.org/fhir/R4/http.html#trules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from server.errors import InvalidRequest, MultipleMatches, PreconditionFailed
from server.fhir.elements import COMPLEX, RESOURCE, element
from server.services import resources
from server.services.bundles.entries import Entry
from server.storage.uow import UnitOfWork

_LINK_TYPES = frozenset({"uri", "url", "oid", "uuid", "uuidVersion"})
_NARRATIVE_LINK = re.compile(r'\b(href|src)="([^"]*)"')
_CONDITIONAL = re.compile(r"^[A-Z][A-Za-z]+\?.+")
_RELATIVE = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")
_ABSOLUTE = re.compile(r"^(https?://.+)/[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}(/_history/[^/]+)?$")

Criteria = tuple[str, tuple[tuple[str, str], ...]]
# identity(uow, target, source): ``Type/id`` of what ``target`` writes, asked while
# rewriting ``source`` (the processor may have to run ``target`` first).
Identity = Callable[[UnitOfWork, Entry, Entry], str]


class EntryLinks:
    """Rewrites the links of one Bundle's resources; conditional references are cached."""

    def __init__(self, entries: list[Entry], base: str, identity: Identity) -> None:
        self._base, self._identity = base, identity
        self._by_full_url = {e.full_url: e for e in entries if e.full_url}
        self._by_criteria = {key: e for e in entries if (key := criteria_of(e)) is not None}
        self._resolved: dict[str, str] = {}

    def rewrite(self, uow: UnitOfWork, entry: Entry) -> None:
        """Resolve, in place, the links of a transaction entry's resource.

        InvalidRequest for a ``urn:`` reference that no entry has as fullUrl;
        PreconditionFailed / MultipleMatches when a conditional reference matches no
        resource or several.
        """
        assert entry.resource is not None
        rewrite_links(
            entry.resource,
            f"{entry.path}.resource",
            lambda value, path: self._reference(uow, entry, value, path),
            lambda value, _path: self._link(uow, entry, value),
        )

    def refuse(self, entry: Entry) -> None:
        """InvalidRequest when a batch entry links to another entry or by a search."""
        assert entry.resource is not None
        rewrite_links(
            entry.resource,
            f"{entry.path}.resource",
            lambda value, path: self._refused(entry, value, path),
            lambda value, _path: value,
        )

    def _reference(self, uow: UnitOfWork, entry: Entry, value: str, path: str) -> str:
        target = self._target(entry, value)
        if target is not None:
            return self._identity(uow, target, entry)
        if value.startswith(("urn:uuid:", "urn:oid:")):
            raise InvalidRequest(f"{value} is not the fullUrl of any entry in this Bundle", path)
        if _CONDITIONAL.match(value):
            return self._conditional(uow, value, path)
        return value

    def _link(self, uow: UnitOfWork, entry: Entry, value: str) -> str:
        target = self._by_full_url.get(value)
        return value if target is None else f"{self._base}/{self._identity(uow, target, entry)}"

    def _refused(self, entry: Entry, value: str, path: str) -> str:
        target = self._target(entry, value)
        if target is not None and target is not entry:
            raise InvalidRequest(
                f"{value} refers to Bundle.entry[{target.index}]: batch entries are independent "
                "and not linked (http.html#transaction); send a transaction to link entries",
                path,
            )
        if _CONDITIONAL.match(value):
            raise InvalidRequest(
                f"Conditional references ({value}) are resolved only in transactions", path
            )
        return value

    def _target(self, entry: Entry, value: str) -> Entry | None:
        """The entry ``value`` names: by fullUrl, or a relative reference on the entry's base."""
        target = self._by_full_url.get(value)
        if target is None and _RELATIVE.match(value):
            found = _ABSOLUTE.match(entry.full_url or "")
            target = self._by_full_url.get(f"{found[1] if found else self._base}/{value}")
        return target

    def _conditional(self, uow: UnitOfWork, value: str, path: str) -> str:
        """The one resource a search URL names; 412 when it names none or several."""
        if value in self._resolved:
            return self._resolved[value]
        rtype, _, query = value.partition("?")
        provider = self._by_criteria.get((rtype, _normalised(query)))
        if provider is not None:  # written by this transaction under the same criteria
            identity = self._identity(uow, provider, provider)
        else:
            resources.require_type(rtype, "search-type")
            found = resources.matching_ids(uow, rtype, parse_qsl(query, keep_blank_values=True))
            if len(found) != 1:
                error = MultipleMatches if found else PreconditionFailed
                count = "more than one resource" if found else "no resource"
                raise error(f"The conditional reference {value} matches {count}", path)
            identity = f"{rtype}/{found[0]}"
        self._resolved[value] = identity
        return identity


def criteria_of(entry: Entry) -> Criteria | None:
    """The search under which ``entry`` creates or updates its resource, if conditional."""
    if entry.method == "POST" and entry.if_none_exist and entry.resource_type:
        return entry.resource_type, _normalised(entry.if_none_exist.split("?", 1)[-1])
    if entry.interaction == "conditional-update" and entry.resource_type:
        return entry.resource_type, tuple(sorted(entry.params))
    return None


def _normalised(query: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(parse_qsl(query, keep_blank_values=True)))


# A resolver gets (value, FHIRPath) and answers the replacement (or the value unchanged).
Resolver = Callable[[str, str], str]


def rewrite_links(resource: dict[str, Any], path: str, reference: Resolver, link: Resolver) -> None:
    """Replace, in place, each ``Reference.reference`` through ``reference`` and each link
    (uri, url, oid, uuid elements and narrative ``href``/``src``) through ``link``."""
    _walk(str(resource["resourceType"]), resource, path, reference, link)


def _walk(model: str, obj: dict[str, Any], path: str, reference: Resolver, link: Resolver) -> None:
    for key, value in obj.items():
        found = element(model, key)
        if found is None or key.startswith("_"):
            continue
        here = f"{path}.{key}"
        if model == "Reference" and key == "reference" and isinstance(value, str):
            obj[key] = reference(value, here)
        elif found.kind in (COMPLEX, RESOURCE):
            items = value if isinstance(value, list) else [value]
            for i, item in enumerate(items):
                if not isinstance(item, dict):
                    continue
                child = found.child if found.kind == COMPLEX else item.get("resourceType")
                item_path = f"{here}[{i}]" if isinstance(value, list) else here
                if isinstance(child, str):
                    _walk(child, item, item_path, reference, link)
        elif found.fhir_type in _LINK_TYPES and isinstance(value, str):
            obj[key] = link(value, here)
        elif found.fhir_type in _LINK_TYPES and isinstance(value, list):
            obj[key] = [
                link(v, f"{here}[{i}]") if isinstance(v, str) else v for i, v in enumerate(value)
            ]
        elif model == "Narrative" and key == "div" and isinstance(value, str):
            obj[key] = _narrative_links(value, here, link)


def _narrative_links(div: str, path: str, link: Resolver) -> str:
    return _NARRATIVE_LINK.sub(lambda m: f'{m[1]}="{link(m[2], path)}"', div)
