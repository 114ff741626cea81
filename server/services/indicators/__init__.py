"""The PWS indicators (issue 9, docs/indicators.md): per area and month, for the dashboard
(``http/dashboard.py``) and as FHIR MeasureReports (``measures.py``).

Facts are kept with every write (``recorder.py``), z-scores derived from measurements
(``derive.py``), months summed when first read after a change (``summary.py``); this module
answers questions in terms of areas (``report.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from server.errors import NotFound
from server.services.facilities import caller_of
from server.services.indicators import catalogue, summary
from server.services.indicators.report import (
    LEVELS,
    Area,
    AreaRow,
    ChildAtRisk,
    Level,
    Overview,
    Value,
)
from server.services.indicators.summary import month_range
from server.storage import indicators as store

if TYPE_CHECKING:  # resources records its writes here: import the context only for types
    from server.services.context import ServiceContext

__all__ = [
    "LEVELS",
    "Area",
    "AreaRow",
    "ChildAtRisk",
    "Level",
    "Overview",
    "Value",
    "catalogue",
    "children_at_risk",
    "count_all",
    "find_area",
    "month_range",
    "months",
    "overview",
    "puskesmas",
    "trend",
]


def months(context: ServiceContext) -> list[str]:
    """Months holding data, newest first (YYYY-MM)."""
    with context.engine.connect() as connection:
        return store.months_with_data(connection)


def count_all(context: ServiceContext) -> list[str]:
    """Count now every month holding data that is stale (after a bulk load); returns them."""
    return summary.refresh(context.engine, months(context))


def overview(
    context: ServiceContext, month: str, level: Level = "desa", within: Area | None = None
) -> Overview:
    """``month``'s values for every area of ``level`` (within ``within``), with their total."""
    _check_month(month)
    summary.refresh(context.engine, [month])
    with context.engine.connect() as connection:
        network = _Network.read(connection)
        villages, posyandu = network.cells_of(within)
        group = {"desa": "village", "posyandu": "posyandu"}.get(level, "cell")
        rows = store.summed(connection, [month], group, villages, posyandu)
    grouped: dict[Area, dict[str, Value]] = defaultdict(dict)
    for row in rows:
        for area in network.areas_of(level, row):
            values = grouped[area]
            values[row.indicator] = values.get(row.indicator, Value()) + _value(row)
    table = sorted((AreaRow(a, v) for a, v in grouped.items()), key=lambda r: r.area.name)
    return Overview(month, level, table, _total(within, network, table))


def trend(
    context: ServiceContext, month: str, area: Area | None = None, count: int = 12
) -> dict[str, list[tuple[str, Value]]]:
    """Every indicator's value in ``area`` (None: all) for the ``count`` months to ``month``."""
    _check_month(month)
    span = month_range(month, count)
    with context.engine.connect() as connection:
        have = set(store.months_with_data(connection))
    # a month before the first record (or after the last) is a gap, not 0 % of those registered
    counted = [m for m in span if m in have]
    summary.refresh(context.engine, counted)
    with context.engine.connect() as connection:
        villages, posyandu = _Network.read(connection).cells_of(area)
        rows = store.summed(connection, counted, "none", villages, posyandu)
    found = {(row.month, row.indicator): _value(row) for row in rows}
    return {
        i.code: [(m, found.get((m, i.code), Value(0, None if i.is_count else 0))) for m in span]
        for i in catalogue.INDICATORS
    }


def puskesmas(context: ServiceContext) -> list[Area]:
    with context.engine.connect() as connection:
        network = _Network.read(connection)
    return sorted(
        (network.facility_area(org) for org in network.of_kind("puskesmas")),
        key=lambda a: a.name,
    )


def find_area(context: ServiceContext, level: Level, code: str) -> Area | None:
    with context.engine.connect() as connection:
        return _Network.read(connection).find(level, code)


def children_at_risk(context: ServiceContext, posyandu: str, month: str) -> list[ChildAtRisk]:
    """Children under five last seen at ``posyandu`` whose latest z-score up to ``month`` is
    below -2 SD (stunting, wasting or underweight), for the kader's follow-up.

    Forbidden unless the caller may read Patients and that Posyandu's Organization.
    """
    from server.services import resources

    _check_month(month)
    end = summary.month_end(month)
    with context.unit_of_work() as uow:
        resources.read(uow, "Organization", posyandu)  # scope and facility rule
        caller_of(uow).require("Patient", "r")
        people = [
            p
            for p in store.people_of(uow.connection, posyandu)
            if p.birth_date and summary.under_five(date.fromisoformat(p.birth_date), end)
        ]
        scores = store.latest_zscores(
            uow.connection, [p.patient_id for p in people], end.isoformat()
        )
    latest: dict[str, dict[str, Any]] = defaultdict(dict)
    for row in sorted(scores, key=lambda r: (r.day, r.res_id)):
        latest[row.patient_id][row.kind] = row
    found = []
    for person in people:
        mine = latest.get(person.patient_id, {})
        z = {kind: row.value for kind, row in mine.items()}
        reasons = tuple(
            code
            for code, kind, limit in (
                ("stunting", "haz", catalogue.STUNTED),
                ("wasting", "whz", catalogue.WASTED),
                ("underweight", "waz", catalogue.UNDERWEIGHT),
            )
            if kind in z and z[kind] < limit
        )
        if reasons:
            found.append(
                ChildAtRisk(
                    person.patient_id,
                    person.name,
                    person.sex,
                    person.birth_date,
                    max(row.day for row in mine.values()),
                    z.get("haz"),
                    z.get("waz"),
                    z.get("whz"),
                    reasons,
                )
            )
    return sorted(found, key=lambda c: (c.name, c.patient_id))


