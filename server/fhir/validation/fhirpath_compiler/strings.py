"""Compilation of FHIRPath's string and conversion functions, mirroring fhirpathpy 2.2.4.

fhirpathpy's ``nullable_input`` rule applies: an empty input gives empty before the
parameters are evaluated; a parameter must be a singleton of its type, and the input a single
string, or fhirpathpy raises.  ``''.startsWith('')`` is false there, and kept so.  See
http://hl7.org/fhirpath/N1/#string-manipulation and ``fhirpathpy/engine/invocations/strings.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any

from server.fhir.validation.fhirpath_compiler import model, runtime
from server.fhir.validation.fhirpath_compiler.compiled import (
    EMPTY,
    FALSE,
    TRUE,
    Call,
    Compiled,
    Env,
)
from server.fhir.validation.fhirpath_compiler.runtime import Failed

_INTEGER = re.compile(r"^[+-]?\d+$")


# -- conversion and strings ------------------------------------------------------------------


def to_string(items: list[Any]) -> list[Any]:
    return [str(runtime.data(items[0]))] if len(items) == 1 else EMPTY


def to_integer(items: list[Any]) -> list[Any]:
    if len(items) != 1:
        return EMPTY
    value = runtime.data(items[0])
    if value is False or value is True:
        return [int(value)]
    if runtime.is_number(value):
        try:
            return [value] if int(value) == value else EMPTY
        except (ValueError, OverflowError) as error:
            raise Failed("toInteger() of a special number") from error
    if isinstance(value, str) and _INTEGER.match(value):
        return [int(value)]
    return EMPTY


def _string_function(kinds: str, apply: Callable[[list[Any], list[Any]], list[Any]]) -> Any:
    """A function of a string with String (S) or Integer (I) parameters: fhirpathpy's
    ``nullable_input`` gives empty for an empty input before evaluating the parameters."""

    def handler(call: Call) -> Compiled:
        arguments = tuple(call.argument(i) for i in range(len(call.args)))
        checks = [
            (runtime.integer_argument if kind == "I" else runtime.string_argument, argument.fn)
            for kind, argument in zip(kinds, arguments, strict=False)
        ]
        compiled = call.build(lambda items, focus, env: EMPTY, model.VALUES, arguments=arguments)
        fixed = _fixed_values(checks, arguments)
        inner = call.source.fn if call.source else None
        if fixed is not None:  # constant arguments, checked once

            def fn(focus: list[Any], env: Env) -> list[Any]:
                items = inner(focus, env) if inner else focus
                return apply(items, fixed) if items else EMPTY

        else:

            def fn(focus: list[Any], env: Env) -> list[Any]:
                items = inner(focus, env) if inner else focus
                if not items:
                    return EMPTY
                return apply(items, [check(each(focus, env)) for check, each in checks])

        return replace(compiled, fn=fn)

    return handler


def _fixed_values(
    checks: Sequence[tuple[Callable[[list[Any]], Any], Any]], arguments: tuple[Compiled, ...]
) -> list[Any] | None:
    if any(argument.constant is None for argument in arguments):
        return None
    try:
        return [
            check(list(a.constant or ())) for (check, _), a in zip(checks, arguments, strict=True)
        ]
    except Failed:
        return None


def _boolean(value: bool) -> list[Any]:
    return TRUE if value else FALSE


def _starts_with(items: list[Any], values: list[Any]) -> list[Any]:
    if values[0] is None:
        return EMPTY
    text = runtime.single_string(items)
    return _boolean(bool(text) and text.startswith(values[0]))


def _ends_with(items: list[Any], values: list[Any]) -> list[Any]:
    if values[0] is None:
        return EMPTY
    text = runtime.single_string(items)
    return _boolean(bool(text) and text.endswith(values[0]))


def _contains(items: list[Any], values: list[Any]) -> list[Any]:
    text = runtime.single_string(items)
    if values[0] is None:
        raise Failed("contains() with an empty argument")
    return _boolean(values[0] in text)


def _matches(items: list[Any], values: list[Any]) -> list[Any]:
    if not values[0]:
        return EMPTY
    text = runtime.single_string(items)
    return _boolean(_regex(values[0], re.DOTALL).search(text) is not None)


def _replace_matches(items: list[Any], values: list[Any]) -> list[Any]:
    text = runtime.single_string(items)
    pattern, substitution = values
    if pattern is None or substitution is None:
        return EMPTY
    try:
        return [_regex(pattern, 0).sub(re.sub(r"\$(\d+)", r"\\\1", substitution), text)]
    except re.error as error:
        raise Failed("invalid replacement") from error


def _substring(items: list[Any], values: list[Any]) -> list[Any]:
    text = runtime.single_string(items)
    start = values[0]
    if start is None:
        return EMPTY
    start = int(start)
    if start < 0 or start >= len(text):
        return EMPTY
    length = values[1] if len(values) > 1 else None
    return [text[start:] if length is None else text[start : start + int(length)]]


@lru_cache(maxsize=512)
def _regex(pattern: str, flags: int) -> re.Pattern[str]:
    try:
        return re.compile(pattern, flags)
    except re.error as error:
        raise Failed(f"invalid regular expression {pattern!r}") from error


def _simple(call: Call, apply: Callable[[list[Any]], list[Any]]) -> Compiled:
    compiled = call.build(lambda items, focus, env: apply(items), model.VALUES)
    if call.source is None:
        return replace(compiled, fn=lambda focus, env: apply(focus))
    inner = call.source.fn
    return replace(compiled, fn=lambda focus, env: apply(inner(focus, env)))


HANDLERS: dict[str, tuple[tuple[int, ...], Callable[[Call], Compiled]]] = {
    "toString": ((0,), lambda call: _simple(call, to_string)),
    "toInteger": ((0,), lambda call: _simple(call, to_integer)),
    "length": ((0,), _string_function("", lambda i, v: [len(runtime.single_string(i))])),
    "lower": ((0,), _string_function("", lambda i, v: [runtime.single_string(i).lower()])),
    "upper": ((0,), _string_function("", lambda i, v: [runtime.single_string(i).upper()])),
    "startsWith": ((1,), _string_function("S", _starts_with)),
    "endsWith": ((1,), _string_function("S", _ends_with)),
    "contains": ((1,), _string_function("S", _contains)),
    "matches": ((1,), _string_function("S", _matches)),
    "replaceMatches": ((2,), _string_function("SS", _replace_matches)),
    "substring": ((1, 2), _string_function("II", _substring)),
}
