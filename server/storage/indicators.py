"""SQL of the PWS indicators: the facts kept with each write, and the per-month summary.

``services/indicators`` decides what the facts are and how they add up; this module only stores
and reads them (docs/indicators.md#storage).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, case, delete, func, insert, select, text, update

from server.storage.db import hold_lock
from server.storage.schema import (
    IndicatorArea,
    IndicatorChange,
    IndicatorEvent,
    IndicatorFacility,
    IndicatorMonth,
    IndicatorPerson,
    IndicatorSummary,
)

_P = cast(Table, IndicatorPerson.__table__)
_E = cast(Table, IndicatorEvent.__table__)
_F = cast(Table, IndicatorFacility.__table__)
_A = cast(Table, IndicatorArea.__table__)
_S = cast(Table, IndicatorSummary.__table__)
_M = cast(Table, IndicatorMonth.__table__)
_C = cast(Table, IndicatorChange.__table__)

MEASUREMENT_KINDS = ("weight", "height")
ZSCORE_KINDS = ("haz", "waz", "whz", "baz")


# --- facts, written with each resource -------------------------------------------------------


def person(connection: Connection, patient_id: str) -> Any | None:
    return connection.execute(select(_P).where(_P.c.patient_id == patient_id)).first()


def put_person(connection: Connection, patient_id: str, values: dict[str, Any]) -> Any | None:
    """Insert or update a person (keeping the Posyandu seen last); returns the old row."""
    old = person(connection, patient_id)
    if old is None:
        connection.execute(insert(_P).values(patient_id=patient_id, **values))
    else:
        connection.execute(update(_P).where(_P.c.patient_id == patient_id).values(**values))
    return old


def remove_person(connection: Connection, patient_id: str) -> None:
    connection.execute(delete(_P).where(_P.c.patient_id == patient_id))


def seen_at(connection: Connection, patient_id: str, posyandu: str, day: str) -> Any | None:
    """Record that ``posyandu`` saw the person on ``day``, unless a later visit is known.
    Returns the person as they were if they moved to ``posyandu`` (their counts move too)."""
    old = person(connection, patient_id)
    if old is None or (old.posyandu_day is not None and old.posyandu_day > day):
        return None
    connection.execute(
        update(_P).where(_P.c.patient_id == patient_id).values(posyandu=posyandu, posyandu_day=day)
    )
    return old if old.posyandu != posyandu else None


def replace_events(
    connection: Connection, res_type: str, res_id: str, rows: Sequence[dict[str, Any]]
) -> set[tuple[str, str, str]]:
    """Make ``rows`` the events of a resource; returns (patient, kind, day) of what changed."""
    where = (_E.c.res_type == res_type) & (_E.c.res_id == res_id)
    columns = (_E.c.patient_id, _E.c.kind, _E.c.day, _E.c.value, _E.c.value2, _E.c.facility)
    before = {tuple(r) for r in connection.execute(select(*columns).where(where))}
    after = {tuple(r[c.name] for c in columns) for r in rows}
    if before == after:
        return set()
    if before:
        connection.execute(delete(_E).where(where))
    if rows:
        connection.execute(
            insert(_E), [{"res_type": res_type, "res_id": res_id, **r} for r in rows]
        )
    return {(patient, kind, day) for patient, kind, day, *_ in before ^ after}


def measurements(connection: Connection, patient_id: str, day: str) -> list[Any]:
    """Weights and lengths/heights of a person on a day: (res_id, kind, value, value2)."""
    return list(
        connection.execute(
            select(_E.c.res_id, _E.c.kind, _E.c.value, _E.c.value2)
            .where(
                _E.c.patient_id == patient_id,
                _E.c.day == day,
                _E.c.res_type == "Observation",
                _E.c.kind.in_(MEASUREMENT_KINDS),
            )
            .order_by(_E.c.res_id)
        )
    )


def zscores_of_day(connection: Connection, patient_id: str, day: str) -> list[Any]:
    """The z-scores of a person's day: (res_id, kind), whoever computed them."""
    return list(
        connection.execute(
            select(_E.c.res_id, _E.c.kind).where(
                _E.c.patient_id == patient_id,
                _E.c.day == day,
                _E.c.res_type == "Observation",
                _E.c.kind.in_(ZSCORE_KINDS),
            )
        )
    )


