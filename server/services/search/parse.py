"""A FHIR search query string into a ``SearchRequest`` (pure: definitions in, no database).

Names are looked up in the SearchParameter definitions; values are parsed per
parameter type with their prefixes and modifiers, chains (``subject:Patient.name``)
and reverse chains (``_has:Observation:patient:code``) become nested conditions.
See https://hl7.org/fhir/R4/search.html.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.errors import InvalidRequest, NotSupported
from server.fhir.dates import DateFormatError, date_range
from server.fhir.integers import parse_unsigned
from server.fhir.references import parse_reference
from server.fhir.searchparams import SearchParam, SearchParams
from server.fhir.text import cut, normalize
from server.storage.search.criteria import (
    Chain,
    CompositeMatch,
    Condition,
    Has,
    IdMatch,
    LastUpdated,
    Match,
    Missing,
    Query,
    RangeTest,
    ReferenceTest,
    RowMatch,
    SortKey,
    StringTest,
    Test,
    TokenTest,
    UriTest,
)

# Parameters that shape the response rather than select resources.
FORMAT_PARAMETERS = frozenset({"_format", "_pretty"})
SUMMARY_VALUES = ("true", "text", "data", "count", "false")
TOTAL_VALUES = ("none", "estimate", "accurate")
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_MAX_EXPONENT_DIGITS = 4
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_MODIFIERS = {
    "token": {"text", "not", "in", "not-in", "missing"},
    "string": {"exact", "contains", "missing"},
    "reference": {"identifier", "missing"},
    "date": {"missing"},
    "number": {"missing"},
    "quantity": {"missing"},
    "uri": {"above", "below", "missing"},
    "composite": set(),
}

# ValueSet url -> (system, code or None for the whole system); None when the server has none.
Expander = Callable[[str], list[tuple[str | None, str | None]] | None]


@dataclass(frozen=True)
class Include:
    source_type: str
    param: str
    target_type: str | None
    iterate: bool = False


@dataclass(frozen=True)
class SearchRequest:
    query: Query
    count: int
    cursor: str | None = None
    includes: tuple[Include, ...] = ()
    revincludes: tuple[Include, ...] = ()
    summary: str | None = None
    elements: tuple[str, ...] = ()
    total: str = "none"
    # (name, value) pairs that were understood, for the Bundle's self link
    used: tuple[tuple[str, str], ...] = field(default=())

    @property
    def resource_type(self) -> str:
        return self.query.resource_type


def parse_search(
    resource_type: str,
    params: Sequence[tuple[str, str]],
    definitions: SearchParams,
    *,
    default_count: int,
    max_count: int,
    lenient: bool = False,
    expand: Expander | None = None,
) -> SearchRequest:
    """Build a SearchRequest; 400 naming a bad parameter unless ``lenient`` skips it."""
    parser = _Parser(definitions, expand)
    conditions: list[Condition] = []
    sort: tuple[SortKey, ...] = ()
    options: dict[str, Any] = {"count": default_count, "includes": [], "revincludes": []}
    used: list[tuple[str, str]] = []
    for name, value in params:
        if name in FORMAT_PARAMETERS:
            continue
        try:
            if "\x00" in name or "\x00" in value:  # no stored text can hold it (PostgreSQL)
                raise InvalidRequest(f"{name}: a search value must not contain U+0000", name)
            if name == "_sort":
                sort = parser.sort(resource_type, value)
            elif name.startswith("_") and name.split(":")[0] in _RESULT_OPTIONS:
                _RESULT_OPTIONS[name.split(":")[0]](parser, resource_type, name, value, options)
                if name == "_count":
                    options["count"] = min(options["count"], max_count)
            else:
                conditions.append(parser.condition(resource_type, name, value))
        except (InvalidRequest, NotSupported):
            if lenient:
                continue
            raise
        used.append((name, value))
    return SearchRequest(
        Query(resource_type, _merge_date_bounds(conditions), sort),
        options["count"],
        options.get("cursor"),
        tuple(options["includes"]),
        tuple(options["revincludes"]),
        options.get("summary"),
        tuple(options.get("elements", ())),
        options.get("total", "none"),
        tuple(used),
    )


def _merge_date_bounds(conditions: list[Condition]) -> tuple[Condition, ...]:
    """``date=ge..&date=lt..`` as one condition on one row, not two lists of half the table.

    Stricter only for a resource with several values of the parameter (as HAPI reads it).
    """
    bounds: dict[str, list[Test]] = {}
    for c in conditions:
        if isinstance(c, Match) and c.kind == "date" and len(c.tests) == 1 and not c.negate:
            bounds.setdefault(c.param, []).extend(c.tests)
    several = {param for param, tests in bounds.items() if len(tests) > 1}
    merged: list[Condition] = []
    for c in conditions:
        mergeable = isinstance(c, Match) and c.kind == "date" and len(c.tests) == 1
        if mergeable and isinstance(c, Match) and not c.negate and c.param in several:
            if c.param in bounds:  # the first of them stands for all
                merged.append(RowMatch("date", c.param, tuple(bounds.pop(c.param))))
            continue
        merged.append(c)
    return tuple(merged)


def _count(_p: _Parser, _t: str, name: str, value: str, options: dict[str, Any]) -> None:
    count = parse_unsigned(value)
    if count is None:
        raise InvalidRequest(f"_count must be a non-negative integer, got {value!r}", name)
    options["count"] = count


def _cursor(_p: _Parser, _t: str, _name: str, value: str, options: dict[str, Any]) -> None:
    options["cursor"] = value


def _summary(_p: _Parser, _t: str, name: str, value: str, options: dict[str, Any]) -> None:
    if value not in SUMMARY_VALUES:
        raise InvalidRequest(f"_summary must be one of {', '.join(SUMMARY_VALUES)}", name)
    options["summary"] = None if value == "false" else value


def _total(_p: _Parser, _t: str, name: str, value: str, options: dict[str, Any]) -> None:
    if value not in TOTAL_VALUES:
        raise InvalidRequest(f"_total must be one of {', '.join(TOTAL_VALUES)}", name)
    options["total"] = value


def _elements(_p: _Parser, _t: str, _name: str, value: str, options: dict[str, Any]) -> None:
    options["elements"] = [e.strip() for e in value.split(",") if e.strip()]


def _include(parser: _Parser, resource_type: str, name: str, value: str, options: Any) -> None:
    base, _, modifier = name.partition(":")
    if modifier not in ("", "iterate", "recurse"):
        raise InvalidRequest(f"Unknown modifier :{modifier} of {base}", name)
    reverse = base == "_revinclude"
    include = parser.include(resource_type, name, value, bool(modifier), reverse=reverse)
    options["revincludes" if reverse else "includes"].append(include)


_RESULT_OPTIONS: dict[str, Callable[..., None]] = {
    "_count": _count,
    "_cursor": _cursor,
    "_summary": _summary,
    "_total": _total,
    "_elements": _elements,
    "_include": _include,
    "_revinclude": _include,
}
# Every parameter that shapes the answer rather than selects resources (without modifier).
RESULT_PARAMETERS = FORMAT_PARAMETERS | set(_RESULT_OPTIONS) | {"_sort"}


class _Parser:
    def __init__(self, definitions: SearchParams, expand: Expander | None) -> None:
        self.definitions = definitions
        self.expand = expand

    def condition(self, resource_type: str, name: str, value: str) -> Condition:
        if name.startswith("_has:"):
            return self._has(resource_type, name, value)
        head, dot, rest = name.partition(".")
        code, _, modifier = head.partition(":")
        if code == "_id":
            return IdMatch(tuple(v for v in split_values(value) if v))
        param = self._param(resource_type, code, name)
        if dot:
            return self._chain(resource_type, param, modifier, rest, value, name)
        if code == "_lastUpdated":
            return LastUpdated(tuple(self._range("date", v, name) for v in split_values(value)))
        if modifier == "missing":
            if value not in ("true", "false"):
                raise InvalidRequest(f":missing takes true or false, got {value!r}", name)
            return Missing(param.type, code, value == "true")
        if param.type == "reference" and modifier and modifier != "identifier":
            if modifier not in (param.targets or (modifier,)) or not modifier[:1].isupper():
                raise InvalidRequest(f"{modifier!r} is not a target type of {code!r}", name)
        elif modifier and modifier not in _MODIFIERS[param.type]:
            raise NotSupported(
                f"Modifier :{modifier} is not supported on {param.type} {code!r}", name
            )
        if param.type == "composite":
            return self._composite(resource_type, param, value, name)
        if param.type == "reference" and modifier == "identifier":
            identifiers = tuple(parse_token(v, name) for v in split_values(value))
            return Match("token", code + ":identifier", identifiers)
        tests = tuple(self._test(param, modifier, v, name) for v in split_values(value))
        return Match(param.type, code, tests, negate=modifier in ("not", "not-in"))

    def _param(self, resource_type: str, code: str, name: str) -> SearchParam:
        param = self.definitions.get(resource_type, code)
        if param is None:
            raise NotSupported(
                f"Search parameter {code!r} is not supported for {resource_type}", name
            )
        return param

    def _chain(
        self,
        resource_type: str,
        param: SearchParam,
        modifier: str,
        rest: str,
        value: str,
        name: str,
    ) -> Condition:
        if param.type != "reference":
            raise InvalidRequest(
                f"Only reference parameters can be chained, not {param.code!r}", name
            )
        targets = (modifier,) if modifier else param.targets
        inner_code = rest.partition(".")[0].partition(":")[0]
        usable = tuple(
            t
            for t in targets
            if inner_code in ("_id", "_lastUpdated") or self.definitions.get(t, inner_code)
        )
        if not usable:
            raise InvalidRequest(
                f"No target type of {param.code!r} has a parameter {inner_code!r}", name
            )
        inner = {t: self.condition(t, rest, value) for t in usable}
        if len(set(inner.values())) == 1:
            return Chain(param.code, usable, (next(iter(inner.values())),))
        # target types whose parameter differs: one chain each, any may match
        raise NotSupported(
            f"Chain {name!r} needs a type modifier, e.g. {param.code}:{usable[0]}", name
        )

    def _has(self, resource_type: str, name: str, value: str) -> Condition:
        parts = name.split(":", 3)
        if len(parts) < 4 or not parts[3]:
            raise InvalidRequest("_has needs the form _has:Type:reference:parameter", name)
        _, source_type, ref_code, rest = parts
        reference = self.definitions.get(source_type, ref_code)
        if reference is None or reference.type != "reference":
            raise InvalidRequest(f"{source_type} has no reference parameter {ref_code!r}", name)
        if reference.targets and resource_type not in reference.targets:
            raise InvalidRequest(f"{source_type}.{ref_code} cannot point to {resource_type}", name)
        return Has(source_type, ref_code, (self.condition(source_type, rest, value),))

    def _composite(
        self, resource_type: str, param: SearchParam, value: str, name: str
    ) -> CompositeMatch:
        components = [self.definitions.by_url(c.definition) for c in param.components]
        if not components or any(c is None for c in components):
            raise NotSupported(f"Composite {param.code!r} has a component this server lacks", name)
        kinds = tuple(c.type for c in components if c is not None)
        alternatives = []
        for alternative in split_values(value):
            parts = alternative.split("$")
            if len(parts) != len(kinds):
                raise InvalidRequest(f"{param.code} needs {len(kinds)} values joined by '$'", name)
            alternatives.append(
                tuple(
                    self._test(c, "", part, name)
                    for c, part in zip(components, parts, strict=True)
                    if c is not None
                )
            )
        return CompositeMatch(param.code, kinds, tuple(alternatives))

    def _test(self, param: SearchParam, modifier: str, value: str, name: str) -> Test:
        kind = param.type
        if kind == "token":
            if modifier == "text":
                return TokenTest(text=normalize(value))
            if modifier in ("in", "not-in"):
                return self._value_set(value, name)
            return parse_token(value, name)
        if kind == "string":
            value = _unescape(value)
            if modifier == "exact":
                return StringTest(cut(value) or "", "exact")
            return StringTest(normalize(value), "contains" if modifier == "contains" else "start")
        if kind == "reference":
            return _reference_test(value, modifier or None)
        if kind == "uri":
            return UriTest(cut(_unescape(value)) or "", modifier or "exact")
        return self._range(kind, value, name)

    def _range(self, kind: str, value: str, name: str) -> RangeTest:
        prefix, rest = _prefix(value)
        if kind == "date":
            try:  # an unencoded "+" of a time zone arrives as a space
                low, high = date_range(rest.replace(" ", "+"))
            except DateFormatError as exc:
                raise InvalidRequest(f"{name}: {exc}", name) from None
            return RangeTest(prefix, low, high)
        number, _, unit = rest.partition("|")
        if not _NUMBER.fullmatch(number):
            raise InvalidRequest(f"{name}: {number!r} is not a number", name)
        bounds = _implied_range(number)
        if bounds is None:
            raise InvalidRequest(f"{name}: {number!r} is out of range", name)
        lower, upper = bounds
        test = RangeTest(prefix, lower, upper, float(number))
        if kind != "quantity" or not unit:
            return test
        system, _, code = unit.partition("|") if "|" in unit else ("", "", unit)
        return RangeTest(
            prefix, lower, upper, float(number), cut(system) or None, cut(code) or None
        )

    def _value_set(self, url: str, name: str) -> TokenTest:
        codes = self.expand(url) if self.expand else None
        if codes is None:
            raise InvalidRequest(f"The ValueSet {url!r} is not held by this server", name)
        return TokenTest(codes=tuple((cut(s), cut(c)) for s, c in codes))

    def sort(self, resource_type: str, value: str) -> tuple[SortKey, ...]:
        keys = []
        for item in (v.strip() for v in value.split(",")):
            descending = item.startswith("-")
            code = item.removeprefix("-")
            if code in ("_id", "_lastUpdated"):
                keys.append(SortKey(code, code, descending))
                continue
            param = self._param(resource_type, code, "_sort")
            if param.type not in (
                "string",
                "token",
                "date",
                "number",
                "quantity",
                "uri",
                "reference",
            ):
                raise InvalidRequest(f"Cannot sort by {param.type} parameter {code!r}", "_sort")
            keys.append(SortKey(param.type, code, descending))
        return tuple(keys)

    def include(
        self, resource_type: str, name: str, value: str, iterate: bool, *, reverse: bool
    ) -> Include:
        if value == "*":
            return Include("*", "*", None, iterate)
        parts = value.split(":")
        if len(parts) not in (2, 3):
            raise InvalidRequest(f"{name} takes Type:parameter[:targetType], got {value!r}", name)
        source, code = parts[0], parts[1]
        if not reverse and source != resource_type and not iterate:
            raise InvalidRequest(f"{name}={value} must start with {resource_type}", name)
        param = self.definitions.get(source, code)
        if param is None or param.type != "reference":
            raise InvalidRequest(f"{source} has no reference parameter {code!r}", name)
        return Include(source, code, parts[2] if len(parts) == 3 else None, iterate)


def parse_token(value: str, name: str = "") -> TokenTest:
    """``system|code``, ``|code`` (no system), ``system|`` (any code) or ``code``."""
    parts = _split_unescaped(value, "|")
    if len(parts) == 1:
        return TokenTest(cut(_unescape(parts[0])) or None)
    if len(parts) != 2:
        raise InvalidRequest(f"Token value {value!r} of {name!r} has more than one '|'", name)
    system, code = (_unescape(p) for p in parts)
    return TokenTest(cut(code) or None, cut(system) or None, match_system=True)


def _reference_test(value: str, target_type: str | None) -> ReferenceTest:
    value = _unescape(value)
    local = parse_reference(value, "")
    if local is not None:
        return ReferenceTest(local[1], local[0])
    if "/" in value or ":" in value:
        return ReferenceTest(url=cut(value.split("|", 1)[0]))
    return ReferenceTest(cut(value), target_type)


def _prefix(value: str) -> tuple[str, str]:
    if value[:2] in PREFIXES and not value[:2].isdigit():
        return value[:2], value[2:]
    return "eq", value


def _implied_range(number: str) -> tuple[float, float] | None:
    """The interval a number stands for at its precision: ``100`` is [99.5, 100.5).

    None when the number (or its precision, ``0e400``) is beyond a float: a huge exponent is
    never raised to a power (``1e999999999`` would take the worker minutes).
    """
    mantissa, _, exponent = number.lower().partition("e")
    if len(exponent.lstrip("+-0")) > _MAX_EXPONENT_DIGITS:
        return None
    step = (int(exponent) if exponent else 0) - len(mantissa.partition(".")[2])
    if step > sys.float_info.max_10_exp:
        return None
    half = 0.5 * 10.0**step  # 0.0 for a very negative step, never an error
    value = float(number)
    lower, upper = value - half, value + half
    return (lower, upper) if math.isfinite(lower) and math.isfinite(upper) else None


def split_values(value: str) -> list[str]:
    """Comma-separated alternatives (OR), honouring ``\\,`` escapes."""
    return [_unescape_comma(v) for v in _split_unescaped(value, ",")]


def _split_unescaped(value: str, separator: str) -> list[str]:
    """``value`` cut at each unescaped ``separator``; escapes are kept for ``_unescape``."""
    parts, current, escaped = [], [], False
    for char in value:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:  # a lone backslash at the end stands for itself
        current.append("\\\\")
    parts.append("".join(current))
    return parts


def _unescape_comma(value: str) -> str:
    return value.replace("\\,", ",")


_ESCAPABLE = ",$|\\"


def _unescape(value: str) -> str:
    """FHIR search escapes undone: ``\\,`` ``\\$`` ``\\|`` ``\\\\``; any other backslash is
    itself (https://hl7.org/fhir/R4/search.html#escaping)."""
    out, index = [], 0
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value) and value[index + 1] in _ESCAPABLE:
            char = value[index + 1]
            index += 1
        out.append(char)
        index += 1
    return "".join(out)
