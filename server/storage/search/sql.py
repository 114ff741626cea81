"""Compile search criteria to SQL: one ``res_id IN (subquery)`` per condition.

Every condition becomes a subquery of resource ids over one typed index table
(or a join of them for composites, a nested subquery for chains and ``_has``),
so the same SQL runs on SQLite and PostgreSQL and each subquery uses the
``(res_type, param, value)`` index of its table.  Prefix semantics follow
https://hl7.org/fhir/R4/search.html#prefix over the ranges the index stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    BindParameter,
    Boolean,
    ColumnElement,
    Select,
    String,
    Table,
    and_,
    bindparam,
    case,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FromClause
from sqlalchemy.sql.visitors import InternalTraversal

from server.storage.schema import INDEX_TABLES, Resource
from server.storage.scope import visible_organizations
from server.storage.search.criteria import (
    Chain,
    CompositeMatch,
    Condition,
    Has,
    IdMatch,
    InScope,
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

R = cast(Table, Resource.__table__)
TABLES = {kind: cast(Table, model.__table__) for kind, model in INDEX_TABLES.items()}
_SORT_COLUMN = {
    "string": "value_norm",
    "token": "code",
    "number": "value",
    "quantity": "value",
    "uri": "uri",
    "reference": "target_id",
}


class InIds(ColumnElement[bool]):
    """``column IN (ids)``, on PostgreSQL ``column = ANY(:ids)``: one array parameter.

    A parameter per id is rendered by SQLAlchemy and parsed by psycopg at every run, about 8 ms
    for the 1,000 ids of a listed ``_has`` set (bench/search.py at 1 million Observations).
    """

    type = Boolean()
    # A comparison, not a boolean value: without this SQLite gets "... IN (...) = 1", which
    # no index serves (a scan of every resource of the type).
    _is_implicitly_boolean = True
    inherit_cache = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("listed", InternalTraversal.dp_clauseelement),
        ("array", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], ids: Sequence[str]) -> None:
        self.column = column
        self.listed: BindParameter[Any] = bindparam(None, list(ids), expanding=True)
        self.array: BindParameter[Any] = bindparam(None, list(ids), type_=ARRAY(String()))


@compiles(InIds)
def _in_ids(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column.in_(element.listed), **kw)


@compiles(InIds, "postgresql")
def _any_ids(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = compiler.process(element.column, **kw), compiler.process(element.array, **kw)
    return f"({column} = ANY ({ids}))"


def ids_select(resource_type: str, conditions: tuple[Condition, ...]) -> Select[Any]:
    """Ids of live resources of ``resource_type`` meeting every condition."""
    r = R.alias()
    query = select(r.c.res_id).where(r.c.res_type == resource_type, r.c.deleted.is_(False))
    return query.where(*(condition_sql(resource_type, c, r) for c in conditions))


def nested_ids(resource_type: str, conditions: tuple[Condition, ...]) -> Select[Any] | None:
    """Ids (possibly repeated) of ``resource_type`` meeting ``conditions`` if one index range
    gives them alone (index rows exist only for live resources); else None."""
    if len(conditions) != 1:
        return None
    only = conditions[0]
    if isinstance(only, RowMatch | CompositeMatch) or (isinstance(only, Match) and not only.negate):
        return ids_subquery(resource_type, only)
    return None


def condition_sql(resource_type: str, condition: Condition, r: FromClause) -> ColumnElement[bool]:
    if isinstance(condition, IdMatch):
        if condition.negate:
            return r.c.res_id.not_in(condition.ids)
        return InIds(r.c.res_id, condition.ids)
    if isinstance(condition, InScope):
        return r.c.org_scope.in_(visible_organizations(condition.binding))
    if isinstance(condition, LastUpdated):  # a timestamptz column: compare aware UTC values
        tests = (replace(t, low=_aware(t.low), high=_aware(t.high)) for t in condition.tests)
        return or_(*(_range(r.c.last_updated, r.c.last_updated, t) for t in tests))
    subquery = ids_subquery(resource_type, condition)
    if isinstance(condition, Match) and condition.negate:
        return r.c.res_id.not_in(subquery)
    if isinstance(condition, Missing) and condition.missing:
        return r.c.res_id.not_in(subquery)
    return r.c.res_id.in_(subquery)


def ids_subquery(resource_type: str, condition: Condition) -> Select[Any]:
    """Ids of resources meeting one condition (not negated; deleted ones have no rows)."""
    if isinstance(condition, Match):
        t = TABLES[condition.kind].alias()
        return select(t.c.res_id).where(
            t.c.res_type == resource_type,
            t.c.param == condition.param,
            or_(*(_test(condition.kind, t, test) for test in condition.tests)),
        )
    if isinstance(condition, RowMatch):
        t = TABLES[condition.kind].alias()
        return select(t.c.res_id).where(
            t.c.res_type == resource_type,
            t.c.param == condition.param,
            *(_test(condition.kind, t, test) for test in condition.tests),
        )
    if isinstance(condition, Missing):
        t = TABLES[condition.kind].alias()
        return select(t.c.res_id).where(t.c.res_type == resource_type, t.c.param == condition.param)
    if isinstance(condition, CompositeMatch):
        return _composite(resource_type, condition)
    if isinstance(condition, InScope):
        return ids_select(resource_type, (condition,))
    if isinstance(condition, Chain):
        ref = TABLES["reference"].alias()
        targets = [
            and_(
                ref.c.target_type == target,
                ref.c.target_id.in_(ids_select(target, condition.inner)),
            )
            for target in condition.target_types
        ]
        return select(ref.c.res_id).where(
            ref.c.res_type == resource_type, ref.c.param == condition.param, or_(*targets)
        )
    if isinstance(condition, Has):
        ref = TABLES["reference"].alias()
        return select(ref.c.target_id).where(
            ref.c.res_type == condition.source_type,
            ref.c.param == condition.param,
            ref.c.target_type == resource_type,
            ref.c.res_id.in_(ids_select(condition.source_type, condition.inner)),
        )
    raise TypeError(f"Unknown condition {condition!r}")


def _composite(resource_type: str, condition: CompositeMatch) -> Select[Any]:
    tables = [TABLES[kind].alias() for kind in condition.kinds]
    first = tables[0]
    joined: Any = first
    for index, t in enumerate(tables[1:], start=1):
        joined = joined.join(
            t,
            and_(
                t.c.res_type == first.c.res_type,
                t.c.res_id == first.c.res_id,
                t.c.grp == first.c.grp,
                t.c.param == f"{condition.param}${index}",
            ),
        )
    alternatives = [
        and_(
            *(
                _test(kind, t, test)
                for kind, t, test in zip(condition.kinds, tables, tests, strict=True)
            )
        )
        for tests in condition.alternatives
    ]
    return (
        select(first.c.res_id)
        .select_from(joined)
        .where(
            first.c.res_type == resource_type,
            first.c.param == f"{condition.param}$0",
            or_(*alternatives),
        )
    )


def _test(kind: str, t: FromClause, test: Test) -> ColumnElement[bool]:
    if isinstance(test, TokenTest):
        return _token(t, test)
    if isinstance(test, StringTest):
        if test.mode == "exact":
            return t.c.value_exact == test.value
        pattern = _like_escape(test.value)
        pattern = f"%{pattern}%" if test.mode == "contains" else f"{pattern}%"
        return t.c.value_norm.like(pattern, escape="\\")
    if isinstance(test, ReferenceTest):
        parts = []
        if test.url is not None:
            parts.append(t.c.url == test.url)
        if test.target_id is not None:
            parts.append(t.c.target_id == test.target_id)
        if test.target_type is not None:
            parts.append(t.c.target_type == test.target_type)
        return and_(*parts)
    if isinstance(test, UriTest):
        if test.mode == "below":
            return t.c.uri.like(_like_escape(test.value) + "%", escape="\\")
        if test.mode == "above":  # the stored uri is a prefix of the value (not a LIKE pattern)
            return func.substr(literal(test.value), 1, func.length(t.c.uri)) == t.c.uri
        return t.c.uri == test.value
    if kind == "date":
        return cast(ColumnElement[bool], _range(t.c.low, t.c.high, test))
    return (
        _quantity(t, test)
        if kind == "quantity"
        else cast(ColumnElement[bool], _number(t.c.value, test))
    )


def _token(t: FromClause, test: TokenTest) -> ColumnElement[bool]:
    if test.codes is not None:
        return or_(
            false(),
            *(
                and_(
                    t.c.code == code if code is not None else true(),
                    t.c.system == system if system is not None else true(),
                )
                for system, code in test.codes
            ),
        )
    parts: list[ColumnElement[bool]] = []
    if test.text is not None:  # any word of the text may start the match
        word = _like_escape(test.text)
        parts.append(
            or_(t.c.text.like(word + "%", escape="\\"), t.c.text.like(f"% {word}%", escape="\\"))
        )
    if test.code is not None:
        parts.append(t.c.code == test.code)
    if test.match_system:
        parts.append(t.c.system.is_(None) if test.system is None else t.c.system == test.system)
    return and_(*parts)


def _range(low: Any, high: Any, test: RangeTest) -> Any:
    """Target range [low, high] against the search range per prefix."""
    s_low, s_high = test.low, test.high
    contained = and_(low >= s_low, high <= s_high)
    prefix = test.prefix
    if prefix == "eq":
        return contained
    if prefix == "ne":
        return not_(contained)
    if prefix == "gt":
        return high > s_high
    if prefix == "lt":
        return low < s_low
    if prefix == "ge":
        return or_(high > s_high, contained)
    if prefix == "le":
        return or_(low < s_low, contained)
    if prefix == "sa":
        return low > s_high
    if prefix == "eb":
        return high < s_low
    # ap: overlap with the search range widened by 10% of its distance from now
    assert isinstance(s_low, datetime) and isinstance(s_high, datetime)
    now = datetime.now(UTC)
    gap = abs((now if s_low.tzinfo else now.replace(tzinfo=None)) - s_low) / 10
    return and_(low <= s_high + gap, high >= s_low - gap)


def _aware(value: datetime | float) -> datetime | float:
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) else value


def _number(value: Any, test: RangeTest) -> Any:
    exact = float(cast(float, test.value if test.value is not None else test.low))
    lo, hi = float(cast(float, test.low)), float(cast(float, test.high))
    prefix = test.prefix
    if prefix == "eq":
        return and_(value >= lo, value < hi)
    if prefix == "ne":
        return or_(value < lo, value >= hi)
    if prefix in ("gt", "sa"):
        return value > exact
    if prefix in ("lt", "eb"):
        return value < exact
    if prefix == "ge":
        return value >= exact
    if prefix == "le":
        return value <= exact
    spread = abs(exact) * 0.1  # ap: within 10 %
    return and_(value >= exact - spread, value <= exact + spread)


def _quantity(t: FromClause, test: RangeTest) -> ColumnElement[bool]:
    parts = [_number(t.c.value, test)]
    if test.system is not None:
        parts.append(t.c.system == test.system)
        if test.code is not None:
            parts.append(t.c.code == test.code)
    elif test.code is not None:
        parts.append(or_(t.c.code == test.code, t.c.unit == test.code))
    return and_(*parts)


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def sort_columns(query: Query, r: FromClause) -> list[tuple[Any, bool]]:
    """(expression, descending) per sort level; missing values last; id breaks ties."""
    columns: list[tuple[Any, bool]] = []
    for key in query.sort:
        columns.extend(_sort_key(query.resource_type, key, r))
    columns.append((r.c.res_id, False))
    return columns


def _sort_key(resource_type: str, key: SortKey, r: FromClause) -> list[tuple[Any, bool]]:
    if key.kind == "_id":  # ascending ids are the final tie-breaker anyway
        return [(r.c.res_id, True)] if key.descending else []
    if key.kind == "_lastUpdated":
        return [(r.c.last_updated, key.descending)]
    t = TABLES[key.kind].alias()
    if key.kind == "date":
        column, aggregate = (t.c.high, func.max) if key.descending else (t.c.low, func.min)
    else:
        column = t.c[_SORT_COLUMN[key.kind]]
        aggregate = func.max if key.descending else func.min
    value = (
        select(aggregate(column))
        .where(t.c.res_type == r.c.res_type, t.c.res_id == r.c.res_id, t.c.param == key.param)
        .scalar_subquery()
    )
    absent = case((value.is_(None), 1), else_=0)
    return [(absent, False), (value, key.descending)]


def after_condition(columns: list[tuple[Any, bool]], values: tuple[Any, ...]) -> Any:
    """Rows strictly after ``values`` in the order of ``columns`` (keyset paging)."""
    alternatives = []
    for index, (column, descending) in enumerate(columns):
        value = values[index]
        if value is None:
            continue  # nothing sorts after a missing value within its (missing) group
        earlier_equal = [
            c.is_(None) if v is None else c == v
            for (c, _d), v in zip(columns[:index], values[:index], strict=True)
        ]
        alternatives.append(and_(*earlier_equal, column < value if descending else column > value))
    return or_(*alternatives) if alternatives else false()


def order_by(columns: list[tuple[Any, bool]]) -> list[Any]:
    return [column.desc() if descending else column.asc() for column, descending in columns]


def reference_pairs(ids: list[str], resource_type: str, param: str, target: str | None) -> Any:
    ref = TABLES["reference"]
    query = select(ref.c.target_type, ref.c.target_id).where(
        ref.c.res_type == resource_type,
        ref.c.res_id.in_(ids),
        ref.c.param == param,
        ref.c.target_id.is_not(None),
    )
    return query.where(ref.c.target_type == target) if target else query


def referencing_ids(source_type: str, param: str, target_type: str, ids: list[str]) -> Any:
    ref = TABLES["reference"]
    return select(ref.c.res_id).where(
        ref.c.res_type == source_type,
        ref.c.param == param,
        ref.c.target_type == target_type,
        ref.c.target_id.in_(ids),
    )
