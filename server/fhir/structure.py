"""Structural validation of a resource against the base R4 specification.

Two passes: the R4B pydantic model (elements, cardinality of required elements,
primitive formats, choice types), then a walk over the JSON itself for the
rules of https://hl7.org/fhir/R4/json.html that pydantic's lax parsing lets
through: a boolean sent as ``"true"``, a number sent as a string, empty objects,
arrays or strings, and codes outside a closed required value set.
"""

from __future__ import annotations

import re
from typing import Any

from server.errors import Issue
from server.fhir import jsonio
from server.fhir.elements import (
    BOOLEAN,
    COMPLEX,
    DECIMAL,
    INTEGER,
    PRIMITIVE_EXTENSION,
    RESOURCE,
    STRING,
    Element,
    element,
    model_at,
)
from server.fhir.issues import issues_from_pydantic
from server.fhir.models import ValidationError, model_for, validate

MAX_ISSUES = 50
MAX_ID_LENGTH = 64  # https://hl7.org/fhir/R4/datatypes.html#id
# JSON levels a resource may nest (the official examples reach 22); past ~250 the validators'
# recursion would exhaust Python's stack.
MAX_DEPTH = 100
# https://hl7.org/fhir/R4/datatypes.html#string: no character below U+0020 but tab, CR and LF
# (PostgreSQL text cannot even hold U+0000).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def check_resource(data: dict[str, Any]) -> list[Issue]:
    """All structural issues of ``data`` (a parsed JSON resource); empty when valid."""
    resource_type = data.get("resourceType")
    if not isinstance(resource_type, str) or not _is_type(resource_type):
        return [
            Issue("error", "structure", "resourceType is missing or unknown", ("resourceType",))
        ]
    if jsonio.deeper_than(data, MAX_DEPTH):
        return [
            Issue(
                "error",
                "too-costly",
                f"{resource_type} nests JSON objects and arrays deeper than {MAX_DEPTH} levels",
                (resource_type,),
            )
        ]
    try:
        errors = _pydantic_errors(resource_type, data)
    except (AttributeError, TypeError):
        # Some R4B model validators fail outright on a malformed shape (found by bench/fuzz.py:
        # a string where ``_system`` needs an object); the JSON walk below names the element.
        errors, crashed = [], True
    else:
        crashed = False
    if errors:
        return issues_from_pydantic(data, errors)[:MAX_ISSUES]
    issues: list[Issue] = []
    _walk_object(resource_type, data, resource_type, issues, is_resource=True)
    if crashed and not issues:
        issues.append(
            Issue("error", "structure", f"{resource_type} is malformed", (resource_type,))
        )
    return issues[:MAX_ISSUES]


def _pydantic_errors(resource_type: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        validate(resource_type, data)
        return []
    except ValidationError as exc:
        errors: list[dict[str, Any]] = [dict(e) for e in exc.errors()]
    # The R4B models lack some valid ``_x`` keys (Extension._valueString): drop those
    # and parse again, so that the rest of the resource is still checked.
    spurious = [e for e in errors if _is_spurious(data, e)]
    if not spurious or len(spurious) != len(errors):
        return [e for e in errors if e not in spurious]
    trimmed = _without_paths(data, [tuple(e.get("loc", ())) for e in spurious])
    try:
        validate(resource_type, trimmed)
        return []
    except ValidationError as exc:
        return [dict(e) for e in exc.errors() if not _is_spurious(trimmed, dict(e))]


def _is_spurious(data: dict[str, Any], error: dict[str, Any]) -> bool:
    loc = tuple(error.get("loc", ()))
    if error.get("type") != "extra_forbidden" or not loc or not str(loc[-1]).startswith("_"):
        return False
    model = model_at(data, loc[:-1])
    return model is not None and element(model, str(loc[-1])) is not None


def _without_paths(data: Any, paths: list[tuple[Any, ...]]) -> Any:
    copy = _deep_copy(data)
    for path in paths:
        node = copy
        for segment in path[:-1]:
            node = node[segment]
        node.pop(path[-1], None)
    return copy


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _is_type(name: str) -> bool:
    try:
        model_for(name)
    except ValueError:
        return False
    return name[:1].isupper()


def _walk_object(
    model: str, obj: dict[str, Any], path: str, issues: list[Issue], is_resource: bool = False
) -> None:
    if not obj or (is_resource and len(obj) == 1):
        issues.append(Issue("error", "structure", f"{path}: must not be empty", (path,)))
        return
    for key, value in obj.items():
        if key == "resourceType" and is_resource:
            continue
        found = element(model, key)
        if found is None:
            continue  # pydantic has already reported unknown elements
        child_path = f"{path}.{key[1:] if key.startswith('_') else key}"
        if found.repeats:
            _walk_array(found, value, child_path, issues, primitive_pair=_pair_of(obj, key))
        else:
            _walk_value(found, value, child_path, issues)


def _pair_of(obj: dict[str, Any], key: str) -> bool:
    """Whether the primitive array ``key`` has its ``_key`` twin (where nulls are allowed)."""
    twin = key[1:] if key.startswith("_") else "_" + key
    return twin in obj


def _walk_array(
    found: Element, value: Any, path: str, issues: list[Issue], primitive_pair: bool
) -> None:
    if not isinstance(value, list):
        issues.append(Issue("error", "structure", f"{path}: must be a JSON array", (path,)))
        return
    if not value:
        issues.append(Issue("error", "structure", f"{path}: must not be an empty array", (path,)))
        return
    for index, item in enumerate(value):
        if item is None and primitive_pair:
            continue
        _walk_value(found, item, f"{path}[{index}]", issues)


def _walk_value(found: Element, value: Any, path: str, issues: list[Issue]) -> None:
    kind = found.kind
    if kind in (COMPLEX, PRIMITIVE_EXTENSION):
        if isinstance(value, dict):
            _walk_object(found.child or "Element", value, path, issues)
        else:
            issues.append(Issue("error", "structure", f"{path}: must be a JSON object", (path,)))
    elif kind == RESOURCE:
        if isinstance(value, dict) and isinstance(value.get("resourceType"), str):
            _walk_object(value["resourceType"], value, path, issues, is_resource=True)
    elif not _primitive_ok(kind, value):
        issues.append(
            Issue(
                "error",
                "structure",
                f"{path}: {_show(value)} has the wrong JSON type for a {found.fhir_type}",
                (path,),
            )
        )
    elif kind == STRING and not value.strip():
        issues.append(Issue("error", "value", f"{path}: must not be an empty string", (path,)))
    elif kind == STRING and (control := _CONTROL.search(value)):
        issues.append(
            Issue(
                "error",
                "value",
                f"{path}: a FHIR string must not hold control characters other than tab, CR "
                f"and LF (found U+{ord(control.group()):04X})",
                (path,),
            )
        )
    elif found.fhir_type == "id" and len(value) > MAX_ID_LENGTH:
        issues.append(
            Issue(
                "error", "value", f"{path}: an id has at most {MAX_ID_LENGTH} characters", (path,)
            )
        )


def _primitive_ok(kind: str, value: Any) -> bool:
    if kind == BOOLEAN:
        return isinstance(value, bool)
    if kind == INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == DECIMAL:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
