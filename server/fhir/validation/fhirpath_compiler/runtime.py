"""Run-time operations of compiled FHIRPath, over plain JSON values.

A collection is a Python list of the JSON values themselves (dict, list item, str, int,
float, bool) and of computed values; whether an item is a node (navigated data) or a computed
value is known statically (``model.Shape``), so no item is wrapped.  Each operation mirrors
fhirpathpy 2.2.4 (``fhirpathpy/engine/invocations``), quirks included, so that a compiled
invariant decides exactly as fhirpathpy does; where fhirpathpy's answer depends on state this
module cannot see it raises :class:`Undecidable`, and where fhirpathpy raises it raises
:class:`Failed` (an invariant that fails to evaluate holds, as in ``invariants.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from server.fhir.validation.fhirpath_compiler import model


class Undecidable(Exception):
    """This evaluation must be left to fhirpathpy."""


class Failed(Exception):
    """fhirpathpy raises an error on this evaluation."""


_DATE_LIKE = re.compile(r"^(\d{4}(-|$|T)|T?\d{2}:\d{2})")
_MISSING = object()


def data(value: Any) -> Any:
    """fhirpathpy's ``util.get_data``: JSON floats become Decimals."""
    return Decimal(str(value)) if isinstance(value, float) else value


def is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


# -- navigation ------------------------------------------------------------------------------


def _check_path(item: dict[str, Any], paths: frozenset[str | None]) -> None:
    resource_type = item.get("resourceType", _MISSING)
    if resource_type is _MISSING:
        return
    if (resource_type is not None and not isinstance(resource_type, str)) or (
        resource_type not in paths
    ):
        raise Undecidable("a JSON object with a resourceType where a datatype was expected")


NavigationStep = tuple[str, str, frozenset[str | None] | None]  # key, _key, parents' paths


def plain(items: list[Any], key: str, paths: frozenset[str | None] | None) -> list[Any]:
    """``items.key`` for a non-choice key; ``paths`` (when given) are the parents' paths."""
    out: list[Any] = []
    companion = "_" + key
    for item in items:
        if isinstance(item, dict):
            if paths is not None and "resourceType" in item:
                _check_path(item, paths)
            value = item.get(key)
            if value is not None:
                if isinstance(value, list):
                    out.extend(value)
                else:
                    out.append(value)
            value = item.get(companion)
            if value is not None:
                if isinstance(value, list):
                    out.extend(value)
                else:
                    out.append(value)
    return out


def navigator(
    source: Callable[[list[Any], Any], list[Any]] | None, steps: tuple[NavigationStep, ...]
) -> Callable[[list[Any], Any], list[Any]]:
    """A closure following non-choice members from the focus (or from ``source``)."""
    if source is None and len(steps) == 1:
        ((key, companion, paths),) = steps

        def first(focus: list[Any], env: Any) -> list[Any]:
            return plain(focus, key, paths)

        return first

    def follow(focus: list[Any], env: Any) -> list[Any]:
        items = focus if source is None else source(focus, env)
        for key, _, paths in steps:
            if not items:
                break
            items = plain(items, key, paths)
        return items

    return follow