def measured_days(connection: Connection, patient_id: str) -> list[str]:
    return list(
        connection.scalars(
            select(_E.c.day)
            .where(_E.c.patient_id == patient_id, _E.c.kind.in_(MEASUREMENT_KINDS))
            .distinct()
        )
    )


def facility_kind(connection: Connection, org_id: str) -> str | None:
    return connection.scalar(select(_F.c.kind).where(_F.c.org_id == org_id))


def put_facility(connection: Connection, org_id: str, values: dict[str, Any] | None) -> None:
    """Insert, update (keeping its Location) or, with ``values`` None, remove a facility."""
    if values is None:
        connection.execute(delete(_F).where(_F.c.org_id == org_id))
        return
    done = connection.execute(update(_F).where(_F.c.org_id == org_id).values(**values))
    if done.rowcount == 0:
        connection.execute(insert(_F).values(org_id=org_id, **values))


def locate_facility(connection: Connection, org_id: str, location: str) -> None:
    """Name the Location a facility works from (MeasureReports name it as subject)."""
    connection.execute(update(_F).where(_F.c.org_id == org_id).values(location=location))


def put_area(connection: Connection, location: str, found: tuple[str, str] | None) -> None:
    connection.execute(delete(_A).where(_A.c.location == location))
    if found is not None:
        code, name = found
        connection.execute(delete(_A).where(_A.c.code == code))
        connection.execute(insert(_A).values(code=code, location=location, name=name))


def persons_of(connection: Connection, patients: Iterable[str]) -> dict[str, Any]:
    """The people the facts know among ``patients``, by id."""
    wanted = sorted(set(patients))
    found: dict[str, Any] = {}
    for start in range(0, len(wanted), 500):
        query = select(_P).where(_P.c.patient_id.in_(wanted[start : start + 500]))
        found.update((row.patient_id, row) for row in connection.execute(query))
    return found


def event_months(connection: Connection, patient_id: str) -> set[str]:
    return set(connection.scalars(select(_E.c.month).where(_E.c.patient_id == patient_id)))


def computed_months(connection: Connection) -> set[str]:
    return set(connection.scalars(select(_M.c.month)))


def changed(connection: Connection, marks: Iterable[tuple[str, str | None]]) -> None:
    """Mark (month, desa) pairs stale, desa None for the whole month.  Insert-only: concurrent
    writers never wait on one row."""
    rows = [{"month": month, "village": village} for month, village in sorted(set(marks), key=str)]
    if rows:
        connection.execute(insert(_C), rows)


# --- the summary -----------------------------------------------------------------------------


def lock_summary(connection: Connection, month: str) -> None:
    """One recount of a month at a time (PostgreSQL; SQLite's write transaction is one)."""
    hold_lock(connection, f"ind_summary:{month}")


def lock_people(connection: Connection, *, shared: bool) -> None:
    """Writers that change who is registered where (shared) against the first count of a month
    (exclusive), which no change may slip past.  Taken before any lock_summary."""
    hold_lock(connection, "ind_person", shared=shared)


def stale(connection: Connection, months: Sequence[str]) -> list[str]:
    """Those of ``months`` never counted or changed since."""
    computed = set(connection.scalars(select(_M.c.month).where(_M.c.month.in_(months))))
    dirty = set(connection.scalars(select(_C.c.month).where(_C.c.month.in_(months)).distinct()))
    return [m for m in months if m not in computed or m in dirty]


def add_denominators(
    connection: Connection, month: str, deltas: dict[tuple[str, str, str], int]
) -> None:
    """Add to the denominators of ``month``'s summary rows, by (village, posyandu, indicator)."""
    for (village, posyandu, indicator), delta in sorted(deltas.items()):
        where = (
            (_S.c.month == month)
            & (_S.c.village == village)
            & (_S.c.posyandu == posyandu)
            & (_S.c.indicator == indicator)
        )
        done = connection.execute(
            update(_S).where(where).values(denominator=_S.c.denominator + delta)
        )
        if done.rowcount == 0 and delta > 0:
            connection.execute(
                insert(_S).values(
                    month=month,
                    village=village,
                    posyandu=posyandu,
                    indicator=indicator,
                    numerator=0,
                    denominator=delta,
                )
            )
        elif done.rowcount:  # a cell nobody counts in any more, as a recount would leave it
            connection.execute(delete(_S).where(where, _S.c.denominator <= 0))


