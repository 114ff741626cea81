"""Compilation of a FHIRPath syntax tree into Python closures over JSON values.

The :class:`Compiler` handles terms, member navigation (following fhirpathpy's paths, see
``model.py``), unary signs and indexers, and hands operators to ``operators.py`` and functions
to ``functions.py``.  Anything outside the subset raises :class:`syntax.Unsupported`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from server.fhir.validation.fhirpath_compiler import model, runtime
from server.fhir.validation.fhirpath_compiler.compiled import (
    EMPTY,
    UCUM,
    Compiled,
    Env,
    Scope,
    Typed,
    constant,
    failing,
    then,
    untyped,
)
from server.fhir.validation.fhirpath_compiler.functions import compile_function
from server.fhir.validation.fhirpath_compiler.model import Shape
from server.fhir.validation.fhirpath_compiler.operators import compile_binary
from server.fhir.validation.fhirpath_compiler.runtime import Failed
from server.fhir.validation.fhirpath_compiler.syntax import (
    Binary,
    Function,
    Indexer,
    Invoke,
    Literal,
    Member,
    Node,
    This,
    TypeTest,
    Unary,
    Unsupported,
    Variable,
)
from server.fhir.validation.fhirpath_compiler.types import compile_type_test


class Compiler:
    """Compiles the syntax tree of one expression evaluated at nodes of ``base_path``."""

    def __init__(self, base_path: str) -> None:
        self.base_path = base_path
        self.root = model.known(base_path)

    def compile(self, node: Node, scope: Scope) -> Compiled:
        if isinstance(node, Literal):
            return constant(node.values)
        if isinstance(node, Member):
            return self.member(None, node.name, scope)
        if isinstance(node, Function):
            return compile_function(self, node.name, node.args, None, scope)
        if isinstance(node, This):
            if not scope.this_set:
                raise Unsupported("$this before fhirpathpy sets it")
            return Compiled(lambda focus, env: focus, scope.focus)
        if isinstance(node, Variable):
            return self.variable(node.name)
        if isinstance(node, Invoke):
            return self.invoke(node, scope)
        if isinstance(node, Binary):
            return compile_binary(self, node, replace(scope, this_set=True))
        if isinstance(node, TypeTest):
            source = self.compile(node.operand, replace(scope, this_set=True))
            return compile_type_test(node.op, source, node.type_name)
        if isinstance(node, Unary):
            return self.unary(node, scope)
        if isinstance(node, Indexer):
            return self.indexer(node, scope)
        raise Unsupported(type(node).__name__)

    def invoke(self, node: Invoke, scope: Scope) -> Compiled:
        target = self.compile(node.target, scope)
        invocation = node.invocation
        if isinstance(invocation, Member):
            return self.member(target, invocation.name, scope)
        if isinstance(invocation, Function):
            return compile_function(self, invocation.name, invocation.args, target, scope)
        raise Unsupported("$this after '.'")

    # -- terms -----------------------------------------------------------------------------

    def variable(self, name: str) -> Compiled:
        if name == "ucum":
            return constant((UCUM,))
        if name == "context":
            return Compiled(lambda focus, env: [env[0]], self.root, uses_focus=False)
        if name in ("resource", "rootResource"):
            index = 1 if name == "resource" else 2
            # Raw JSON objects: fhirpathpy wraps them in nodes (path = resourceType) only when
            # navigating from them; an object without a resourceType would have no path.
            shape = Shape(node=False, paths=frozenset(), resources=True)
            return Compiled(lambda focus, env: [env[index]], shape, uses_focus=False)
        return failing(f"undefined variable %{name}", uses_focus=False)

    def member(self, source: Compiled | None, key: str, scope: Scope) -> Compiled:
        """``source.key`` (``key`` alone on the focus when there is no source)."""
        shape = source.shape if source else scope.focus
        if key == "length" or (key[0] == key[0].upper() and shape.node is not True):
            raise Unsupported(f"member {key}")  # fhirpathpy special-cases both
        extension = model.known("Extension") if key == "extension" else None
        typed: Typed | None = None
        if shape.paths is None:
            if key in model.CHOICE_NAMES:
                raise Unsupported(f"choice member {key} of a node of unknown path")
            fn = then(source, lambda items: runtime.plain(items, key, None))
            out = extension or replace(model.UNKNOWN, key=key)
        elif shape.resources:
            fallback = shape.paths
            fn = then(source, lambda items: runtime.by_resource(items, key, fallback))
            out = extension or replace(
                model.UNKNOWN, key=None if key in model.CHOICE_NAMES else key
            )
        else:
            paths = shape.paths
            specs = {model.member(path, key) for path in paths}
            plain = {spec for spec in specs if isinstance(spec, model.Plain)}
            if len(plain) == len(specs):
                step = (key, "_" + key, paths)
                if source is not None and source.steps:
                    steps, start = source.steps + (step,), source.steps_source
                else:
                    steps, start = (step,), source.fn if source else None
                children = frozenset(spec.path for spec in plain)
                out = Shape(node=True, paths=children, resources="Resource" in children)
                return Compiled(
                    runtime.navigator(start, steps),
                    out,
                    uses_focus=source.uses_focus if source else True,
                    leaks=source.leaks if source else False,
                    fails=source.fails if source else False,
                    steps=steps,
                    steps_source=start,
                )
            elif len(specs) == 1:
                (spec,) = specs
                assert isinstance(spec, model.Choice)
                typed = self.choice(source, spec, paths)
                fn = untyped(typed)
                children = frozenset(path for _, _, path in spec.alternatives)
            else:
                raise Unsupported(f"choice member {key} of nodes of several paths")
            out = Shape(node=True, paths=children, resources="Resource" in children)
        return Compiled(
            fn,
            out,
            uses_focus=source.uses_focus if source else True,
            leaks=source.leaks if source else False,
            fails=source.fails if source else False,
            typed=typed,
        )

    @staticmethod
    def choice(source: Compiled | None, spec: model.Choice, paths: frozenset[str | None]) -> Typed:
        if source is None:
            return lambda focus, env: runtime.choice(focus, spec, paths)
        inner = source.fn
        return lambda focus, env: runtime.choice(inner(focus, env), spec, paths)

    def unary(self, node: Unary, scope: Scope) -> Compiled:
        operand = self.compile(node.operand, scope)
        negate = node.op == "-"
        if operand.constant is not None:
            values = operand.constant
            if len(values) == 1 and runtime.is_number(values[0]):
                return constant((-values[0],) if negate else values)
        nodes = operand.shape.node
        inner = operand.fn

        def fn(focus: list[Any], env: Env) -> list[Any]:
            items = inner(focus, env)
            if len(items) != 1 or nodes is not False or not runtime.is_number(items[0]):
                if nodes is None and len(items) == 1:
                    raise runtime.Undecidable("unary sign on a node or a value")
                raise Failed("unary sign on a non-number")
            return [-items[0]] if negate else items

        return Compiled(fn, model.VALUES, operand.uses_focus, operand.leaks, operand.fails)

    def indexer(self, node: Indexer, scope: Scope) -> Compiled:
        target = self.compile(node.target, scope)
        index = self.compile(node.index, scope)
        if index.constant is None or len(index.constant) != 1:
            raise Unsupported("indexer with a computed index")
        (position,) = index.constant
        if not isinstance(position, int) or isinstance(position, bool):
            raise Unsupported("indexer with a non-integer")
        inner = target.fn

        def fn(focus: list[Any], env: Env) -> list[Any]:
            items = inner(focus, env)
            return [items[position]] if 0 <= position < len(items) else EMPTY

        return Compiled(fn, target.shape, target.uses_focus, target.leaks, target.fails)
