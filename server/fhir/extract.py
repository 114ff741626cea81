"""Search index values of a resource, extracted with its SearchParameters' expressions.

``Indexer.extract`` turns a resource into ``IndexEntries``: plain tuples per
parameter type, which storage writes to the typed index tables.  Each value
type follows https://hl7.org/fhir/R4/search.html (e.g. a CodeableConcept gives
one token per coding, a HumanName one string per part, a Period one date range).
Composite parameters store each component under ``code$i`` with a group number
shared by the components of one focus element, so a query can correlate them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from server.fhir import fhirpath
from server.fhir.dates import MAX, MIN, DateFormatError, date_range
from server.fhir.references import parse_reference
from server.fhir.searchparams import COLUMN_PARAMS, SearchParam, SearchParams
from server.fhir.text import cut, normalize

log = logging.getLogger(__name__)

CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})
CURRENCY_SYSTEM = "urn:iso:std:iso:4217"
IDENTIFIER_SUFFIX = ":identifier"  # Reference.identifier rows, for the :identifier modifier


@dataclass
class IndexEntries:
    """Rows per index table; each row starts with (param, group)."""

    token: list[tuple[str, int, str | None, str | None, str | None]] = field(default_factory=list)
    string: list[tuple[str, int, str, str]] = field(default_factory=list)
    reference: list[tuple[str, int, str | None, str | None, str | None]] = field(
        default_factory=list
    )
    date: list[tuple[str, int, datetime, datetime]] = field(default_factory=list)
    number: list[tuple[str, int, float]] = field(default_factory=list)
    quantity: list[tuple[str, int, float, str | None, str | None, str | None]] = field(
        default_factory=list
    )
    uri: list[tuple[str, int, str]] = field(default_factory=list)

    def add(self, kind: str, param: str, group: int, values: list[tuple[Any, ...]]) -> None:
        rows: list[Any] = getattr(self, kind)
        rows.extend((param, group, *value) for value in values)


Converter = Callable[[Any, "ValueContext"], list[tuple[Any, ...]]]


@dataclass(frozen=True)
class ValueContext:
    base: str  # this server's FHIR base, to recognise absolute references to itself


_NO_BASE = ValueContext("")  # tokens never need the server's base


@dataclass(frozen=True)
class _Plan:
    code: str
    type: str
    select: fhirpath.Accessor
    roots: frozenset[str] | None = None  # skip the plan when the resource has none of these
    components: tuple[tuple[str, fhirpath.Accessor], ...] = ()


class Indexer:
    """Extracts index entries for every indexed parameter of a resource type."""

    def __init__(self, params: SearchParams, base: str) -> None:
        self.params = params
        self._context = ValueContext(base.rstrip("/"))
        self._plans: dict[str, list[_Plan]] = {}

    def extract(self, resource_type: str, resource: dict[str, Any]) -> IndexEntries:
        entries = IndexEntries()
        present = resource.keys()
        for plan in self._plans_for(resource_type):
            if plan.roots is not None and plan.roots.isdisjoint(present):
                continue
            try:
                nodes = plan.select(resource)
            except Exception:  # an interpreter gap (e.g. hasExtension) must not fail a write
                log.warning("Cannot evaluate %s.%s", resource_type, plan.code, exc_info=True)
                continue
            if plan.type == "composite":
                self._composite(entries, plan, nodes)
                continue
            values = CONVERTERS[plan.type](nodes, self._context)
            entries.add(plan.type, plan.code, 0, values)
            if plan.type == "reference":
                entries.add(
                    "token", plan.code + IDENTIFIER_SUFFIX, 0, _reference_identifiers(nodes)
                )
        return entries

    def _composite(self, entries: IndexEntries, plan: _Plan, focus: list[Any]) -> None:
        for group, node in enumerate(focus, start=1):
            parts = [
                (kind, CONVERTERS[kind](select(node), self._context))
                for kind, select in plan.components
            ]
            if all(values for _kind, values in parts):  # a half-filled pair can never match
                for index, (kind, values) in enumerate(parts):
                    entries.add(kind, f"{plan.code}${index}", group, values)

    def _plans_for(self, resource_type: str) -> list[_Plan]:
        plans = self._plans.get(resource_type)
        if plans is None:
            plans = [
                plan
                for param in self.params.for_type(resource_type).values()
                if (plan := self._plan(resource_type, param)) is not None
            ]
            self._plans[resource_type] = plans
        return plans

    def _plan(self, resource_type: str, param: SearchParam) -> _Plan | None:
        if param.code in COLUMN_PARAMS or not param.expression:
            return None
        if not fhirpath.parts_for(resource_type, param.expression):
            return None
        select = fhirpath.accessor(resource_type, param.expression)
        roots = fhirpath.root_keys(resource_type, param.expression)
        if param.type != "composite":
            return _Plan(param.code, param.type, select, roots)
        components = composite_components(self.params, resource_type, param)
        if not components:
            return None
        if fhirpath.parts_for(resource_type, param.expression) == [resource_type]:
            # focus is the resource itself: nothing to index unless every component is there
            value = param.components[-1].expression
            roots = fhirpath.root_keys(resource_type, f"{resource_type}.{value}")
        return _Plan(param.code, "composite", select, roots, components)


def composite_components(
    params: SearchParams, resource_type: str, param: SearchParam
) -> tuple[tuple[str, fhirpath.Accessor], ...]:
    """(type, accessor) per component, or () when a component cannot be indexed."""
    focus = fhirpath.parts_for(resource_type, param.expression)
    model = fhirpath.model_at(resource_type, focus[0]) if len(focus) == 1 else None
    out = []
    for component in param.components:
        definition = params.by_url(component.definition)
        if definition is None or definition.type not in CONVERTERS:
            return ()
        try:
            select = fhirpath.relative_accessor(model, component.expression)
        except ValueError:
            return ()
        out.append((definition.type, select))
    return tuple(out)


def _tokens(nodes: list[Any], _context: ValueContext) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for node in nodes:
        if isinstance(node, bool):
            rows.append((None, "true" if node else "false", None))
        elif isinstance(node, str | int | float):
            rows.append((None, cut(str(node)), None))
        elif isinstance(node, dict):
            rows.extend(_complex_tokens(node))
    return rows


def _complex_tokens(node: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    if "coding" in node or ("text" in node and "value" not in node and "code" not in node):
        text = _text(node.get("text"))
        codings = [c for c in node.get("coding") or () if isinstance(c, dict)]
        for coding in codings:
            yield (
                cut(coding.get("system")),
                cut(coding.get("code")),
                text or _text(coding.get("display")),
            )
        if text and not codings:
            yield None, None, text
    elif "value" in node and isinstance(node["value"], str):  # Identifier, ContactPoint
        system = node.get("system")
        if system in CONTACT_SYSTEMS and "type" not in node:
            system = None
        type_text = node.get("type", {}).get("text") if isinstance(node.get("type"), dict) else None
        yield cut(system), cut(node["value"]), _text(type_text)
    elif "code" in node or "system" in node:  # Coding, Quantity as token
        yield cut(node.get("system")), cut(node.get("code")), _text(node.get("display"))


def _text(value: Any) -> str | None:
    return normalize(value) if isinstance(value, str) and value.strip() else None


_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")


def _strings(nodes: list[Any], _context: ValueContext) -> list[tuple[Any, ...]]:
    texts: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            texts.append(node)
        elif isinstance(node, dict):
            parts = _ADDRESS_PARTS if "line" in node or "city" in node else _NAME_PARTS
            for part in parts:
                value = node.get(part)
                texts.extend(v for v in (value if isinstance(value, list) else [value]) if v)
    return [(normalize(t), cut(t)) for t in texts if isinstance(t, str) and t.strip()]


def _references(nodes: list[Any], context: ValueContext) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for node in nodes:
        target = node.get("reference") if isinstance(node, dict) else node
        if not isinstance(target, str) or target.startswith("#"):
            continue
        parsed = parse_reference(target, context.base)
        if parsed is not None:
            rows.append((parsed[0], cut(parsed[1]), None))
        else:
            rows.append((None, None, cut(target.split("|", 1)[0])))
    return rows


def _reference_identifiers(nodes: list[Any]) -> list[tuple[Any, ...]]:
    identifiers = [n["identifier"] for n in nodes if isinstance(n, dict) and "identifier" in n]
    return _tokens(identifiers, _NO_BASE) if identifiers else []


def _dates(nodes: list[Any], _context: ValueContext) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for node in nodes:
        try:
            if isinstance(node, str):
                rows.append(date_range(node))
            elif isinstance(node, dict) and ("start" in node or "end" in node):  # Period
                low = date_range(node["start"])[0] if "start" in node else MIN
                high = date_range(node["end"])[1] if "end" in node else MAX
                rows.append((low, high))
            elif isinstance(node, dict):  # Timing: its events, or the bounds of its repeat
                events = [date_range(e) for e in node.get("event") or () if isinstance(e, str)]
                bounds = (node.get("repeat") or {}).get("boundsPeriod")
                rows.extend(events or (_dates([bounds], _context) if bounds else []))
        except DateFormatError:
            continue
    return rows


def _numbers(nodes: list[Any], _context: ValueContext) -> list[tuple[Any, ...]]:
    return [(float(n),) for n in nodes if isinstance(n, int | float) and not isinstance(n, bool)]


def _quantities(nodes: list[Any], _context: ValueContext) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for node in nodes:
        if not isinstance(node, dict):
            continue
        if "low" in node or "high" in node:  # Range: both ends are searchable quantities
            rows.extend(_quantities([node.get("low"), node.get("high")], _context))
            continue
        value = node.get("value")
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if "currency" in node:  # Money
            rows.append((float(value), CURRENCY_SYSTEM, cut(node["currency"]), None))
        else:
            rows.append(
                (
                    float(value),
                    cut(node.get("system")),
                    cut(node.get("code")),
                    cut(node.get("unit")),
                )
            )
    return rows


def _uris(nodes: list[Any], _context: ValueContext) -> list[tuple[Any, ...]]:
    return [(cut(n),) for n in nodes if isinstance(n, str)]


CONVERTERS: dict[str, Converter] = {
    "token": _tokens,
    "string": _strings,
    "reference": _references,
    "date": _dates,
    "number": _numbers,
    "quantity": _quantities,
    "uri": _uris,
}
