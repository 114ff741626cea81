"""A compiler of the FHIRPath subset that StructureDefinition invariants use.

``compile_invariant(expression, base_path)`` turns an invariant into a Python closure over the
instance's JSON (dict/list/str/number/bool), a few microseconds per evaluation where
fhirpathpy takes hundreds.  The compiled invariant decides exactly as fhirpathpy 2.2.4 does,
quirks included (``tests/validation/test_fhirpath_compiler.py`` checks this on every invariant
of the R4 package and the ILP profiles): where it cannot be sure it raises
:class:`Undecidable` and the caller asks fhirpathpy.  Expressions outside the subset (date,
time and quantity literals, equivalence, aggregates...) do not compile at all.
See http://hl7.org/fhirpath/N1/ and https://hl7.org/fhir/R4/fhirpath.html.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from server.fhir.validation.fhirpath_compiler import runtime
from server.fhir.validation.fhirpath_compiler.compiled import Compiled, Env, Scope
from server.fhir.validation.fhirpath_compiler.compiler import Compiler
from server.fhir.validation.fhirpath_compiler.runtime import Failed, Undecidable
from server.fhir.validation.fhirpath_compiler.syntax import Unsupported, parse

__all__ = ["CompiledInvariant", "Undecidable", "compile_invariant"]

logger = logging.getLogger(__name__)


class CompiledInvariant:
    """An invariant compiled for evaluation at nodes of one base path."""

    def __init__(self, expression: str, compiled: Compiled) -> None:
        self.expression = expression
        self.always_fails = compiled.fails
        self._fn = compiled.fn
        self._false: Callable[[list[Any], Env], bool] | None = None
        if compiled.logic is not None and compiled.logic[0] in ("or", "implies"):
            self._false = _falsity(compiled)

    def evaluate(self, node: Any, resource: Any, root: Any) -> list[Any]:
        """The result collection; raises Failed where fhirpathpy raises, or Undecidable."""
        return self._fn([node], (node, resource, root))

    def holds(self, node: Any, resource: Any, root: Any) -> bool:
        """Whether the invariant holds (its result is not false, or it fails to evaluate);
        raises Undecidable when fhirpathpy must decide."""
        if self.always_fails:
            return True
        try:
            if self._false is not None:
                return not self._false([node], (node, resource, root))
            result = self._fn([node], (node, resource, root))
        except Failed:
            return True
        if len(result) == 1 and not isinstance(result[0], dict):
            return bool(result[0] != False)  # noqa: E712 - 0 is false too, as in fhirpathpy
        kept = [r for r in result if not (isinstance(r, dict) and list(r) == ["extension"])]
        return kept != [False]


def _falsity(compiled: Compiled) -> Callable[[list[Any], Env], bool]:
    """Whether an operand of or/implies is false.  ``a or b`` is false only when both are,
    ``a implies b`` only when a is true and b false; otherwise the invariant holds whether
    or not the other operand would fail to evaluate, so it is not evaluated."""
    boolean = runtime.boolean
    if compiled.logic is not None and compiled.logic[0] in ("or", "implies"):
        op, left, right = compiled.logic
        right_false = _falsity(right)
        if op == "or":
            left_false = _falsity(left)
            return lambda focus, env: left_false(focus, env) and right_false(focus, env)
        condition = left.fn
        return lambda focus, env: boolean(condition(focus, env)) is True and right_false(focus, env)
    fn = compiled.fn
    return lambda focus, env: boolean(fn(focus, env)) is False


def compile_invariant(expression: str, base_path: str) -> CompiledInvariant | None:
    """The compiled invariant, or None when the expression is outside the subset."""
    try:
        tree = parse(expression)
        compiler = Compiler(base_path)
        compiled = compiler.compile(tree, Scope(compiler.root, this_set=False))
    except Unsupported as reason:
        logger.debug("FHIRPath left to fhirpathpy (%s): %s", reason, expression)
        return None
    except RecursionError:
        logger.info("FHIRPath too deeply nested to compile: %s", expression)
        return None
    return CompiledInvariant(expression, compiled)
