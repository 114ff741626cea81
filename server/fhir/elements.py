"""What each JSON key of a FHIR type holds, read once from the R4B model annotations.

The structural checks and the error messages both need to know, for a key such
as ``valueQuantity`` or ``_birthDate``, its FHIR type, whether it repeats and
which model describes its children.  This module answers that from the
``fhir.resources`` annotations, cached per model.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any

from server.fhir.models import model_for

# JSON value kinds of FHIR primitives (https://hl7.org/fhir/R4/json.html#primitive).
BOOLEAN, INTEGER, DECIMAL, STRING = "boolean", "integer", "decimal", "string"
COMPLEX, RESOURCE, PRIMITIVE_EXTENSION = "complex", "resource", "primitive-extension"

_PRIMITIVE_KINDS = {BOOLEAN, INTEGER, DECIMAL, STRING}
_INTEGER_TYPES = {"Integer", "UnsignedInt", "PositiveInt", "Integer64"}


@dataclass(frozen=True)
class Element:
    """One key of a FHIR JSON object."""

    name: str
    kind: str
    fhir_type: str
    repeats: bool
    required: bool
    child: str | None = None  # model name for COMPLEX children


def child_model(found: Element, value: Any) -> str | None:
    """The model of ``value`` held by ``found``: its datatype, or a nested resource type."""
    if found.kind == RESOURCE:
        kind = value.get("resourceType") if isinstance(value, dict) else None
        return kind if isinstance(kind, str) else None
    return found.child


def element(model_name: str, key: str) -> Element | None:
    """The element ``key`` of ``model_name``, or None when the type has no such key.

    ``_x`` keys of primitives are answered even where the R4B model lacks them
    (e.g. ``Extension._valueString``), since R4 JSON allows them for every primitive.
    """
    table = elements_of(model_name)
    found = table.get(key)
    if found is None and key.startswith("_"):
        base = table.get(key[1:])
        if base is not None and base.kind in _PRIMITIVE_KINDS:
            return _primitive_extension(key, base.repeats)
    return found


@cache
def elements_of(model_name: str) -> dict[str, Element]:
    """Every JSON key of ``model_name`` (resource, datatype or backbone element)."""
    model = model_for(model_name)
    table: dict[str, Element] = {}
    for field in model.model_fields.values():
        key = field.alias
        if key is None or key == "fhir_comments":
            continue
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        required = field.is_required() or bool(extra.get("element_required"))
        table[key] = _describe(key, field.annotation, required)
    return table


def _describe(key: str, annotation: Any, required: bool) -> Element:
    inner, repeats = _unwrap(annotation)
    if key.startswith("_"):
        return _primitive_extension(key, repeats)
    name = getattr(inner, "__name__", "")
    if name == "ResourceType":
        return Element(key, RESOURCE, "Resource", repeats, required)
    if hasattr(inner, "get_model_klass"):
        child = name.removesuffix("Type")
        return Element(key, COMPLEX, child, repeats, required, child)
    return _primitive(key, inner, annotation, repeats, required)


def _primitive(key: str, inner: Any, annotation: Any, repeats: bool, required: bool) -> Element:
    metadata = _annotated_metadata(annotation)
    fhir_class = type(metadata[-1]).__name__ if metadata else ""
    if inner is bool:
        kind, fhir_type = BOOLEAN, "boolean"
    elif fhir_class in _INTEGER_TYPES or inner is int:
        kind, fhir_type = INTEGER, _lower_first(fhir_class or "Integer")
    elif fhir_class == "Decimal":
        kind, fhir_type = DECIMAL, "decimal"
    else:
        kind, fhir_type = STRING, _lower_first(fhir_class or "String")
    return Element(key, kind, fhir_type, repeats, required)


def _primitive_extension(key: str, repeats: bool) -> Element:
    return Element(key, PRIMITIVE_EXTENSION, "Element", repeats, False, "FHIRPrimitiveExtension")


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """Strip Optional/Annotated/List; report whether a list was seen."""
    repeats = False
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0]
        elif origin is list:
            repeats = True
            annotation = typing.get_args(annotation)[0]
        elif origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation, repeats


def _annotated_metadata(annotation: Any) -> tuple[Any, ...]:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            return tuple(annotation.__metadata__)
        if origin in (typing.Union, types.UnionType, list):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0]
        else:
            return ()


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


@dataclass(frozen=True)
class Step:
    """One segment of a path into a resource, with the element it names (if known)."""

    segment: str | int
    element: Element | None


def walk_loc(data: Any, loc: tuple[Any, ...]) -> list[Step]:
    """Follow a pydantic ``loc`` through ``data``, resolving nested resources by their type."""
    steps: list[Step] = []
    model: str | None = data.get("resourceType") if isinstance(data, dict) else None
    node: Any = data
    current: Element | None = None
    for segment in loc:
        if isinstance(segment, int):
            node = node[segment] if isinstance(node, list) and segment < len(node) else None
            steps.append(Step(segment, current))
            if current is not None and current.kind == RESOURCE:
                model = child_model(current, node)
            continue
        name = str(segment)
        current = element(model, name) if model else None
        node = node.get(name) if isinstance(node, dict) else None
        steps.append(Step(name, current))
        if current is None:
            model = None
        elif current.kind != RESOURCE or not current.repeats:
            model = child_model(current, node)
    return steps


def model_at(data: Any, loc: tuple[Any, ...]) -> str | None:
    """The model name of the object that ``loc`` points at inside ``data``."""
    if not loc:
        kind = data.get("resourceType") if isinstance(data, dict) else None
        return kind if isinstance(kind, str) else None
    node: Any = data
    for segment in loc:
        node = node[segment] if isinstance(node, list | dict) else None
    last = walk_loc(data, loc)
    named = [s for s in last if isinstance(s.segment, str)]
    if not named or named[-1].element is None:
        return None
    return child_model(named[-1].element, node)


@cache
def summary_keys(model_name: str) -> frozenset[str]:
    """Top-level keys of ``model_name`` that ``_summary=true`` keeps (isSummary, mandatory)."""
    keys = {"resourceType", "id", "meta"}
    for field in model_for(model_name).model_fields.values():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if field.alias and (extra.get("summary_element_property") or field.is_required()):
            keys.update((field.alias, "_" + field.alias))
    return frozenset(keys)
