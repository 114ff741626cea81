"""SearchParameter definitions: the official R4 ones, ILP's own, and any the server holds.

A ``SearchParams`` table answers "which parameters does type X have?" for the
indexer (what to extract on write), the query parser (what a name means) and the
CapabilityStatement (what to advertise).  Definitions come from FHIR packages and
SearchParameter resources, never from hand-written lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.fhir.packages import resources_in

# Parameter types the indexer and the query engine understand (``special`` is not one).
INDEXED_TYPES = frozenset(
    {"token", "string", "reference", "date", "quantity", "number", "uri", "composite"}
)
# Resource-level parameters answered from columns of the resource table, not index rows.
COLUMN_PARAMS = frozenset({"_id", "_lastUpdated"})
RESOURCE_BASES = ("Resource", "DomainResource")


@dataclass(frozen=True)
class Component:
    """One part of a composite parameter: a parameter definition and a path from the focus."""

    definition: str
    expression: str


@dataclass(frozen=True)
class SearchParam:
    code: str
    url: str
    type: str
    base: tuple[str, ...]
    expression: str = ""
    targets: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()
    description: str = ""

    @classmethod
    def from_resource(cls, resource: dict[str, Any]) -> SearchParam:
        return cls(
            code=resource["code"],
            url=resource.get("url", ""),
            type=resource["type"],
            base=tuple(resource.get("base") or ()),
            expression=resource.get("expression") or "",
            targets=tuple(resource.get("target") or ()),
            components=tuple(
                Component(c["definition"], c["expression"]) for c in resource.get("component") or ()
            ),
            description=(resource.get("description") or "").strip(),
        )


@dataclass(eq=False)
class SearchParams:
    """Parameters by type and code, restricted to the types the server holds."""

    types: frozenset[str]
    _by_type: dict[str, dict[str, SearchParam]] = field(default_factory=dict)
    _by_url: dict[str, SearchParam] = field(default_factory=dict)

    def add(self, param: SearchParam) -> None:
        """Register ``param`` (a later definition of the same type and code replaces it)."""
        if param.type not in INDEXED_TYPES:
            return
        if param.url:
            self._by_url[param.url] = param
        bases = self.types if any(b in RESOURCE_BASES for b in param.base) else param.base
        for base in bases:
            if base in self.types:
                self._by_type.setdefault(base, {})[param.code] = param

    def for_type(self, resource_type: str) -> dict[str, SearchParam]:
        """Every parameter of ``resource_type``, by code."""
        return self._by_type.get(resource_type, {})

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        return self._by_type.get(resource_type, {}).get(code)

    def by_url(self, url: str) -> SearchParam | None:
        return self._by_url.get(url)

    def __iter__(self) -> Iterator[SearchParam]:
        return iter(self._by_url.values())


def from_definitions(types: Iterable[str], definitions: Iterable[dict[str, Any]]) -> SearchParams:
    params = SearchParams(frozenset(types))
    for resource in definitions:
        params.add(SearchParam.from_resource(resource))
    return params


def definitions_in(folder: str | Path) -> Iterator[dict[str, Any]]:
    """Every SearchParameter resource of a package folder (official or ILP's own)."""
    for _path, resource in resources_in(folder, prefix="SearchParameter-"):
        if resource.get("resourceType") == "SearchParameter":
            yield resource
