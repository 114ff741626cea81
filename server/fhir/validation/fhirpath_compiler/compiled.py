"""The compiled form of a FHIRPath sub-expression and the state shared by its compilation.

Every sub-expression becomes a :class:`Compiled`: a function ``(focus, env) -> list`` plus
what is statically known of its result (:class:`model.Shape`) and of how fhirpathpy would
evaluate it.  fhirpathpy keeps ``$this`` in one mutable slot that a lambda (``where``,
``select``...) leaves set to its last item; a later function argument in the same path then
sees that item instead of the focus.  ``leaks`` tracks this, and the compiler refuses such
arguments (:meth:`Call.argument`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from server.fhir.validation.fhirpath_compiler import model, runtime
from server.fhir.validation.fhirpath_compiler.model import Shape
from server.fhir.validation.fhirpath_compiler.runtime import Failed
from server.fhir.validation.fhirpath_compiler.syntax import Node, Unsupported

if TYPE_CHECKING:
    from server.fhir.validation.fhirpath_compiler.compiler import Compiler

Env = tuple[Any, Any, Any]  # the evaluated node, %resource, %rootResource
Fn = Callable[[list[Any], Env], list[Any]]
Step = Callable[[list[Any], list[Any], Env], list[Any]]  # (input, focus, env) -> result
Typed = Callable[[list[Any], Env], list[tuple[Any, Any]]]
EMPTY: list[Any] = []
TRUE = [True]
FALSE = [False]
VALUE = object()  # the "path" of a computed value in typed results
UCUM = "http://unitsofmeasure.org"


@dataclass(frozen=True)
class Compiled:
    """A compiled sub-expression and its static facts."""

    fn: Fn
    shape: Shape
    uses_focus: bool = True  # reads the focus or $this
    leaks: bool = False  # may leave fhirpathpy's $this on another collection
    fails: bool = False  # fhirpathpy always raises evaluating it
    typed: Typed | None = None  # the items with their paths (choice navigation)
    constant: tuple[Any, ...] | None = None
    # plain member steps ending this expression, applied to ``steps_source`` (None: focus)
    steps: tuple[runtime.NavigationStep, ...] = ()
    steps_source: Fn | None = None
    logic: tuple[str, Compiled, Compiled] | None = None  # and/or/xor/implies and operands


@dataclass(frozen=True)
class Scope:
    """The focus an expression is evaluated on, and whether fhirpathpy has set $this."""

    focus: Shape
    this_set: bool


def _failing(message: str) -> Fn:
    def fn(focus: list[Any], env: Env) -> list[Any]:
        raise Failed(message)

    return fn


def failing(message: str, uses_focus: bool = True) -> Compiled:
    """A sub-expression on which fhirpathpy always raises (an unknown function)."""
    return Compiled(_failing(message), model.VALUES, uses_focus=uses_focus, fails=True)


def constant(values: tuple[Any, ...]) -> Compiled:
    items = list(values)
    return Compiled(lambda focus, env: items, model.VALUES, uses_focus=False, constant=values)


def merge(first: Shape, second: Shape) -> Shape:
    """The shape of a collection holding items of both shapes."""
    paths = None if first.paths is None or second.paths is None else first.paths | second.paths
    return Shape(
        node=first.node if first.node == second.node else None,
        paths=paths,
        resources=first.resources or second.resources,
        key=first.key if first.key == second.key else None,
    )


def then(source: Compiled | None, step: Callable[[list[Any]], list[Any]]) -> Fn:
    """``step`` applied to the source's result, or to the focus when there is no source."""
    if source is None:
        return lambda focus, env: step(focus)
    inner = source.fn
    return lambda focus, env: step(inner(focus, env))


def untyped(typed: Typed) -> Fn:
    def fn(focus: list[Any], env: Env) -> list[Any]:
        return [value for value, _ in typed(focus, env)]

    return fn


@dataclass
class Call:
    """One function invocation being compiled."""

    compiler: Compiler
    name: str
    args: tuple[Node, ...]
    source: Compiled | None
    scope: Scope

    @property
    def input_shape(self) -> model.Shape:
        return self.source.shape if self.source else self.scope.focus

    def argument(self, index: int) -> Compiled:
        """An ordinary argument, evaluated on the focus ($this) as fhirpathpy does."""
        compiled = self.compiler.compile(self.args[index], replace(self.scope, this_set=True))
        if self.source is not None and self.source.leaks and compiled.uses_focus:
            raise Unsupported("an argument fhirpathpy evaluates on a leaked $this")
        return compiled

    def body(self, index: int, focus: model.Shape | None = None) -> Compiled:
        """A lambda argument, evaluated on each item (or, for iif, on the whole input)."""
        return self.compiler.compile(self.args[index], Scope(focus or self.input_shape, True))

    def build(self, step: Step, shape: model.Shape, *, arguments: tuple[Compiled, ...] = (),
              lambdas: bool = False) -> Compiled:  # fmt: skip
        source = self.source
        return Compiled(
            chained(source, step),
            shape,
            uses_focus=(source.uses_focus if source else True)
            or any(a.uses_focus for a in arguments),
            leaks=(source.leaks if source else False) or lambdas or any(a.leaks for a in arguments),
            fails=source.fails if source else False,
        )


def chained(source: Compiled | None, step: Step) -> Callable[[list[Any], Env], list[Any]]:
    if source is None:
        return lambda focus, env: step(focus, focus, env)
    inner = source.fn
    return lambda focus, env: step(inner(focus, env), focus, env)
