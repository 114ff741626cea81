"""Running compiled searches: a page of ids in sort order, counts, and include lookups."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, Select, bindparam, distinct, exists, func, select, text

from server.errors import InvalidRequest
from server.storage.search.criteria import (
    Chain,
    Condition,
    Has,
    IdMatch,
    Match,
    Query,
    RowMatch,
    TokenTest,
)
from server.storage.search.sql import (
    TABLES,
    R,
    after_condition,
    condition_sql,
    ids_subquery,
    nested_ids,
    order_by,
    reference_pairs,
    referencing_ids,
    sort_columns,
)

# One page row: the id and the values of the sort keys, which make the next-page cursor.
PageRow = tuple[Any, ...]

# A chain's or _has's set of at most this many ids is read first and given to the search as a
# list; reading stops after one row more, so a larger set costs only that much.
NESTED_IDS_MAX = 1000

# Conditional writes and references mostly ask for one ``identifier=system|value``: one
# statement built once (building a search's SQL costs more than running it), and no join to
# the resource table, since index rows exist only for live resources.
_T = TABLES["token"]
_ONE_TOKEN = (
    select(_T.c.res_id)
    .where(
        _T.c.res_type == bindparam("res_type"),
        _T.c.param == bindparam("param"),
        _T.c.code == bindparam("code"),
        _T.c.system == bindparam("system"),
    )
    .distinct()
    .order_by(_T.c.res_id)
    .limit(bindparam("limit"))
)


class SearchQueries:
    """Search methods of ResourceStore (kept apart: one concern per module)."""

    _c: Connection

    def flush(self) -> None:
        """Write what the store holds back (index rows); before any search query."""

    def search_page(
        self, query: Query, *, limit: int, after: tuple[Any, ...] | None = None
    ) -> list[PageRow]:
        """Up to ``limit`` rows ``(res_id, *sort values)`` after the cursor values ``after``."""
        self.flush()
        query = self._with_small_sets_listed(query)
        r = R.alias("r")
        columns = sort_columns(query, r)
        statement = select(r.c.res_id, *(column for column, _ in columns[:-1])).where(
            *_filters(query, r, self._c.dialect.name)
        )
        if after is not None:
            if len(after) != len(columns) or not all(map(_fits, columns, after)):
                raise InvalidRequest("_cursor does not fit this search's _sort", "_cursor")
            statement = statement.where(after_condition(columns, after))
        statement = statement.order_by(*order_by(columns)).limit(limit)
        return [tuple(row[1:]) + (row[0],) for row in self._c.execute(statement)]

    def match_ids(self, query: Query, limit: int) -> list[str]:
        """Up to ``limit`` matching ids in id order (what conditional interactions need)."""
        token = _one_system_code(query)
        if token is None:
            return [row[-1] for row in self.search_page(query, limit=limit)]
        self.flush()
        param, system, code = token
        found = self._c.execute(
            _ONE_TOKEN,
            {"res_type": query.resource_type, "param": param, "system": system, "code": code,
             "limit": limit},
        )  # fmt: skip
        return list(found.scalars())

    def search_count(self, query: Query) -> int:
        self.flush()
        query = self._with_small_sets_listed(query)
        if len(query.conditions) == 1 and isinstance(query.conditions[0], Match | RowMatch):
            only = query.conditions[0]
            if not (isinstance(only, Match) and only.negate):
                # index rows exist only for live resources: count them without the resource table
                ids = ids_subquery(query.resource_type, only).subquery()
                counted = select(func.count(distinct(ids.c.res_id)))
                return int(self._c.execute(counted).scalar_one())
        r = R.alias("r")
        filters = _filters(query, r, self._c.dialect.name)
        statement = select(func.count()).select_from(r).where(*filters)
        return int(self._c.execute(statement).scalar_one())

    def search_estimate(self, query: Query) -> int:
        """The planner's row estimate on PostgreSQL (cheap); an exact count elsewhere."""
        if self._c.dialect.name != "postgresql":
            return self.search_count(query)
        self.flush()
        query = self._with_small_sets_listed(query)
        r = R.alias("r")
        statement = select(r.c.res_id).where(*_filters(query, r, self._c.dialect.name))
        compiled = statement.compile(self._c, compile_kwargs={"literal_binds": True})
        plan = self._c.execute(text(f"EXPLAIN (FORMAT JSON) {compiled}")).scalar_one()
        return int(plan[0]["Plan"]["Plan Rows"])

    def _with_small_sets_listed(self, query: Query) -> Query:
        """``query`` with the small sets of its chains and ``_has`` read first, as id lists.

        Neither planner can estimate a nested set: PostgreSQL took the 274 patients of a
        Puskesmas for 1 and probed their 5,412 Observations for the 94 MUAC values under 11.5
        (57 ms) instead of starting from those.  Ids read first are exact, whatever the
        statistics; innermost sets are read first, so nested ones build on each other.
        """
        conditions = self._listed(query.resource_type, query.conditions)
        return replace(query, conditions=conditions) if conditions != query.conditions else query

    def _listed(
        self, resource_type: str, conditions: tuple[Condition, ...]
    ) -> tuple[Condition, ...]:
        return tuple(
            self._nested(resource_type, c) if isinstance(c, Has | Chain) else c for c in conditions
        )

    def _nested(self, resource_type: str, condition: Has | Chain) -> Condition:
        """The chain or ``_has`` with its inner set as a list if small, then as its own ids if
        those are few too.  Either read stops after NESTED_IDS_MAX + 1 rows, and the first is
        made only where one index range gives the inner set, so a large set costs little."""
        if isinstance(condition, Has):
            inner_type = condition.source_type
        elif len(condition.target_types) == 1:
            inner_type = condition.target_types[0]
        else:
            return condition  # one inner condition serves several target types
        inner = self._listed(inner_type, condition.inner)
        condition = replace(condition, inner=inner)
        if not (len(inner) == 1 and isinstance(inner[0], IdMatch) and not inner[0].negate):
            read = nested_ids(inner_type, inner)
            ids = self._first_ids(read) if read is not None else None
            if ids is None:
                return condition
            condition = replace(condition, inner=(IdMatch(ids),))
        ids = self._first_ids(ids_subquery(resource_type, condition))
        return condition if ids is None else IdMatch(ids)

    def _first_ids(self, statement: Select[Any]) -> tuple[str, ...] | None:
        """The distinct ids ``statement`` gives; None if it gives over NESTED_IDS_MAX rows."""
        rows = self._c.execute(statement.limit(NESTED_IDS_MAX + 1)).scalars().all()
        if len(rows) > NESTED_IDS_MAX:
            return None
        return tuple(sorted({row for row in rows if row is not None}))

    def referenced(
        self, resource_type: str, ids: list[str], param: str, target_type: str | None
    ) -> list[tuple[str, str]]:
        """(type, id) of the resources that ``param`` of the given resources points to."""
        self.flush()
        rows = self._c.execute(reference_pairs(ids, resource_type, param, target_type))
        return [(row.target_type, row.target_id) for row in rows if row.target_type]

    def referencing(
        self, source_type: str, param: str, target_type: str, ids: list[str]
    ) -> list[str]:
        """Ids of ``source_type`` resources whose ``param`` points to one of ``ids``."""
        self.flush()
        return list(
            self._c.execute(referencing_ids(source_type, param, target_type, ids)).scalars()
        )


