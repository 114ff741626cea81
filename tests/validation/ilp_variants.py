"""Broken variants of the ILP examples (``profiles/examples/``) for test_ilp_profiles_*.

A variant is a deep copy of one example with one small mutation, written as a path into the
JSON (``"identifier.0.value"``, list indexes as numbers).  ``variants_of(example)`` makes the
pytest cases of one example, each with the issue it must get: words of the message (the
constraint key, or the element and its cardinality), the FHIRPath expression of the element
at fault (its parent for a missing element or slice, as the HL7 Java validator reports) and
the severity (error, or warning where the rule is a warning by design).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from typing import Any

import pytest

from server.errors import Issue
from server.fhir.validation import Validator
from tests.validation.conftest import PROFILES_FOLDER

EXAMPLES_FOLDER = PROFILES_FOLDER / "examples"
Mutation = Callable[[dict[str, Any]], None]


@functools.cache
def _example(name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((EXAMPLES_FOLDER / f"{name}.json").read_text("utf-8"))
    return found


def example(name: str) -> dict[str, Any]:
    """A fresh copy of ``profiles/examples/{name}.json``."""
    return copy.deepcopy(_example(name))


def _parent(resource: dict[str, Any], path: str) -> tuple[Any, Any]:
    *steps, last = (int(step) if step.isdigit() else step for step in path.split("."))
    node: Any = resource
    for step in steps:
        node = node[step]
    return node, last


def put(path: str, value: Any) -> Mutation:
    """Set (or add) the value at ``path``."""

    def mutate(resource: dict[str, Any]) -> None:
        node, last = _parent(resource, path)
        node[last] = value

    return mutate


def drop(*paths: str) -> Mutation:
    """Remove each of ``paths``, in order (give list items last index first)."""

    def mutate(resource: dict[str, Any]) -> None:
        for path in paths:
            node, last = _parent(resource, path)
            del node[last]

    return mutate


def append(path: str, value: Any) -> Mutation:
    """Append ``value`` to the list at ``path``."""

    def mutate(resource: dict[str, Any]) -> None:
        node, last = _parent(resource, path)
        node[last].append(value)

    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(resource: dict[str, Any]) -> None:
        for one in mutations:
            one(resource)

    return mutate


def broken(
    name: str,
    case_id: str,
    mutation: Mutation,
    words: str,
    expression: str,
    *,
    severity: str = "error",
    xfail: str | None = None,
) -> Any:
    """One case: example ``name`` after ``mutation`` gets a ``severity`` issue at
    ``expression`` whose message contains ``words``.  ``xfail``: why the validator does not
    (yet) report it so; the case then fails strictly until it does."""
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(name, mutation, words, expression, severity, id=case_id, marks=marks)


def variants_of(name: str) -> Callable[..., Any]:
    """``broken`` for the example ``name``: ``variants_of(name)(case_id, mutation, ...)``."""
    return functools.partial(broken, name)


VARIANT_ARGS = ("name", "mutation", "words", "expression", "severity")


def describe(issues: list[Issue]) -> str:
    return "\n".join(f"  {i.severity} at {list(i.expression)}: {i.diagnostics}" for i in issues)


def check_variant(
    validator: Validator, name: str, mutation: Mutation, words: str, expression: str, severity: str
) -> None:
    """Validate the variant (against its meta.profile) and check the expected issue."""
    resource = example(name)
    mutation(resource)
    issues = validator.validate(resource)
    matching = [
        issue
        for issue in issues
        if issue.severity == severity
        and issue.expression == (expression,)
        and words in issue.diagnostics
    ]
    assert matching, f"no {severity} at {expression} mentioning {words!r}; got:\n{describe(issues)}"
    if severity == "warning":  # a warning by design: the variant must stay valid
        errors = [issue for issue in issues if issue.severity in ("fatal", "error")]
        assert not errors, f"a warning rule, but errors too:\n{describe(errors)}"
