"""Search parameters from a query string into a ``SearchRequest`` (pure, no database).

This first cut knows ``_id`` and ``identifier`` (enough for conditional create,
update and delete) plus ``_count``/``_offset``; the search issue widens it to
the SearchParameter definitions.  See https://hl7.org/fhir/R4/search.html.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from server.errors import InvalidRequest, NotSupported
from server.fhir.elements import element
from server.storage.repository import TokenQuery

# Parameters that shape the response rather than select resources.
RESULT_PARAMETERS = frozenset({"_format", "_pretty"})


@dataclass(frozen=True)
class SearchRequest:
    resource_type: str
    ids: tuple[str, ...] = ()
    token_groups: tuple[tuple[TokenQuery, ...], ...] = ()
    count: int = 20
    offset: int = 0
    # (name, value) pairs that were understood, for the Bundle's self link
    used: tuple[tuple[str, str], ...] = field(default=())


def parse_search(
    resource_type: str,
    params: Sequence[tuple[str, str]],
    *,
    default_count: int,
    max_count: int,
    lenient: bool = False,
) -> SearchRequest:
    """Build a SearchRequest; NotSupported names an unknown parameter unless ``lenient``."""
    ids: list[str] = []
    groups: list[tuple[TokenQuery, ...]] = []
    count, offset = default_count, 0
    used: list[tuple[str, str]] = []
    for name, value in params:
        if name in RESULT_PARAMETERS:
            continue
        if name == "_id":
            ids.extend(v for v in split_values(value) if v)
        elif name == "identifier" and element(resource_type, "identifier") is not None:
            groups.append(tuple(parse_token(name, v) for v in split_values(value)))
        elif name == "_count":
            count = min(_non_negative(name, value), max_count)
        elif name == "_offset":
            offset = _non_negative(name, value)
        elif lenient:
            continue
        else:
            raise NotSupported(
                f"Search parameter {name!r} is not supported for {resource_type}", name
            )
        used.append((name, value))
    return SearchRequest(resource_type, tuple(ids), tuple(groups), count, offset, tuple(used))


def parse_token(name: str, value: str) -> TokenQuery:
    """``system|code``, ``|code`` (no system), ``system|`` (any code) or ``code``."""
    parts = _split_unescaped(value, "|")
    if len(parts) == 1:
        return TokenQuery(name, _unescape(parts[0]) or None, None, match_system=False)
    if len(parts) != 2:
        raise InvalidRequest(f"Token value {value!r} of {name!r} has more than one '|'", name)
    system, code = (_unescape(p) for p in parts)
    return TokenQuery(name, code or None, system or None, match_system=True)


def split_values(value: str) -> list[str]:
    """Comma-separated alternatives (OR), honouring ``\\,`` escapes."""
    return _split_unescaped(value, ",")


def _split_unescaped(value: str, separator: str) -> list[str]:
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
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    return value.replace("\\,", ",").replace("\\|", "|").replace("\\$", "$").replace("\\\\", "\\")


def _non_negative(name: str, value: str) -> int:
    if not value.isdigit():
        raise InvalidRequest(f"{name} must be a non-negative integer, got {value!r}", name)
    return int(value)
