"""Compilation of FHIRPath functions, each mirroring fhirpathpy 2.2.4.

Functions fhirpathpy lacks (``hasValue()``, ``resolve()``, ``htmlChecks()``...) make its
evaluation raise, so an invariant using them always holds; they compile to a failure, which
keeps the answer identical and costs nothing.  Functions fhirpathpy has but this package does
not compile raise :class:`Unsupported`.  String functions are in ``strings.py``, type tests in
``types.py``.  See http://hl7.org/fhirpath/N1/#functions and
``fhirpathpy/engine/invocations/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fhirpathpy.engine.invocations import invocation_registry

from server.fhir.validation.fhirpath_compiler import model, runtime, strings, types
from server.fhir.validation.fhirpath_compiler.compiled import (
    EMPTY,
    FALSE,
    TRUE,
    Call,
    Compiled,
    Env,
    Scope,
    merge,
)
from server.fhir.validation.fhirpath_compiler.runtime import Failed, Undecidable
from server.fhir.validation.fhirpath_compiler.syntax import Node, Unsupported

if TYPE_CHECKING:
    from server.fhir.validation.fhirpath_compiler.compiler import Compiler


def compile_function(
    compiler: Compiler, name: str, args: tuple[Node, ...], source: Compiled | None, scope: Scope
) -> Compiled:
    """``source.name(args)``, or ``name(args)`` on the focus when there is no source."""
    call = Call(compiler, name, args, source, scope)
    if name not in invocation_registry:

        def fail(items: list[Any], focus: list[Any], env: Env) -> list[Any]:
            raise Failed(f"fhirpathpy has no function {name}()")

        return replace(call.build(fail, model.VALUES), fails=True)
    handler = _HANDLERS.get(name)
    if handler is None:
        raise Unsupported(f"function {name}()")
    counts, compile_handler = handler
    if len(args) not in counts:
        raise Unsupported(f"{name}() with {len(args)} arguments")
    return compile_handler(call)


# -- existence and filtering -----------------------------------------------------------------


def _no_args(apply: Callable[[list[Any]], list[Any]], same_shape: bool = False) -> Any:
    def handler(call: Call) -> Compiled:
        shape = call.input_shape if same_shape else model.VALUES
        compiled = call.build(lambda items, focus, env: apply(items), shape)
        if call.source is None:
            return replace(compiled, fn=lambda focus, env: apply(focus))
        inner = call.source.fn
        return replace(compiled, fn=lambda focus, env: apply(inner(focus, env)))

    return handler


def _existence(empty: bool) -> Any:
    def handler(call: Call) -> Compiled:
        if call.args:
            return _where(call)
        compiled = call.build(lambda items, focus, env: EMPTY, model.VALUES)
        inner = call.source.fn if call.source else None
        yes, no = (FALSE, TRUE) if empty else (TRUE, FALSE)

        def fn(focus: list[Any], env: Env) -> list[Any]:
            return yes if (inner(focus, env) if inner else focus) else no

        return replace(compiled, fn=fn)

    return handler


def _not(items: list[Any]) -> list[Any]:
    if len(items) != 1:
        return EMPTY
    value = runtime.data(items[0])
    return [not value] if isinstance(value, bool) else FALSE


def _where(call: Call) -> Compiled:
    body = call.body(0)
    test = body.fn
    if body.shape.node is None:
        raise Unsupported("where() criteria mixing nodes and values")
    nodes = body.shape.node

    def step(items: list[Any], focus: list[Any], env: Env) -> list[Any]:
        kept = []
        for item in items:
            result = test([item], env)
            if result and (nodes or result[0]):
                kept.append(item)
        return kept

    if call.name == "exists":
        return call.build(
            lambda i, f, e: TRUE if step(i, f, e) else FALSE, model.VALUES, lambdas=True
        )
    return call.build(step, call.input_shape, lambdas=True)


def _select(call: Call) -> Compiled:
    projection = call.body(0)
    body = projection.fn

    def step(items: list[Any], focus: list[Any], env: Env) -> list[Any]:
        out: list[Any] = []
        for item in items:
            out.extend(body([item], env))
        return out

    return call.build(step, projection.shape, lambdas=True)


def _all(call: Call) -> Compiled:
    body = call.body(0).fn
    is_true = runtime.is_true

    def step(items: list[Any], focus: list[Any], env: Env) -> list[Any]:
        for item in items:
            if not is_true(body([item], env)):
                return FALSE
        return TRUE

    return call.build(step, model.VALUES, lambdas=True)


def _iif(call: Call) -> Compiled:
    condition, then = call.body(0, call.input_shape), call.body(1, call.input_shape)
    otherwise = call.body(2, call.input_shape) if len(call.args) == 3 else None
    test, yes = condition.fn, then.fn
    no = otherwise.fn if otherwise else None
    is_true = runtime.is_true

    def step(items: list[Any], focus: list[Any], env: Env) -> list[Any]:
        if is_true(test(items, env)):
            return yes(items, env)
        return no(items, env) if no else EMPTY

    shape = merge(then.shape, otherwise.shape) if otherwise else then.shape
    branches = (condition, then) + ((otherwise,) if otherwise else ())
    # iif sets $this to its input: the focus when it starts the path, else another collection
    leaks = call.source is not None or any(b.leaks for b in branches)
    return call.build(step, shape, lambdas=leaks)


def _distinct_shape(call: Call) -> model.Shape:
    if call.input_shape.node is None:
        raise Unsupported("distinct() of nodes and values")
    if call.input_shape.node:  # fhirpathpy re-creates the nodes without their paths
        return model.Shape(node=True, paths=frozenset({None}), resources=True)
    return model.VALUES


def _distinct(call: Call) -> Compiled:
    return call.build(lambda items, f, e: runtime.uniq(items), _distinct_shape(call))


def _is_distinct(call: Call) -> Compiled:
    _distinct_shape(call)
    uniq = runtime.uniq
    return call.build(
        lambda items, f, e: TRUE if len(uniq(items)) == len(items) else FALSE, model.VALUES
    )


def _trace(call: Call) -> Compiled:
    label = call.argument(0) if call.args else None  # fhirpathpy evaluates the first only
    if label is None or (label.constant is not None and _is_string(label.constant)):
        if call.source is not None:
            return replace(call.source, typed=None, steps=(), steps_source=None)
        return call.build(lambda items, focus, env: items, call.input_shape)
    name = label.fn

    def step(items: list[Any], focus: list[Any], env: Env) -> list[Any]:
        runtime.string_argument(name(focus, env))
        return items

    return call.build(step, call.input_shape, arguments=(label,))


def _is_string(values: tuple[Any, ...]) -> bool:
    return len(values) < 2 and all(isinstance(value, str) for value in values)


# -- navigation and combining ----------------------------------------------------------------


def _extension(call: Call) -> Compiled:
    url_argument = call.argument(0)
    url_fn = url_argument.fn

    def step(items: list[Any], focus: list[Any], env: Env) -> list[Any]:
        url = runtime.string_argument(url_fn(focus, env))
        wanted: Any = EMPTY if url is None else url
        found = []
        for item in items:
            if isinstance(item, dict):
                try:
                    matching = [e for e in item.get("extension", []) if e["url"] == wanted]
                except (TypeError, KeyError) as error:
                    raise Failed("extension() over a malformed extension") from error
                if matching:
                    found.append(matching[0])  # fhirpathpy keeps the first match only
        return found

    return call.build(step, model.known("Extension"), arguments=(url_argument,))


def _children(call: Call) -> Compiled:
    shape = call.input_shape
    if shape.paths is not None and None in shape.paths:
        raise Unsupported("children() of nodes without a path")  # fhirpathpy raises
    companions = call.name == "descendants"
    raw = shape.node is not True

    def step(items: list[Any], focus: list[Any], env: Env) -> list[Any]:
        if raw and any(isinstance(i, dict) and "resourceType" not in i for i in items):
            raise Undecidable("children() of a value without a path")
        found = level = runtime.children(items, companions)
        while companions and level:
            level = runtime.children(level, True)
            found = found + level
        return found

    return call.build(step, model.UNKNOWN)


def _combining(call: Call) -> Compiled:
    other = call.argument(0)  # AnyAtRoot: evaluated on $this like an ordinary argument
    other_fn = other.fn
    name = call.name
    shape = merge(call.input_shape, other.shape)
    if name == "union":
        if shape.node is None:
            raise Unsupported("union of nodes and values")
        if shape.node:
            shape = model.Shape(node=True, paths=frozenset({None}), resources=True)
    elif name in ("intersect", "exclude"):
        shape = call.input_shape

    def step(items: list[Any], focus: list[Any], env: Env) -> list[Any]:
        others = other_fn(focus, env)
        if name == "combine":
            return items + others
        if name == "union":
            return runtime.uniq(items + others)
        if name == "intersect":
            return runtime.intersect(items, others)
        return [item for item in items if item not in others]

    return call.build(step, shape, arguments=(other,))


_Handler = tuple[tuple[int, ...], Callable[[Call], Compiled]]
_NONE = (0,)
_HANDLERS: dict[str, _Handler] = {
    "empty": (_NONE, _existence(empty=True)),
    "exists": ((0, 1), _existence(empty=False)),
    "not": (_NONE, _no_args(_not)),
    "count": (_NONE, _no_args(lambda items: [len(items)])),
    "first": (_NONE, _no_args(lambda items: items[:1], same_shape=True)),
    "last": (_NONE, _no_args(lambda items: items[-1:], same_shape=True)),
    "tail": (_NONE, _no_args(lambda items: items[1:], same_shape=True)),
    "where": ((1,), _where),
    "select": ((1,), _select),
    "all": ((1,), _all),
    "iif": ((2, 3), _iif),
    "distinct": (_NONE, _distinct),
    "isDistinct": (_NONE, _is_distinct),
    "trace": ((0, 1, 2), _trace),
    "extension": ((1,), _extension),
    "children": (_NONE, _children),
    "descendants": (_NONE, _children),
    "combine": ((1,), _combining),
    "union": ((1,), _combining),
    "intersect": ((1,), _combining),
    "exclude": ((1,), _combining),
}
_HANDLERS.update(strings.HANDLERS)
_HANDLERS.update(types.HANDLERS)
