"""Pydantic validation errors translated into FHIR issues with FHIRPath expressions.

A client never sees pydantic's text: each error type maps through a table to an
issue code and a sentence of ours, and ``loc`` becomes ``Observation.component[0].code``.
"""

from __future__ import annotations

from typing import Any

from server.errors import Issue
from server.fhir.elements import Element, walk_loc

# error type prefix -> (issue code, message template); {path} {type} {input} are filled in.
_TABLE: dict[str, tuple[str, str]] = {
    "missing": ("required", "{path}: required element is missing"),
    "model_field_validation.missing": ("required", "{path}: required element is missing"),
    "extra_forbidden": ("structure", "{path}: unknown element '{name}'"),
    "list_type": ("structure", "{path}: must be a JSON array"),
    "model_type": ("structure", "{path}: must be a JSON object"),
    "dict_type": ("structure", "{path}: must be a JSON object"),
    "string_pattern_mismatch": ("value", "{path}: {input} is not a valid {type}"),
    "string_too_long": ("value", "{path}: {input} is too long for a {type}"),
    "value_error": ("value", "{path}: {input} is not a valid {type}"),
    "int_from_float": ("value", "{path}: {input} is not a valid {type} (it has a fraction)"),
    "greater_than_equal": ("value", "{path}: {input} is below the range of {type}"),
    "less_than_equal": ("value", "{path}: {input} is above the range of {type}"),
}
_DATATYPE = ("structure", "{path}: {input} has the wrong JSON type for a {type}")
_VALUE = ("value", "{path}: {input} is not a valid {type}")


def issues_from_pydantic(data: dict[str, Any], errors: list[dict[str, Any]]) -> list[Issue]:
    """One Issue per pydantic error on ``data``, deduplicated, in pydantic's order."""
    seen: set[tuple[str, str]] = set()
    issues: list[Issue] = []
    for error in errors:
        issue = _translate(data, error)
        key = (issue.diagnostics, issue.expression[0] if issue.expression else "")
        if key not in seen:
            seen.add(key)
            issues.append(issue)
    return issues


def _translate(data: dict[str, Any], error: dict[str, Any]) -> Issue:
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    if kind == "value_error" and not loc:
        return _choice_issue(str(data["resourceType"]), error)
    path, found = fhirpath_of(data, loc)
    code, template = _TABLE.get(kind) or (_VALUE if "parsing" in kind else _DATATYPE)
    message = template.format(
        path=path,
        name=loc[-1] if loc else "",
        type=found.fhir_type if found else "value",
        input=_show(error.get("input")),
    )
    return Issue("error", code, message, (path,))


def _choice_issue(resource_type: str, error: dict[str, Any]) -> Issue:
    # fhir.resources reports "several value[x] present" as a model-level value_error.
    message = str(error.get("msg", ""))
    if "but got multiple" in message:
        return Issue(
            "error",
            "structure",
            f"{resource_type}: only one type of a choice element [x] may be present",
            (resource_type,),
        )
    return Issue("error", "structure", f"{resource_type}: invalid content", (resource_type,))


def fhirpath_of(data: dict[str, Any], loc: tuple[Any, ...]) -> tuple[str, Element | None]:
    """FHIRPath for a pydantic ``loc`` into ``data``, and the element it ends on (when known)."""
    parts = [str(data["resourceType"])]
    found: Element | None = None
    for step in walk_loc(data, loc):
        if isinstance(step.segment, int):
            parts[-1] += f"[{step.segment}]"
        else:
            parts.append(step.segment.removeprefix("_"))
            found = step.element
    return ".".join(parts), found


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."