def choice(
    items: list[Any], alternatives: model.Choice, paths: frozenset[str | None]
) -> list[tuple[Any, str]]:
    """``items.key`` for a choice key, each value with its path (type)."""
    out: list[tuple[Any, str]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if "resourceType" in item:
            _check_path(item, paths)
        found = _first_alternative(item, alternatives)
        if found is None:
            continue
        key, companion, path = found
        for value in (item.get(key), item.get(companion)):
            if isinstance(value, list):
                out.extend((each, path) for each in value)
            elif value is not None:
                out.append((value, path))
    return out


def _first_alternative(item: dict[str, Any], choice: model.Choice) -> tuple[str, str, str] | None:
    """The first alternative (in the model's order) with a value or a companion."""
    if len(item) < len(choice.alternatives):  # scan the object's few keys, not the types
        best = None
        for key, value in item.items():
            order = choice.order.get(key)
            if order is not None and value is not None and (best is None or order < best):
                best = order
        return None if best is None else choice.alternatives[best]
    for alternative in choice.alternatives:
        if item.get(alternative[0]) is not None or item.get(alternative[1]) is not None:
            return alternative
    return None


def by_resource(items: list[Any], key: str, fallback: frozenset[str | None]) -> list[Any]:
    """``items.key`` where JSON objects with a resourceType take it as their path."""
    out: list[Any] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if "resourceType" in item:
            path = item["resourceType"]
            if path is not None and not isinstance(path, str):
                raise Undecidable("resourceType is not a string")
        elif len(fallback) == 1:
            (path,) = fallback
        else:
            raise Undecidable("a node of unknown path")
        spec = model.member(path, key)
        if isinstance(spec, model.Plain):
            out.extend(plain([item], key, None))
        else:
            out.extend(value for value, _ in choice([item], spec, frozenset({path})))
    return out


def remove_duplicate_extension(items: list[Any], nodes: bool) -> list[Any]:
    """fhirpathpy's ``remove_duplicate_extension``: drops a primitive's ``_`` companion."""
    if nodes and len(items) == 2:
        try:
            if "extension" in items[1]:
                return items[:1]
        except TypeError as error:
            raise Failed("'in' on a number") from error
    return items


# -- equality and comparison -----------------------------------------------------------------


def equal(left: list[Any], right: list[Any]) -> bool | None:
    """``=`` as fhirpathpy's ``equality``: None for empty, else compares the first items
    (fhirpathpy compares nodes by their JSON data, except Quantity nodes)."""
    if not left or not right:
        return None
    if len(left) != len(right):
        return False
    return bool(left[0] == right[0])  # the compiler has excluded Quantity nodes


def ordered(left: list[Any], right: list[Any]) -> tuple[Any, Any] | None:
    """The two values an inequality compares (fhirpathpy's ``typecheck``); None for empty."""
    if not left or not right:
        return None
    if len(left) > 1 or len(right) > 1:
        raise Failed("inequality on a collection")
    first, second = data(left[0]), data(right[0])
    if type(first) is not type(second) and not (is_number(first) and is_number(second)):
        raise Failed("inequality between different types")
    if isinstance(first, str) and (_DATE_LIKE.match(first) or _DATE_LIKE.match(second)):
        raise Undecidable("a date or time compared as a string")
    if first is None or isinstance(first, dict | list):
        raise Failed("inequality on complex values")
    return first, second


def contains(collection: list[Any], item: list[Any]) -> bool | None:
    """fhirpathpy's ``contains`` (membership, ``a contains b`` = ``b in a``)."""
    if not item:
        return None
    if not collection:
        return False
    if len(item) > 1:
        raise Failed("membership of a collection")
    wanted = item[0]
    return any(each == wanted for each in collection)


# -- logic -----------------------------------------------------------------------------------


def boolean(items: list[Any]) -> bool | None:
    """An operand of and/or/xor/implies: None for empty, else a boolean singleton."""
    if not items:
        return None
    if len(items) > 1:
        raise Failed("boolean operator on a collection")
    value = items[0]
    if value is True or value is False:
        return value
    raise Failed("boolean operator on a non-boolean")


def _logic(rule: Any) -> dict[tuple[bool | None, bool | None], list[bool]]:
    table = {}
    for left in (True, False, None):
        for right in (True, False, None):
            result = rule(left, right)
            table[(left, right)] = [] if result is None else [result]
    return table


AND = _logic(lambda a, b: False if a is False or b is False else (None if None in (a, b) else True))
OR = _logic(lambda a, b: True if a is True or b is True else (None if None in (a, b) else False))
XOR = _logic(lambda a, b: None if None in (a, b) else a != b)
IMPLIES = _logic(
    lambda a, b: True if a is False or b is True else (None if None in (a, b) else False)
)


def is_true(items: list[Any]) -> bool:
    """fhirpathpy's ``util.is_true`` on a result collection."""
    return len(items) == 1 and bool(items[0] == True)  # noqa: E712 - 1 and 1.0 are true too


# -- strings ---------------------------------------------------------------------------------


def string_argument(items: list[Any]) -> str | None:
    """A String parameter: None for empty, else a string singleton."""
    if not items:
        return None
    if len(items) > 1:
        raise Failed("a collection where a string parameter was expected")
    value = data(items[0])
    if not isinstance(value, str):
        raise Failed("a non-string where a string parameter was expected")
    return value


def integer_argument(items: list[Any]) -> Any:
    """An Integer parameter: None for empty, else the integral number as given."""
    if not items:
        return None
    if len(items) > 1:
        raise Failed("a collection where an integer parameter was expected")
    value = data(items[0])
    try:
        integral = int(value)
    except (TypeError, ValueError, OverflowError) as error:
        raise Failed("a non-integer parameter") from error
    if integral != value:
        raise Failed("a non-integer parameter")
    return value


def single_string(items: list[Any]) -> str:
    """fhirpathpy's ``ensure_string_singleton``."""
    value = data(items[0]) if len(items) == 1 else None
    if not isinstance(value, str):
        raise Failed("a string function on a non-string")
    return value


# -- collections -----------------------------------------------------------------------------


def uniq(values: list[Any]) -> list[Any]:
    """fhirpathpy's ``util.uniq``: the last of equal JSON serialisations, in first order."""
    seen: dict[str, Any] = {}
    for value in values:
        try:
            key = json.dumps(value, sort_keys=True)
        except TypeError:
            key = str(value)
        seen[key] = value
    return list(seen.values())


def intersect(left: list[Any], right: list[Any]) -> list[Any]:
    found = [each for each in left if any(each == other for other in right)]
    unique: list[Any] = []
    for each in found:
        if each not in unique:
            unique.append(each)
    return unique


def children(items: list[Any], with_companions: bool) -> list[Any]:
    """fhirpathpy's ``children()`` of nodes whose paths are known not to be None."""
    out: list[Any] = []
    for item in items:
        if isinstance(item, list) and item:
            raise Failed("children() of an array")
        if isinstance(item, dict):
            for key, value in item.items():
                if key.startswith("_") and not with_companions:
                    continue
                if isinstance(value, list):
                    out.extend(value)
                else:
                    out.append(value)
    return out
