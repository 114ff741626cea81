"""Which profiles of a package a resource must meet, told by the codes that identify them.

A profile's *identifying codes* are the fixed or pattern values carrying a code that its
snapshot puts on a required classifying element at the top of the resource (``code``,
``type``, ``class``, any ``...Type``, or their ``coding``): LOINC 29463-7 on
``Observation.code.coding`` for a body-weight profile, ``puskesmas`` on
``Organization.type`` for a Puskesmas profile.  Only *leaf* profiles are selected (no other
profile of the package derives from them), because a derived profile's snapshot already
holds every rule of its base.  For a resource of type T:

1. the leaf profiles of T whose identifying codes the resource all carries apply;
2. when none does, the leaf profiles of T without identifying codes apply (the type's
   general profiles); otherwise none.

Categories and patterns without a code are rules, not identity: ``vital-signs`` holds heart
rate as well as body weight, and "has a coding of system S" is what every instance must have.
See docs/validation-usage.md and https://hl7.org/fhir/R4/profiling.html#slicing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

CLASSIFIERS = frozenset({"code", "type", "class"})

Snapshot = Callable[[str], list[dict[str, Any]] | None]


@dataclass(frozen=True)
class IdentifyingCode:
    """A value the instance must carry in ``element`` (or in its ``coding``) to be identified."""

    element: str
    in_coding: bool
    pattern: dict[str, Any]

    def carried_by(self, resource: dict[str, Any]) -> bool:
        values = _as_list(resource.get(self.element))
        if self.in_coding:
            values = [c for v in values if isinstance(v, dict) for c in _as_list(v.get("coding"))]
        return any(_contains(value, self.pattern) for value in values)


@dataclass(frozen=True)
class Candidate:
    url: str
    codes: tuple[IdentifyingCode, ...]


@dataclass(frozen=True)
class _TypeRules:
    specific: tuple[Candidate, ...]
    general: tuple[str, ...]


class ProfileSelector:
    """The applicable profiles per resource, from the StructureDefinitions of one package."""

    def __init__(self, definitions: Iterable[dict[str, Any]], snapshot: Snapshot) -> None:
        profiles = [d for d in definitions if d.get("resourceType") == "StructureDefinition"]
        bases = {str(d.get("baseDefinition", "")).split("|", 1)[0] for d in profiles}
        by_type: dict[str, list[Candidate]] = {}
        for definition in profiles:
            url, type_name = definition.get("url"), definition.get("type")
            if (
                definition.get("kind") != "resource"
                or definition.get("derivation") != "constraint"
                or definition.get("abstract") is True
                or not isinstance(url, str)
                or not isinstance(type_name, str)
                or url in bases
            ):
                continue
            codes = identifying_codes(type_name, snapshot(url) or [])
            by_type.setdefault(type_name, []).append(Candidate(url, codes))
        self._rules = {
            type_name: _TypeRules(
                tuple(c for c in found if c.codes),
                tuple(sorted(c.url for c in found if not c.codes)),
            )
            for type_name, found in by_type.items()
        }

    def candidates(self, resource_type: str) -> tuple[Candidate, ...]:
        """Every leaf profile of ``resource_type``: the identified ones, then the general."""
        rules = self._rules.get(resource_type)
        if rules is None:
            return ()
        return rules.specific + tuple(Candidate(url, ()) for url in rules.general)

    def profiles_for(self, resource: dict[str, Any]) -> tuple[str, ...]:
        """Canonical URLs of the profiles ``resource`` must meet (possibly none)."""
        rules = self._rules.get(str(resource.get("resourceType")))
        if rules is None:
            return ()
        identified = tuple(
            candidate.url
            for candidate in rules.specific
            if all(code.carried_by(resource) for code in candidate.codes)
        )
        return identified or rules.general


def identifying_codes(
    type_name: str, elements: list[dict[str, Any]]
) -> tuple[IdentifyingCode, ...]:
    """The identifying codes in the snapshot ``elements`` of a profile on ``type_name``."""
    by_id = {str(e.get("id")): e for e in elements}
    found: list[IdentifyingCode] = []
    split_codings: dict[str, tuple[str, dict[str, Any]]] = {}
    for element in elements:
        path = str(element.get("path", "")).split(".")
        if len(path) < 2 or path[0] != type_name or not _is_classifier(path[1]):
            continue
        value = _fixed_or_pattern(element)
        if value is None or not _required(str(element.get("id")), by_id):
            continue
        rest = path[2:]
        if not rest and isinstance(value, dict):
            found.append(IdentifyingCode(path[1], False, value))
        elif rest == ["coding"] and isinstance(value, dict):
            found.append(IdentifyingCode(path[1], True, value))
        elif rest in (["coding", "system"], ["coding", "code"]) and isinstance(value, str):
            # A coding fixed property by property, as the core vital-signs profiles do.
            parent = str(element.get("id")).rsplit(".", 1)[0]
            split_codings.setdefault(parent, (path[1], {}))[1][rest[1]] = value
    found += [IdentifyingCode(name, True, coding) for name, coding in split_codings.values()]
    return tuple(code for code in found if _has_code(code.pattern))


def _is_classifier(name: str) -> bool:
    return name in CLASSIFIERS or name.endswith("Type")


def _fixed_or_pattern(element: dict[str, Any]) -> Any:
    for key, value in element.items():
        if key.startswith(("fixed", "pattern")):
            return value
    return None


def _required(element_id: str, by_id: dict[str, dict[str, Any]]) -> bool:
    """Whether the element and every element above it (below the root) has min >= 1."""
    parts = element_id.split(".")
    for end in range(2, len(parts) + 1):
        ancestor = by_id.get(".".join(parts[:end]))
        if ancestor is None or int(ancestor.get("min", 0)) < 1:
            return False
    return True


def _has_code(pattern: dict[str, Any]) -> bool:
    if "code" in pattern:
        return True
    return any(isinstance(c, dict) and "code" in c for c in _as_list(pattern.get("coding")))


def _contains(value: Any, pattern: Any) -> bool:
    """FHIR pattern matching: every property of ``pattern`` is present in ``value``."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            key in value and _contains(value[key], part) for key, part in pattern.items()
        )
    if isinstance(pattern, list):
        return isinstance(value, list) and all(
            any(_contains(item, part) for item in value) for part in pattern
        )
    return bool(value == pattern)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