def change_marks(connection: Connection, month: str) -> list[tuple[int, str | None]]:
    """The marks of ``month``: (seq, desa or None)."""
    query = select(_C.c.seq, _C.c.village).where(_C.c.month == month)
    return [(seq, village) for seq, village in connection.execute(query)]


LATEST_KINDS = ("haz", "waz", "whz", "muac", "hb", "bp", "glucose")
SEEN_KINDS = ("weight", "bp", "glucose", "anc")


def month_people(
    connection: Connection, month: str, villages: Sequence[str] | None = None
) -> list[Any]:
    """One row per person (of ``villages``, if given) with events in ``month``: their birth date
    and cell; the latest value of each of LATEST_KINDS (by day, then id; ``bp2`` the diastolic);
    ``n_<kind>``, how many events of each of SEEN_KINDS; ``home_visits``, how many.  Events of
    people the facts do not hold are left out."""
    kinds = sorted({*LATEST_KINDS, *SEEN_KINDS, "home-visit"})
    where = [_E.c.month == month, _E.c.kind.in_(kinds)]
    if villages is not None:  # by person and day (ix_ind_event_patient_day)
        where += [
            _E.c.patient_id.in_(_people_of(villages)),
            _E.c.day >= f"{month}-01",
            _E.c.day <= f"{month}-31",
        ]
    newest = func.row_number().over(
        partition_by=(_E.c.patient_id, _E.c.kind), order_by=(_E.c.day.desc(), _E.c.res_id.desc())
    )
    ranked = (
        select(_E.c.patient_id, _E.c.kind, _E.c.value, _E.c.value2, newest.label("n"))
        .where(*where)
        .subquery()
    )

    def latest(kind: str, column: str = "value") -> Any:
        return func.max(case(((ranked.c.kind == kind) & (ranked.c.n == 1), ranked.c[column])))

    def how_many(kind: str) -> Any:
        return func.sum(case((ranked.c.kind == kind, 1), else_=0))

    person = (_P.c.patient_id, _P.c.birth_date, _P.c.village, _P.c.posyandu)
    query = (
        select(
            *person,
            *(latest(kind).label(kind) for kind in LATEST_KINDS),
            latest("bp", "value2").label("bp2"),
            *(how_many(kind).label(f"n_{kind}") for kind in SEEN_KINDS),
            how_many("home-visit").label("home_visits"),
        )
        .select_from(ranked.join(_P, _P.c.patient_id == ranked.c.patient_id))
        .group_by(*person)
    )
    return list(connection.execute(query))


def _people_of(villages: Sequence[str]) -> Any:
    """The ids of the people whose home desa is one of ``villages`` (a subquery)."""
    return select(_P.c.patient_id).where(_P.c.village.in_(villages))


def registered(
    connection: Connection,
    children_born: tuple[str, str],
    adults_born_by: str,
    villages: Sequence[str] | None = None,
) -> list[Any]:
    """Per cell (village, posyandu): ``children``, those born after ``children_born[0]`` and by
    ``children_born[1]``; ``adults``, those born by ``adults_born_by`` (ISO dates)."""
    born = _P.c.birth_date
    child = (born > children_born[0]) & (born <= children_born[1])
    query = select(
        _P.c.village,
        _P.c.posyandu,
        func.sum(case((child, 1), else_=0)).label("children"),
        func.sum(case((born <= adults_born_by, 1), else_=0)).label("adults"),
    ).group_by(_P.c.village, _P.c.posyandu)
    if villages is not None:
        query = query.where(_P.c.village.in_(villages))
    return list(connection.execute(query))


