"""Compilation of FHIRPath's infix operators, each mirroring fhirpathpy's implementation.

See http://hl7.org/fhirpath/N1/#operations and ``fhirpathpy/engine/invocations``
(``equality.py``, ``logic.py``, ``math.py``, ``collections.py``, ``combining.py``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from server.fhir.validation.fhirpath_compiler import model, runtime
from server.fhir.validation.fhirpath_compiler.compiled import (
    EMPTY,
    FALSE,
    TRUE,
    Compiled,
    Env,
    Scope,
    constant,
)
from server.fhir.validation.fhirpath_compiler.runtime import Failed, Undecidable
from server.fhir.validation.fhirpath_compiler.syntax import Binary, Unsupported

if TYPE_CHECKING:
    from server.fhir.validation.fhirpath_compiler.compiler import Compiler

COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}
_LOGIC = {"and": runtime.AND, "or": runtime.OR, "xor": runtime.XOR, "implies": runtime.IMPLIES}
_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "*": operator.mul,
    "/": operator.truediv,
    "div": lambda x, y: int(x / y),
    "mod": operator.mod,
}


def compile_binary(compiler: Compiler, node: Binary, scope: Scope) -> Compiled:
    """``left op right``; both operands are evaluated on the focus, as fhirpathpy does."""
    left = compiler.compile(node.left, scope)
    right = compiler.compile(node.right, scope)
    op = node.op
    if op in _LOGIC:
        fn = _logic(_LOGIC[op], left, right)
    elif op in ("=", "!="):
        fn = _equality(_without_quantities(left), _without_quantities(right), op == "!=")
    elif op in COMPARISONS:
        fn = _comparison(COMPARISONS[op], left, right)
    elif op == "+" or op == "-":
        fn = _additive(op == "+", left, right)
    elif op in _ARITHMETIC:
        fn = _arithmetic(_ARITHMETIC[op], op != "*", left, right)
    elif op == "&":
        fn = _concatenation(left, right)
    elif op in ("in", "contains"):
        fn = _membership(op == "in", left, right)
    elif op == "|":
        return _union(left, right)
    else:  # ~ and !~ (equivalence)
        raise Unsupported(op)
    return Compiled(
        fn,
        model.VALUES,
        uses_focus=left.uses_focus or right.uses_focus,
        leaks=right.leaks,
        fails=left.fails or right.fails,
        logic=(op, left, right) if op in _LOGIC else None,
    )


def _logic(table: dict[tuple[bool | None, bool | None], list[bool]], left: Compiled,
           right: Compiled) -> Callable[[list[Any], Env], list[Any]]:  # fmt: skip
    first, second = left.fn, right.fn
    boolean = runtime.boolean

    def fn(focus: list[Any], env: Env) -> list[Any]:
        a = first(focus, env)
        if not a:
            x = None
        elif len(a) == 1 and (a[0] is True or a[0] is False):
            x = a[0]
        else:
            x = boolean(a)
        b = second(focus, env)
        if not b:
            y = None
        elif len(b) == 1 and (b[0] is True or b[0] is False):
            y = b[0]
        else:
            y = boolean(b)
        return table[(x, y)]

    return fn


def _equality(
    left: Compiled, right: Compiled, negate: bool
) -> Callable[[list[Any], Env], list[Any]]:
    first, second = left.fn, right.fn
    equal = runtime.equal
    if right.constant is not None and len(right.constant) == 1:
        (wanted,) = right.constant
        if isinstance(wanted, str):  # the common "code = 'x'": same outcome, fewer steps

            def fast(focus: list[Any], env: Env) -> list[Any]:
                items = first(focus, env)
                if not items:
                    return EMPTY
                if len(items) != 1:
                    return TRUE if negate else FALSE
                return TRUE if (items[0] == wanted) != negate else FALSE

            return fast

    def fn(focus: list[Any], env: Env) -> list[Any]:
        result = equal(first(focus, env), second(focus, env))
        if result is None:
            return EMPTY
        return TRUE if result != negate else FALSE

    return fn


def _without_quantities(operand: Compiled) -> Compiled:
    """The operand of an equality; fhirpathpy compares Quantity nodes as quantities, which
    is left to it: at compile time, or at run time for a choice (``value = 'x'``)."""
    if not operand.shape.may_have_type(model.QUANTITY_TYPES):
        return operand
    typed = operand.typed
    if typed is None:
        raise Unsupported("equality of Quantity nodes")

    def fn(focus: list[Any], env: Env) -> list[Any]:
        items = typed(focus, env)
        for value, path in items:
            if path in model.QUANTITY_TYPES or (
                isinstance(value, dict) and "resourceType" in value
            ):
                raise Undecidable("equality of a Quantity")
        return [value for value, _ in items]

    return Compiled(fn, operand.shape, operand.uses_focus, operand.leaks, operand.fails)


def _nodes(compiled: Compiled) -> bool:
    if compiled.shape.node is None:
        raise Unsupported("an operand mixing nodes and values")
    return compiled.shape.node


def _comparison(compare: Callable[[Any, Any], bool], left: Compiled,
                right: Compiled) -> Callable[[list[Any], Env], list[Any]]:  # fmt: skip
    first, second = left.fn, right.fn
    left_nodes, right_nodes = _nodes(left), _nodes(right)
    strip = runtime.remove_duplicate_extension

    def fn(focus: list[Any], env: Env) -> list[Any]:
        a, b = first(focus, env), second(focus, env)
        if not a or not b:
            return EMPTY
        pair = runtime.ordered(strip(a, left_nodes), strip(b, right_nodes))
        assert pair is not None
        return TRUE if compare(*pair) else FALSE

    if right.constant is None or len(right.constant) != 1:
        return fn
    (bound,) = right.constant
    if not runtime.is_number(bound):
        return fn
    # A float compares with an integer as its shortest decimal form does (fhirpathpy's
    # Decimal(str(x))); with a decimal bound the Decimal form is needed.
    exact = isinstance(bound, int) and abs(bound) < 2**53

    def against_number(focus: list[Any], env: Env) -> list[Any]:
        a = first(focus, env)
        if len(a) == 1:
            x = a[0]
            kind = type(x)
            if kind is int or (kind is float and exact and x - x == 0.0):
                return TRUE if compare(x, bound) else FALSE
            if kind is float and x - x == 0.0:
                return TRUE if compare(Decimal(repr(x)), bound) else FALSE
        return fn(focus, env)

    return against_number


def _additive(plus: bool, left: Compiled, right: Compiled) -> Callable[[list[Any], Env], list[Any]]:
    first, second = left.fn, right.fn
    sides = [(_nodes(side), side.shape.may_have_type(model.DATE_TYPES)) for side in (left, right)]
    strip = runtime.remove_duplicate_extension

    def fn(focus: list[Any], env: Env) -> list[Any]:
        a, b = first(focus, env), second(focus, env)
        if not a or not b:
            return EMPTY
        a, b = strip(a, sides[0][0]), strip(b, sides[1][0])
        if len(a) != 1 or len(b) != 1:
            raise Failed("arithmetic on a collection")
        for value, (nodes, dated) in zip((a[0], b[0]), sides, strict=True):
            if nodes and (isinstance(value, dict) or (dated and isinstance(value, str))):
                raise Undecidable("fhirpathpy converts dates and quantities first")
        x, y = runtime.data(a[0]), runtime.data(b[0])
        if runtime.is_number(x) and runtime.is_number(y):
            return [x + y if plus else x - y]
        if plus and isinstance(x, str) and isinstance(y, str):
            return [x + y]
        raise Failed("arithmetic on incompatible values")

    return fn


def _number(items: list[Any]) -> Any:
    if len(items) > 1:
        raise Failed("arithmetic on a collection")
    if not items:
        return None
    value = runtime.data(items[0])
    if isinstance(value, bool) or runtime.is_number(value):
        return value
    raise Failed("arithmetic on a non-number")


def _arithmetic(apply: Callable[[Any, Any], Any], divides: bool, left: Compiled,
                right: Compiled) -> Callable[[list[Any], Env], list[Any]]:  # fmt: skip
    first, second = left.fn, right.fn

    def fn(focus: list[Any], env: Env) -> list[Any]:
        x, y = _number(first(focus, env)), _number(second(focus, env))
        if x is None or y is None or (divides and y == 0):
            return EMPTY
        try:
            return [apply(x, y)]
        except ArithmeticError as error:
            raise Failed("arithmetic error") from error

    return fn


def _concatenation(left: Compiled, right: Compiled) -> Callable[[list[Any], Env], list[Any]]:
    first, second = left.fn, right.fn
    text = runtime.string_argument

    def fn(focus: list[Any], env: Env) -> list[Any]:
        x = text(first(focus, env))
        y = text(second(focus, env))
        return [(x or "") + (y or "")]

    return fn


def _membership(
    is_in: bool, left: Compiled, right: Compiled
) -> Callable[[list[Any], Env], list[Any]]:
    first, second = left.fn, right.fn
    contains = runtime.contains

    def fn(focus: list[Any], env: Env) -> list[Any]:
        a, b = first(focus, env), second(focus, env)
        result = contains(b, a) if is_in else contains(a, b)
        return EMPTY if result is None else (TRUE if result else FALSE)

    return fn


def _union(left: Compiled, right: Compiled) -> Compiled:
    """``left | right``: fhirpathpy's ``distinct_fn`` of both; nodes lose their paths."""
    if left.constant is not None and right.constant is not None:
        return constant(tuple(runtime.uniq(list(left.constant + right.constant))))
    nodes = left.shape.node
    if nodes is None or right.shape.node != nodes:
        raise Unsupported("union of nodes and values")
    first, second = left.fn, right.fn
    uniq = runtime.uniq

    def fn(focus: list[Any], env: Env) -> list[Any]:
        return uniq(first(focus, env) + second(focus, env))

    shape = (
        model.Shape(node=True, paths=frozenset({None}), resources=True) if nodes else model.VALUES
    )
    return Compiled(
        fn,
        shape,
        uses_focus=left.uses_focus or right.uses_focus,
        leaks=right.leaks,
        fails=left.fails or right.fails,
    )
