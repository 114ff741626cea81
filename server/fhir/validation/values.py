"""Comparing instance values with fixed[x] and pattern[x], and navigating values by path.

fixed means exactly equal; pattern means every element of the pattern is present with
the same value, arrays matched item by item in any order
(https://hl7.org/fhir/R4/elementdefinition-definitions.html#ElementDefinition.pattern_x_).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from server.fhir.fhirpath import split_top_level

_EXTENSION_STEP = re.compile(r"^extension\('([^']*)'\)$")


def equals(value: Any, fixed: Any) -> bool:
    """fixed[x] semantics: the same JSON, numbers compared by value."""
    if isinstance(fixed, dict):
        return (
            isinstance(value, dict)
            and set(value) == set(fixed)
            and all(equals(value[k], fixed[k]) for k in fixed)
        )
    if isinstance(fixed, list):
        return (
            isinstance(value, list)
            and len(value) == len(fixed)
            and all(equals(v, f) for v, f in zip(value, fixed, strict=True))
        )
    return _same_scalar(value, fixed)


def contains(value: Any, pattern: Any) -> bool:
    """pattern[x] semantics: everything in ``pattern`` is in ``value``."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            k in value and contains(value[k], p) for k, p in pattern.items()
        )
    if isinstance(pattern, list):
        items = value if isinstance(value, list) else [value]
        return all(any(contains(item, p) for item in items) for p in pattern)
    return _same_scalar(value, pattern)


def _same_scalar(value: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return value is expected
    if isinstance(expected, int | float) and isinstance(value, int | float):
        return Decimal(str(value)) == Decimal(str(expected))
    return bool(value == expected)


def as_decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if isinstance(value, int | float | str) else None
    except InvalidOperation:
        return None


def values_at(value: Any, path: str) -> list[Any]:
    """The values reached from ``value`` by a discriminator path (``code.coding``, ``$this``,
    ``extension('url').value``, ``value.ofType(Quantity)``; choice names match any type)."""
    current = [value]
    for step in split_path(path):
        if step == "$this":
            continue
        if step == "resolve()":
            return []  # resolution is the caller's business
        found: list[Any] = []
        extension = _EXTENSION_STEP.match(step)
        for node in current:
            if not isinstance(node, dict):
                continue
            if extension:
                found.extend(
                    e
                    for e in node.get("extension") or ()
                    if isinstance(e, dict) and e.get("url") == extension.group(1)
                )
            elif step.startswith("ofType(") and step.endswith(")"):
                found.append(node)  # typing is checked against the rule, not the JSON
            else:
                found.extend(_children(node, step))
        current = found
    return current


def _children(node: dict[str, Any], name: str) -> list[Any]:
    if name in node:
        value = node[name]
        return value if isinstance(value, list) else [value]
    for key, value in node.items():  # a choice element: value -> valueQuantity
        if key.startswith(name) and key[len(name) : len(name) + 1].isupper():
            return value if isinstance(value, list) else [value]
    return []


def split_path(path: str) -> list[str]:
    """Split a FHIRPath-like path on dots outside parentheses and quotes."""
    return [step for step in split_top_level(path, ".") if step]
