"""The search query model storage understands: conditions over the typed index tables.

The services parse a FHIR query string into these values (``services/search``);
``storage/search/sql.py`` compiles them to SQL.  Nothing here knows either.
Values are already normalised and cut to the index column width.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from server.storage.scope import Binding


@dataclass(frozen=True)
class TokenTest:
    code: str | None = None
    system: str | None = None
    match_system: bool = False  # ``system|code`` or ``|code`` (None system: "has no system")
    text: str | None = None  # :text, normalised
    # :in / :not-in expansion: (system, code), code None for every code of the system
    codes: tuple[tuple[str | None, str | None], ...] | None = None


@dataclass(frozen=True)
class StringTest:
    value: str
    mode: str = "start"  # start (default), exact, contains


@dataclass(frozen=True)
class ReferenceTest:
    target_id: str | None = None
    target_type: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class RangeTest:
    """A date, number or quantity comparison: ``prefix`` against the implied range."""

    prefix: str
    low: datetime | float
    high: datetime | float
    value: float | None = None  # the number as written (gt/lt/ap on numbers)
    system: str | None = None  # quantities only
    code: str | None = None


@dataclass(frozen=True)
class UriTest:
    value: str
    mode: str = "exact"  # exact, above, below


Test = TokenTest | StringTest | ReferenceTest | RangeTest | UriTest


@dataclass(frozen=True)
class Match:
    """Resources with an index row of ``param`` passing any of ``tests`` (negated: none)."""

    kind: str
    param: str
    tests: tuple[Test, ...]
    negate: bool = False


@dataclass(frozen=True)
class RowMatch:
    """Resources with one index row of ``param`` passing every test (a bounded date range)."""

    kind: str
    param: str
    tests: tuple[Test, ...]


@dataclass(frozen=True)
class CompositeMatch:
    """Resources with one focus element whose components pass their tests (any alternative)."""

    param: str
    kinds: tuple[str, ...]
    alternatives: tuple[tuple[Test, ...], ...]


@dataclass(frozen=True)
class Missing:
    kind: str
    param: str
    missing: bool


@dataclass(frozen=True)
class IdMatch:
    ids: tuple[str, ...]
    negate: bool = False


@dataclass(frozen=True)
class LastUpdated:
    tests: tuple[RangeTest, ...]


@dataclass(frozen=True)
class Chain:
    """``param:Type.inner``: resources whose reference ``param`` points to a match of ``inner``."""

    param: str
    target_types: tuple[str, ...]
    inner: tuple[Condition, ...]


@dataclass(frozen=True)
class Has:
    """``_has:Type:param:inner``: resources that some ``source_type`` matching inner points to."""

    source_type: str
    param: str
    inner: tuple[Condition, ...]


@dataclass(frozen=True)
class InScope:
    """Resources that belong to an Organization the client may see (docs/security.md)."""

    binding: Binding


Condition = (
    Match | RowMatch | CompositeMatch | Missing | IdMatch | LastUpdated | Chain | Has | InScope
)


@dataclass(frozen=True)
class SortKey:
    kind: str  # an index kind, or "_id" / "_lastUpdated"
    param: str
    descending: bool = False


@dataclass(frozen=True)
class Query:
    resource_type: str
    conditions: tuple[Condition, ...] = ()
    sort: tuple[SortKey, ...] = ()
