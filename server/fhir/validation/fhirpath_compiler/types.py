"""Compilation of FHIRPath's type tests: ``is``, ``as`` and ``ofType()``, as fhirpathpy 2.2.4.

fhirpathpy types a node by its path (``model.node_type``) and a computed value by its Python
type (System types).  ``is``/``as`` first set fhirpathpy's global ``TypeInfo.model``, under
which a type also matches its ancestors; ``ofType()`` does not, so its answer for a subtype
(``Age`` as ``Quantity``) depends on whether an ``is``/``as`` ran before in the process: that
case is left to fhirpathpy.  See http://hl7.org/fhirpath/N1/#types.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from server.fhir.validation.fhirpath_compiler import model
from server.fhir.validation.fhirpath_compiler.compiled import (
    EMPTY,
    FALSE,
    TRUE,
    VALUE,
    Call,
    Compiled,
    Env,
    Typed,
)
from server.fhir.validation.fhirpath_compiler.runtime import Failed, Undecidable
from server.fhir.validation.fhirpath_compiler.syntax import Invoke, Member, Node, Unsupported


def _specifier(node: Node) -> str:
    if isinstance(node, Member):
        return node.name
    if isinstance(node, Invoke) and isinstance(node.invocation, Member):
        return f"{_specifier(node.target)}.{node.invocation.name}"
    raise Unsupported("a type specifier that is not a name")


def _typed(compiled: Compiled | None, focus: model.Shape) -> Typed:
    """The items with the path fhirpathpy's nodes would have (VALUE for computed values)."""
    if compiled is not None and compiled.typed is not None:
        return compiled.typed
    shape = compiled.shape if compiled else focus
    fn = compiled.fn if compiled else (lambda items, env: items)
    if shape.node is False:
        return lambda items, env: [(value, VALUE) for value in fn(items, env)]
    if shape.node and shape.paths is not None and len(shape.paths) == 1:
        (path,) = shape.paths
        return lambda items, env: [(value, path) for value in fn(items, env)]
    raise Unsupported("a type test on nodes of unknown type")


def _matches_type(value: Any, path: Any, wanted: model.TypeName, is_op: bool) -> bool:
    """fhirpathpy's ``TypeInfo.from_value(node).is_(wanted)``; ``is``/``as`` set the model
    first, ``ofType`` sees whether an earlier ``is``/``as`` has (this module cannot)."""
    if path is VALUE:
        return model.is_a(model.value_type(value), wanted, False)
    if isinstance(value, dict) and "resourceType" in value:
        path = value["resourceType"]
    if path is None:
        raise Failed("a type test on a node without a path")
    if not isinstance(path, str):
        raise Undecidable("resourceType is not a string")
    with_model = model.is_a(model.node_type(path, value, True), wanted, True)
    if not is_op and with_model != model.is_a(model.node_type(path, value, False), wanted, False):
        raise Undecidable("ofType() depends on whether fhirpathpy has run is/as before")
    return with_model


def compile_type_test(op: str, source: Compiled | None, type_name: str,
                      focus: model.Shape = model.UNKNOWN) -> Compiled:  # fmt: skip
    """``source is T``, ``source as T`` or ``source.ofType(T)``."""
    wanted = model.specifier(type_name)
    if wanted is None:
        raise Unsupported(f"type {type_name}")
    typed = _typed(source, focus)
    if op == "ofType":

        def fn(items: list[Any], env: Env) -> list[Any]:
            return [v for v, path in typed(items, env) if _matches_type(v, path, wanted, False)]

    else:

        def fn(items: list[Any], env: Env) -> list[Any]:
            found = typed(items, env)
            if not found:
                return EMPTY
            if len(found) > 1:
                raise Failed(f"'{op}' on a collection")
            value, path = found[0]
            matched = _matches_type(value, path, wanted, True)
            if op == "is":
                return TRUE if matched else FALSE
            return [value] if matched else EMPTY

    shape = model.VALUES if op == "is" else (source.shape if source else focus)
    if op != "is" and shape.paths is not None:
        shape = replace(shape, paths=_possible(shape.paths, wanted))
    return Compiled(
        fn,
        shape,
        uses_focus=source.uses_focus if source else True,
        leaks=source.leaks if source else False,
        fails=source.fails if source else False,
    )


def _possible(paths: frozenset[str | None], wanted: model.TypeName) -> frozenset[str | None]:
    """The paths of nodes that may pass a type test for ``wanted``."""
    return frozenset(
        path
        for path in paths
        if path is None
        or "." in path
        or model.is_a(model.node_type(path, None, True), wanted, True)
        or model.is_a(model.node_type(path, None, False), wanted, False)
    )


def _type_function(call: Call) -> Compiled:
    op = call.name
    return compile_type_test(op, call.source, _specifier(call.args[0]), call.scope.focus)


HANDLERS: dict[str, tuple[tuple[int, ...], Callable[[Call], Compiled]]] = {
    "ofType": ((1,), _type_function),
    "is": ((1,), _type_function),
    "as": ((1,), _type_function),
}