def antenatal(
    connection: Connection, month: str, window: tuple[str, str], villages: Sequence[str] | None
) -> list[Any]:
    """Per woman with an antenatal visit in ``month``: ``visits``, the days with one within
    ``window`` (first and last day), and ``first``, the earliest of them."""
    attending = select(_E.c.patient_id).where(_E.c.month == month, _E.c.kind == "anc")
    if villages is not None:
        attending = attending.where(_E.c.patient_id.in_(_people_of(villages)))
    query = (
        select(
            _E.c.patient_id,
            func.count(_E.c.day.distinct()).label("visits"),
            func.min(_E.c.day).label("first"),
        )
        .where(
            _E.c.kind == "anc",
            _E.c.day >= window[0],
            _E.c.day <= window[1],
            _E.c.patient_id.in_(attending),
        )
        .group_by(_E.c.patient_id)
    )
    return list(connection.execute(query))


def store_summary(
    connection: Connection,
    month: str,
    rows: list[dict[str, Any]],
    villages: Sequence[str] | None,
    marks: Sequence[int],
) -> None:
    """Replace a month's summary (or that of ``villages``) and forget the changes it took in
    (``marks``)."""
    where = _S.c.month == month
    if villages is not None:
        where &= _S.c.village.in_(villages)
    connection.execute(delete(_S).where(where))
    if rows:
        connection.execute(insert(_S), [{"month": month, **row} for row in rows])
    if villages is None:
        connection.execute(delete(_M).where(_M.c.month == month))
        connection.execute(insert(_M).values(month=month, computed_at=datetime.now(UTC)))
    for start in range(0, len(marks), 500):
        connection.execute(delete(_C).where(_C.c.seq.in_(marks[start : start + 500])))


def summed(
    connection: Connection,
    months: Sequence[str],
    group: str,
    villages: Sequence[str] | None = None,
    posyandu: Sequence[str] | None = None,
) -> list[Any]:
    """Sums per (month, ``group`` key, indicator); ``group``: village, posyandu, cell or none.

    ``villages`` / ``posyandu`` keep only those cells.
    """
    keys: list[Any] = [_S.c.month, _S.c.indicator]
    if group in ("village", "cell"):
        keys.append(_S.c.village)
    if group in ("posyandu", "cell"):
        keys.append(_S.c.posyandu)
    query = select(
        *keys,
        func.sum(_S.c.numerator).label("numerator"),
        func.sum(_S.c.denominator).label("denominator"),
    ).where(_S.c.month.in_(months))
    if villages is not None:
        query = query.where(_S.c.village.in_(villages))
    if posyandu is not None:
        query = query.where(_S.c.posyandu.in_(posyandu))
    return list(connection.execute(query.group_by(*keys)))


# A loose index scan: one seek per month on ix_ind_event_month_kind, not a DISTINCT over every
# event (a million rows and more in a district).
_MONTHS = text(
    """
    WITH RECURSIVE found(month) AS (
        SELECT min(month) FROM ind_event
        UNION ALL
        SELECT (SELECT min(month) FROM ind_event WHERE month > found.month)
        FROM found WHERE found.month IS NOT NULL
    )
    SELECT month FROM found WHERE month IS NOT NULL
    """
)


def months_with_data(connection: Connection) -> list[str]:
    return sorted(connection.scalars(_MONTHS), reverse=True)


def facilities(connection: Connection) -> list[Any]:
    return list(connection.execute(select(_F)))


def areas(connection: Connection) -> list[Any]:
    return list(connection.execute(select(_A)))


def people_of(connection: Connection, posyandu: str) -> list[Any]:
    return list(connection.execute(select(_P).where(_P.c.posyandu == posyandu)))


def latest_zscores(connection: Connection, patients: Sequence[str], until: str) -> list[Any]:
    """Each z-score event up to ``until`` (a day) of ``patients``."""
    return list(
        connection.execute(
            select(_E.c.patient_id, _E.c.kind, _E.c.day, _E.c.value, _E.c.res_id).where(
                _E.c.patient_id.in_(patients),
                _E.c.kind.in_(("haz", "waz", "whz")),
                _E.c.day <= until,
            )
        )
    )
