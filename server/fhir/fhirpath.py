"""SearchParameter expressions compiled to fast accessors, with fhirpathpy for the rest.

Nearly every R4 search expression is a dotted path, perhaps with ``as Type``,
``.as(Type)``, ``.where(resolve() is Type)`` or ``.where(system='x')``.  Those
compile to plain dict walks, many times faster than a FHIRPath interpreter, so
indexing stays cheap on write; anything else is evaluated by fhirpathpy.
Accessors return JSON nodes (dicts, strings, numbers, booleans).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

import fhirpathpy
from fhirpathpy.models import models

from server.fhir.elements import COMPLEX, RESOURCE, elements_of

Accessor = Callable[[Any], list[Any]]
_R4 = models["r4"]

_NAME = r"[A-Za-z][A-Za-z0-9]*"
_STEP = re.compile(
    rf"\.as\((?P<as>{_NAME})\)"
    rf"| as (?P<as2>{_NAME})"
    rf"|\.where\(resolve\(\) is (?P<resolve>{_NAME})\)"
    rf"|\.where\((?P<field>{_NAME})='(?P<value>[^']*)'\)"
    rf"|\.extension\('(?P<extension>[^']*)'\)"
    rf"|\.(?P<name>{_NAME})(?![A-Za-z0-9(])"
)


def split_union(expression: str) -> list[str]:
    """Top-level ``|`` alternatives, outer parentheses removed."""
    return [_unwrap(part.strip()) for part in split_top_level(expression, "|") if part.strip()]


def split_top_level(text: str, separator: str) -> list[str]:
    """``text`` split on ``separator`` outside parentheses and quoted strings."""
    parts, depth, quoted, start = [], 0, False, 0
    for index, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == separator:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _unwrap(part: str) -> str:
    while part.startswith("(") and part.endswith(")") and _balanced(part[1:-1]):
        part = part[1:-1].strip()
    return part


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def parts_for(resource_type: str, expression: str) -> list[str]:
    """The alternatives of ``expression`` that apply to ``resource_type``."""
    return [
        part
        for part in split_union(expression)
        if part == resource_type
        or part.startswith((resource_type + ".", resource_type + " "))
        or part.startswith(("Resource.", "DomainResource."))
    ]


@cache
def accessor(resource_type: str, expression: str) -> Accessor:
    """A function from a resource (JSON dict) to the nodes ``expression`` selects in it."""
    parts = [_compile_part(part) for part in parts_for(resource_type, expression)]
    if len(parts) == 1:
        return parts[0]

    def union(resource: Any) -> list[Any]:
        return [node for part in parts for node in part(resource)]

    return union


@cache
def root_keys(resource_type: str, expression: str) -> frozenset[str] | None:
    """Top-level JSON keys without which ``expression`` selects nothing (None: unknown).

    Lets the indexer skip most parameters of a resource after one set test.
    """
    keys: set[str] = set()
    for part in parts_for(resource_type, expression):
        head, dot, rest = part.partition(".")
        name = re.match(_NAME, rest) if dot else None
        if name is None or _simple_steps(dot + rest, head) is None:
            return None  # the interpreter may answer without any key (e.g. exists())
        model = "Resource" if head in ("Resource", "DomainResource") else head
        found = _keys(model, name.group())
        if found is None:
            return None
        keys.update(found)
    return frozenset(keys)


@cache
def relative_accessor(model: str | None, expression: str) -> Accessor:
    """An accessor for ``expression`` relative to a node of type ``model`` (None: unknown)."""
    steps = _simple_steps("." + expression, model)
    if steps is None:
        raise ValueError(f"Component expression {expression!r} is not a simple path")
    return _path_accessor(steps)


def model_at(resource_type: str, path: str) -> str | None:
    """The datatype model of the nodes at a simple ``path`` (``Observation.component``)."""
    model: str | None = resource_type
    for name in path.split(".")[1:]:
        model = _child_model(model, name)
    return model


def _compile_part(part: str) -> Accessor:
    head, dot, rest = part.partition(".")
    steps = _simple_steps(dot + rest, head) if re.fullmatch(_NAME, head) else None
    if steps is None:
        return _interpreted(part)
    return _path_accessor(steps)


def _simple_steps(rest: str, model: str | None) -> list[Callable[[list[Any]], list[Any]]] | None:
    """Dict-walk steps for a simple path; None when the part needs the interpreter."""
    if model in ("Resource", "DomainResource"):
        model = "Resource"
    steps: list[Callable[[list[Any]], list[Any]]] = []
    position, pending_choice = 0, None
    while position < len(rest):
        match = _STEP.match(rest, position)
        if match is None:
            return None
        position = match.end()
        if match["name"]:
            if pending_choice:
                steps.append(_choice_step(pending_choice, None))
            name = match["name"]
            keys = _keys(model, name)
            if keys is None:
                return None
            if keys != [name]:  # a choice element: resolved by a following as(), or any type
                pending_choice, model = name, None
                continue
            pending_choice = None
            steps.append(_key_step(name))
            model = _child_model(model, name)
        elif match["as"] or match["as2"]:
            type_name = match["as"] or match["as2"]
            if pending_choice:
                steps.append(_choice_step(pending_choice, type_name))
                pending_choice = None
            else:
                steps.append(_type_filter_step(type_name))
            model = type_name if type_name[0].isupper() else None
        elif match["extension"]:
            if pending_choice:
                return None
            steps.append(_key_step("extension"))
            steps.append(_where_step("url", match["extension"]))
            model = "Extension"
        elif match["resolve"]:
            if pending_choice:
                return None
            steps.append(_resolve_step(match["resolve"]))
        else:
            if pending_choice:
                return None
            steps.append(_where_step(match["field"], match["value"]))
    if pending_choice:
        steps.append(_choice_step(pending_choice, None))
    return steps


def _keys(model: str | None, name: str) -> list[str] | None:
    """JSON keys that ``name`` may stand for in ``model``; None when it has no such element.

    With no model known, ``name`` may be the key itself or a choice: both are kept.
    """
    if model is None:
        return [name, name + "[x]"]
    table = elements_of(model)
    if name in table:
        return [name]
    size = len(name)
    choices = [key for key in table if key.startswith(name) and key[size : size + 1].isupper()]
    return choices or None


def _child_model(model: str | None, name: str) -> str | None:
    if model is None:
        return None
    found = elements_of(model).get(name)
    if found is None or found.kind not in (COMPLEX, RESOURCE):
        return None
    return found.child if found.kind == COMPLEX else None


def _path_accessor(steps: list[Callable[[list[Any]], list[Any]]]) -> Accessor:
    def walk(resource: Any) -> list[Any]:
        nodes = [resource]
        for step in steps:
            nodes = step(nodes)
            if not nodes:
                return nodes
        return nodes

    return walk


def _flatten(values: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if isinstance(value, list):
            out.extend(v for v in value if v is not None)
        elif value is not None:
            out.append(value)
    return out


def _key_step(name: str) -> Callable[[list[Any]], list[Any]]:
    def step(nodes: list[Any]) -> list[Any]:
        return _flatten(node.get(name) for node in nodes if isinstance(node, dict))

    return step


def _choice_step(name: str, type_name: str | None) -> Callable[[list[Any]], list[Any]]:
    """``name[x]`` of one type, or of any type (the plain key too, where the model is unknown)."""
    if type_name is not None:
        return _key_step(name + type_name[0].upper() + type_name[1:])
    prefix = len(name)

    def step(nodes: list[Any]) -> list[Any]:
        return _flatten(
            value
            for node in nodes
            if isinstance(node, dict)
            for key, value in node.items()
            if key == name or (key.startswith(name) and key[prefix : prefix + 1].isupper())
        )

    return step


def _type_filter_step(type_name: str) -> Callable[[list[Any]], list[Any]]:
    # ``x as T`` on a non-choice element: JSON carries no type, so keep what can be a T.
    def step(nodes: list[Any]) -> list[Any]:
        return [n for n in nodes if isinstance(n, dict) == type_name[0].isupper()]

    return step


def _resolve_step(type_name: str) -> Callable[[list[Any]], list[Any]]:
    def step(nodes: list[Any]) -> list[Any]:
        return [n for n in nodes if isinstance(n, dict) and reference_type(n) == type_name]

    return step


def _where_step(field: str, value: str) -> Callable[[list[Any]], list[Any]]:
    def step(nodes: list[Any]) -> list[Any]:
        return [n for n in nodes if isinstance(n, dict) and n.get(field) == value]

    return step


def reference_type(reference: dict[str, Any]) -> str | None:
    """The resource type a Reference points to (from ``reference`` or ``type``)."""
    target = reference.get("reference")
    if isinstance(target, str):
        # A conditional reference (Type?criteria): its criteria may hold any "/" of a value.
        target, conditional, _ = target.partition("?")
        if conditional and "/" not in target and target[:1].isupper():
            return target
    if isinstance(target, str) and "/" in target:
        parts = target.split("/")
        if "_history" in parts:
            parts = parts[: parts.index("_history")]
        if len(parts) >= 2 and parts[-2][:1].isupper():
            return parts[-2]
    declared = reference.get("type")
    return declared if isinstance(declared, str) else None


def _interpreted(part: str) -> Accessor:
    compiled = fhirpathpy.compile(part, _R4)

    def evaluate(resource: Any) -> list[Any]:
        return [value for value in compiled(resource, {}) if value is not None]

    return evaluate