def _fits(column: tuple[Any, bool], value: Any) -> bool:
    """Whether a cursor value has the Python type of its sort column (a crafted cursor must be
    a 400, not a database error)."""
    if value is None:
        return True
    try:
        expected = column[0].type.python_type
    except NotImplementedError:
        return False
    if expected is float:
        expected = int | float
    return isinstance(value, expected) and not (isinstance(value, bool) and expected is not bool)


def _filters(query: Query, r: Any, dialect: str) -> list[Any]:
    conditions = [condition_sql(query.resource_type, c, r) for c in query.conditions]
    if dialect == "sqlite" and len(query.conditions) > 1:
        conditions = _sqlite_conditions(query, r)
    return [r.c.res_type == query.resource_type, r.c.deleted.is_(False), *conditions]


def _sqlite_conditions(query: Query, r: Any) -> list[Any]:
    """The likely smallest set as ``IN`` (SQLite reads it first), the others as correlated
    ``EXISTS`` probes of their covering index.  SQLite otherwise lists every ``IN`` set in
    full: all 300,000 body weights to keep the 50 of one child (90 ms at 1M Observations)."""
    ranked = sorted(query.conditions, key=_selectivity_rank)
    first, rest = ranked[0], ranked[1:]
    conditions = [condition_sql(query.resource_type, first, r)]
    for condition in rest:
        if isinstance(condition, RowMatch) or (
            isinstance(condition, Match) and not condition.negate
        ):
            ids = ids_subquery(query.resource_type, condition)
            conditions.append(exists(ids.where(ids.selected_columns[0] == r.c.res_id)))
        else:
            conditions.append(condition_sql(query.resource_type, condition, r))
    return conditions


def _selectivity_rank(condition: Condition) -> int:
    """Lower for sets that are usually smaller: listed ids, a reference to one resource or an
    identifier, a bounded date range; then other matches; negations and the rest last."""
    if isinstance(condition, IdMatch):
        return 0 if not condition.negate else 9
    if isinstance(condition, Match) and not condition.negate:
        if condition.kind == "reference":
            return 1
        if condition.kind == "token" and condition.param == "identifier":
            return 1
        return 4 if condition.kind == "token" else 3
    if isinstance(condition, RowMatch):
        return 2
    return 5


def _one_system_code(query: Query) -> tuple[str, str, str] | None:
    """(param, system, code) when the query is one ``param=system|code`` token test."""
    if len(query.conditions) != 1 or query.sort:
        return None
    only = query.conditions[0]
    if not isinstance(only, Match) or only.kind != "token" or only.negate or len(only.tests) != 1:
        return None
    test = only.tests[0]
    if not isinstance(test, TokenTest) or test.codes is not None or test.text is not None:
        return None
    if not test.match_system or test.system is None or test.code is None:
        return None
    return only.param, test.system, test.code
