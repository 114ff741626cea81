"""Checks of primitive values: JSON type, the regex of the type's StructureDefinition, limits.

The regexes come from the ``value`` element of each primitive type's definition in the
core package (https://hl7.org/fhir/R4/datatypes.html#primitive); a few rules that a
regex cannot state well are coded here: base64 content, decimal/integer ranges, the
1 MB string limit and XHTML narrative well-formedness (https://hl7.org/fhir/R4/narrative.html).
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.parsers.expat
from collections.abc import Callable
from typing import Any

MAX_STRING_BYTES = 1024 * 1024
_INTEGER_TYPES = frozenset({"integer", "positiveInt", "unsignedInt"})
_XHTML_NS = "http://www.w3.org/1999/xhtml"
# Narrative may not carry active content (https://hl7.org/fhir/R4/narrative.html#xhtml).
_FORBIDDEN_TAGS = frozenset(
    {"script", "form", "base", "link", "xlink", "input", "iframe", "object"}
)

PRIMITIVE_TYPES = frozenset(
    {
        "boolean", "integer", "string", "decimal", "uri", "url", "canonical", "base64Binary",
        "instant", "date", "dateTime", "time", "code", "oid", "id", "markdown", "unsignedInt",
        "positiveInt", "uuid", "xhtml",
    }
)  # fmt: skip


def is_primitive(type_code: str) -> bool:
    return type_code in PRIMITIVE_TYPES


def json_kind_ok(type_code: str, value: Any) -> bool:
    """Whether ``value`` has the JSON type FHIR's JSON format requires for ``type_code``."""
    if type_code == "boolean":
        return isinstance(value, bool)
    if type_code in _INTEGER_TYPES:
        return isinstance(value, int) and not isinstance(value, bool)
    if type_code == "decimal":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


class PrimitiveChecker:
    """Value checks per primitive type; regexes compiled once from ``regex_of(type)``."""

    def __init__(self, regex_of: Callable[[str], str | None]) -> None:
        self._regex_of = regex_of
        self._compiled: dict[str, re.Pattern[str] | None] = {}

    def problem(self, type_code: str, value: Any) -> str | None:
        """A sentence describing what is wrong with ``value``, or None when it is valid."""
        if not json_kind_ok(type_code, value):
            return f"{_show(value)} has the wrong JSON type for a {type_code}"
        if type_code == "boolean":
            return None
        if type_code in _INTEGER_TYPES:
            return _integer_problem(type_code, value)
        if type_code == "decimal":
            return None
        empty = not value if type_code == "xhtml" else not value.strip()
        if empty:
            return f"a {type_code} must not be empty or only whitespace"
        big = len(value) > MAX_STRING_BYTES // 4 and len(value.encode()) > MAX_STRING_BYTES
        if big and type_code != "xhtml":  # the 1 MB limit is the string type's
            return (
                f"value is longer than permitted maximum length of 1 MB ({MAX_STRING_BYTES} bytes)"
            )
        if type_code == "base64Binary":
            return _base64_problem(value)
        if type_code == "xhtml":
            return xhtml_problem(value)
        pattern = self._pattern(type_code)
        if pattern is not None and pattern.fullmatch(value) is None:
            return f"{_show(value)} is not a valid {type_code}"
        return None

    def _pattern(self, type_code: str) -> re.Pattern[str] | None:
        if type_code not in self._compiled:
            source = self._regex_of(type_code)
            # ASCII: the definitions' regexes are Java's, where \\s and \\S are ASCII-only.
            self._compiled[type_code] = re.compile(source, re.ASCII) if source else None
        return self._compiled[type_code]


def _integer_problem(type_code: str, value: int) -> str | None:
    if not -(2**31) <= value < 2**31:
        return f"{value} is outside the range of a 32-bit integer"
    if type_code == "positiveInt" and value < 1:
        return f"{value} is not a valid positiveInt (it must be 1 or more)"
    if type_code == "unsignedInt" and value < 0:
        return f"{value} is not a valid unsignedInt (it must be 0 or more)"
    return None


def _base64_problem(value: str) -> str | None:
    compact = "".join(value.split())
    try:
        base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return f"The value {_show(value)} is not a valid Base64 value"
    return None


def base64_length(value: str) -> int | None:
    """The decoded length of base64 ``value``, None when it does not decode."""
    try:
        return len(base64.b64decode("".join(value.split()), validate=True))
    except (binascii.Error, ValueError):
        return None


def xhtml_problem(value: str) -> str | None:
    """What is wrong with narrative XHTML ``value`` (well-formed, one div, no active content)."""
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    problems: list[str] = []
    depth = [0]

    def start(name: str, attributes: dict[str, str]) -> None:
        namespace, _, local = name.rpartition(" ")
        if depth[0] == 0 and (local != "div" or namespace != _XHTML_NS):
            problems.append("the narrative must be a single <div> in the XHTML namespace")
        if local in _FORBIDDEN_TAGS:
            problems.append(f"the narrative must not contain a <{local}> element")
        for attribute in attributes:
            if attribute.rpartition(" ")[2].lower().startswith("on"):
                problems.append(f"the narrative must not contain the attribute {attribute}")
        depth[0] += 1

    def end(name: str) -> None:
        depth[0] -= 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(value, True)
    except xml.parsers.expat.ExpatError as exc:
        if (
            exc.code
            == xml.parsers.expat.errors.codes[xml.parsers.expat.errors.XML_ERROR_UNDEFINED_ENTITY]
        ):
            return f"Invalid entity in the XHTML (line {exc.lineno}, column {exc.offset})"
        return f"The narrative is not well-formed XHTML: {xml.parsers.expat.ErrorString(exc.code)}"
    return problems[0] if problems else None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
