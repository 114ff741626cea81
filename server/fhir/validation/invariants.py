"""FHIRPath invariants of StructureDefinitions: compiled once, evaluated per element.

``Invariants.check`` picks, per (expression, base path), the fastest evaluator: a native
function keyed by the exact expression text, else ``fhirpath_compiler`` (1-5 microseconds,
answering exactly as fhirpathpy does, for all but three of the R4 and ILP invariants), else
fhirpathpy (50-2,000 microseconds).  A compiled invariant hands an evaluation it cannot decide
(a date compared as a string, a quantity compared...) to fhirpathpy.  An invariant that fails
to evaluate holds: fhirpathpy 2.2.4 lacks hasValue() and htmlChecks(), so ele-1, txt-1/2,
per-1 and the Quantity profiles' hasValue() clauses can never fail, and get no check at all.

Only dom-3 stays native: its fhirpathpy form takes ``descendants()`` of the whole resource
and ``as(canonical)`` of nodes whose type only the model knows, which the compiler leaves to
fhirpathpy (about a millisecond per resource).  The other natives (ext-1, dom-2/4/5/6,
obs-6/7, ref-1, qty-3, att-1, cpt-2) are gone: their compiled forms cost 1-3 microseconds
and, unlike the natives, agree with fhirpathpy on every input.
tests/validation/test_fhirpath_compiler.py checks the compiled forms against fhirpathpy.
See https://hl7.org/fhir/R4/conformance-rules.html#constraints.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from server.fhir.validation.fhirpath_compiler import (
    CompiledInvariant,
    Undecidable,
    compile_invariant,
)
from server.fhir.validation.fhirpath_compiler.model import node_path

logger = logging.getLogger(__name__)

# node, %resource, %rootResource -> holds?
Check = Callable[[Any, dict[str, Any], dict[str, Any]], bool]

_R4 = models["r4"]
_OPTIONS = {"traceFn": lambda *_: None}
_GUARD = re.compile(r"^\(?([A-Za-z]+)\.(empty\(\) or |exists\(\) implies )")


def _has(node: Any, key: str) -> bool:
    return isinstance(node, dict) and (key in node or "_" + key in node)


def _has_choice(node: Any, name: str) -> bool:
    if not isinstance(node, dict):
        return False
    for key in node:
        key = key[1:] if key.startswith("_") else key  # a primitive with only extensions
        if key.startswith(name) and key[len(name) : len(name) + 1].isupper():
            return True
    return False


def _contained(node: Any) -> list[Any]:
    value = node.get("contained") if isinstance(node, dict) else None
    return value if isinstance(value, list) else []


def _dom_3(node: Any, resource: dict[str, Any], root: dict[str, Any]) -> bool:
    contained = _contained(node)
    if not contained:
        return True
    outside = {k: v for k, v in node.items() if k != "contained"}
    referenced = set(_local_references(outside))
    for item in contained:
        inner = set(_local_references(item))
        if "#" in inner:  # a contained resource refers back to its container
            continue
        item_id = item.get("id") if isinstance(item, dict) else None
        if f"#{item_id}" in referenced or any(
            f"#{item_id}" in _local_references(other) for other in contained if other is not item
        ):
            continue
        return False
    return True


def _local_references(value: Any) -> list[str]:
    found: list[str] = []
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
        elif isinstance(current, str) and current.startswith("#"):
            found.append(current)
    return found


NATIVE: dict[str, Check] = {}
# dom-3: every contained resource is referenced from the rest of the resource or from
# another contained one.  fhirpathpy's answer depends on descendants() and as(canonical)
# over nodes whose types only the model knows, which the compiler leaves alone; a native walk
# of the JSON is the only fast form.
NATIVE[
    "contained.where((('#'+id in (%resource.descendants().reference | "
    "%resource.descendants().as(canonical) | %resource.descendants().as(uri) | "
    "%resource.descendants().as(url))) or descendants().where(reference = '#').exists() or "
    "descendants().where(as(canonical) = '#').exists() or descendants().where(as(canonical) = "
    "'#').exists()).not()).trace('unmatched', id).empty()"
] = _dom_3


class Invariants:
    """Compiled invariants, by expression; thread-safe."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[str, str], Check | None] = {}
        self._lock = threading.Lock()

    def check(self, expression: str, base_path: str) -> Check | None:
        """A check for ``expression`` evaluated at an element of ``base_path``.

        The node gets the path fhirpathpy would give it navigating from the resource
        (``Patient.extension`` is an ``Extension``), so that its choice elements resolve.
        None when there is nothing to check: the invariant cannot fail (fhirpathpy fails on
        every evaluation, e.g. it lacks hasValue()), or fhirpathpy cannot parse it (logged).
        """
        key = (expression, base_path)
        if key in self._compiled:  # entries are never removed: no lock needed to read
            return self._compiled[key]
        path = node_path(base_path)
        check = NATIVE.get(expression)
        if check is None:
            try:
                compiled = compile_invariant(expression, path)
            except Exception:  # noqa: BLE001 - a compiler bug: fhirpathpy still evaluates it
                logger.warning("FHIRPath compiler failed on %s", expression, exc_info=True)
                compiled = None
            if compiled is None:
                check = _interpreted(expression, path)
            elif not compiled.always_fails:
                check = _compiled(compiled, path)
        with self._lock:
            return self._compiled.setdefault(key, check)


def _compiled(compiled: CompiledInvariant, base_path: str) -> Check:
    """The compiled check, handing what it cannot decide to fhirpathpy."""
    expression = compiled.expression
    holds = compiled.holds
    fallback: list[Check | None] = []

    def check(node: Any, resource: dict[str, Any], root: dict[str, Any]) -> bool:
        try:
            return holds(node, resource, root)
        except Undecidable:
            pass
        except Exception:  # noqa: BLE001 - a compiler bug must not fail the validation
            if not fallback:
                logger.warning("Compiled FHIRPath failed: %s", expression, exc_info=True)
        if not fallback:
            fallback.append(_interpreted(expression, base_path))
        interpreted = fallback[0]
        return interpreted is None or interpreted(node, resource, root)

    return check


def _interpreted(expression: str, base_path: str) -> Check | None:
    try:
        parsed = fhirpathpy.parse(expression)  # type: ignore[attr-defined, no-untyped-call]
    except Exception:  # noqa: BLE001 - any parser failure means "cannot evaluate"
        logger.info("FHIRPath invariant not supported, skipped: %s", expression)
        return None
    guard = _GUARD.match(expression)
    guard_key = guard.group(1) if guard else None

    def check(node: Any, resource: dict[str, Any], root: dict[str, Any]) -> bool:
        if guard_key is not None and isinstance(node, dict) and not _has_any(node, guard_key):
            return True
        try:
            result = fhirpathpy.apply_parsed_path(  # type: ignore[no-untyped-call]
                ResourceNode.create_node(node, base_path),  # type: ignore[no-untyped-call]
                parsed,
                {"resource": resource, "rootResource": root},
                _R4,
                _OPTIONS,
            )
        except Exception:  # noqa: BLE001 - an evaluation error is not the instance's fault
            logger.debug("FHIRPath invariant failed to evaluate: %s", expression, exc_info=True)
            return True
        return bool(result != [False])

    return check


def _has_any(node: dict[str, Any], name: str) -> bool:
    return _has(node, name) or _has_choice(node, name)