class _Network:
    """The district's areas and facilities, to name areas and group cells."""

    def __init__(self, areas: Iterable[Any], facilities: Iterable[Any]) -> None:
        self.names = {a.code: (a.name, a.location) for a in areas}
        self.facilities = {f.org_id: f for f in facilities}
        self._puskesmas_of_village: dict[str, str] = {}
        for facility in self.facilities.values():
            top = self.puskesmas_of(facility.org_id)
            if facility.village and top and facility.kind != "puskesmas":
                self._puskesmas_of_village.setdefault(facility.village, top)
        for facility in self.facilities.values():  # a desa with only the Puskesmas itself
            if facility.kind == "puskesmas" and facility.village:
                self._puskesmas_of_village.setdefault(facility.village, facility.org_id)

    @classmethod
    def read(cls, connection: Any) -> _Network:
        return cls(store.areas(connection), store.facilities(connection))

    def of_kind(self, kind: str) -> list[str]:
        return [org for org, f in self.facilities.items() if f.kind == kind]

    def puskesmas_of(self, org_id: str) -> str | None:
        seen: set[str] = set()
        current: str | None = org_id
        while current is not None and current in self.facilities and current not in seen:
            seen.add(current)
            if self.facilities[current].kind == "puskesmas":
                return current
            current = self.facilities[current].parent
        return None

    def facility_area(self, org_id: str) -> Area:
        facility = self.facilities.get(org_id)
        level: Level = "puskesmas" if facility and facility.kind == "puskesmas" else "posyandu"
        name = facility.name if facility else org_id
        location = org_id if facility is not None else None
        return Area(level, org_id, name, location, facility.village if facility else None)

    def region(self, level: Level, code: str) -> Area:
        name, location = self.names.get(code, (None, None))
        parent = {"desa": code[:6], "kecamatan": code[:4]}.get(level)
        unknown = "(desa tidak diketahui)" if level == "desa" else code
        return Area(level, code, name or (unknown if not code else code), location, parent)

    def areas_of(self, level: Level, row: Any) -> list[Area]:
        if level == "desa":
            return [self.region("desa", row.village)]
        if level == "posyandu":
            if not row.posyandu:
                return [Area("posyandu", "", "(tanpa Posyandu)")]
            return [self.facility_area(row.posyandu)]
        if level in ("kecamatan", "kabupaten"):
            width = 6 if level == "kecamatan" else 4
            return [self.region(level, row.village[:width])]
        top = (self.puskesmas_of(row.posyandu) if row.posyandu else None) or (
            self._puskesmas_of_village.get(row.village)
        )
        return [self.facility_area(top)] if top else [Area("puskesmas", "", "(tanpa Puskesmas)")]

    def cells_of(self, area: Area | None) -> tuple[list[str] | None, list[str] | None]:
        """The desa codes or Posyandu ids an area's summary rows are filtered by."""
        if area is None:
            return None, None
        if area.level == "posyandu":
            return None, [area.code]
        if area.level == "desa":
            return [area.code], None
        if area.level == "puskesmas":
            return [v for v, p in self._puskesmas_of_village.items() if p == area.code], None
        width = 6 if area.level == "kecamatan" else 4
        codes = set(self.names) | set(self._puskesmas_of_village)
        return sorted(c for c in codes if len(c) == 10 and c[:width] == area.code), None

    def find(self, level: Level, code: str) -> Area | None:
        if level in ("puskesmas", "posyandu"):
            facility = self.facilities.get(code)
            if facility is None or (facility.kind or "posyandu") != level:
                return None
            return self.facility_area(code)
        if code in self.names and len(code) == {"desa": 10, "kecamatan": 6}.get(level, 4):
            return self.region(level, code)
        return None


def _value(row: Any) -> Value:
    return Value(int(row.numerator or 0), None if row.denominator is None else int(row.denominator))


def _total(within: Area | None, network: _Network, rows: Sequence[AreaRow]) -> AreaRow:
    values: dict[str, Value] = {}
    for row in rows:
        for code, value in row.values.items():
            values[code] = values.get(code, Value()) + value
    area = within or Area("kabupaten", "", "Total")
    return AreaRow(area, values)


def _check_month(month: str) -> None:
    if not summary.is_month(month):
        raise NotFound(f"{month!r} is not a month (YYYY-MM)")
