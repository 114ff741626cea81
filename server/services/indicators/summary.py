"""Counting a month: the numerator and denominator of every indicator per desa and Posyandu.

A person counts once per indicator, in the cell of their home desa and the Posyandu that saw
them last; a measurement counts by the person's latest one of the month.  The result is kept
(``ind_summary``) until a write marks the month stale; then the next reader recomputes it.
docs/indicators.md defines each indicator.
"""

from __future__ import annotations

import calendar
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine

from server.fhir.growth import age_in_days
from server.services.indicators import catalogue as cat
from server.storage import indicators as store

Cell = tuple[str, str]  # (desa code, Posyandu id or "")
_UNDER_FIVE_DAYS = 1827  # WHO: z-scores while age in days / 30.4375 < 60
_KINDS = ("weight", "haz", "waz", "whz", "muac", "hb", "bp", "glucose", "anc", "home-visit")


def refresh(engine: Engine, months: Sequence[str]) -> None:
    """Recount those of ``months`` that are stale, each in its own transaction: the whole month
    if it was never counted, else only the desa whose facts changed since."""
    with engine.connect() as connection:
        todo = store.stale(connection, months)
    for month in todo:
        with engine.connect() as connection:
            writing = connection.execution_options(ilp_write=True)  # SQLite: BEGIN IMMEDIATE
            with writing.begin():
                _recount(writing, month)


def _recount(connection: Any, month: str) -> None:
    store.lock_summary(connection, month)  # a concurrent recount may have done it meanwhile
    marks = store.change_marks(connection, month)
    whole = month not in store.computed_months(connection)
    if not whole and not marks:
        return
    villages = None if whole or any(v is None for _, v in marks) else sorted({v for _, v in marks})
    people = store.persons(connection, villages)
    rows = count_month(connection, month, people, villages)
    store.store_summary(connection, month, rows, villages, [seq for seq, _ in marks])


def is_month(text: str) -> bool:
    """Whether ``text`` is a calendar month, YYYY-MM."""
    digits = text[:4] + text[5:]
    return len(text) == 7 and text[4] == "-" and digits.isdigit() and 1 <= int(text[5:]) <= 12


def under_five(born: date, on: date) -> bool:
    """Under five on ``on`` as WHO counts it (z-scores while age in days / 30.4375 < 60)."""
    return born <= on and age_in_days(born, on) < _UNDER_FIVE_DAYS


def month_end(month: str) -> date:
    year, number = int(month[:4]), int(month[5:7])
    return date(year, number, calendar.monthrange(year, number)[1])


def count_month(
    connection: Any, month: str, people: Sequence[Any], villages: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The summary rows of ``month``: one per cell and indicator with anything to count.

    ``people`` are those of ``villages`` (None: everyone).
    """
    end = month_end(month)
    cell: dict[str, Cell] = {}
    children: set[str] = set()
    adults: set[str] = set()
    for person in people:
        cell[person.patient_id] = (person.village, person.posyandu or "")
        if person.birth_date is None:
            continue
        born = date.fromisoformat(person.birth_date)
        if born > end:
            continue
        if under_five(born, end):
            children.add(person.patient_id)
        if _years(born, end) >= cat.ADULT_YEARS:
            adults.add(person.patient_id)
    latest, seen, home_visits = _month_events(connection, month, cell, villages)
    anc_counts, first_anc = _pregnancies(connection, end, cell, villages)

    numerators: dict[tuple[Cell, str], int] = Counter()
    denominators: dict[tuple[Cell, str], int] = Counter()

    def count(code: str, patient: str, hit: bool) -> None:
        key = (cell[patient], code)
        denominators[key] += 1
        if hit:
            numerators[key] += 1

    for patient in children:
        count("balita-ditimbang", patient, "weight" in seen[patient])
    for patient in adults:
        count("skrining-hipertensi", patient, "bp" in seen[patient])
        count("skrining-diabetes", patient, "glucose" in seen[patient])
    for patient in seen:  # seen holds latest's people, and those with only antenatal visits
        kinds = latest.get(patient, {})
        if "haz" in kinds:
            z = kinds["haz"][0]
            count("stunting", patient, z < cat.STUNTED)
            count("stunting-berat", patient, z < cat.SEVERELY_STUNTED)
        if "whz" in kinds:
            count("wasting", patient, kinds["whz"][0] < cat.WASTED)
            count("overweight", patient, kinds["whz"][0] > cat.OVERWEIGHT)
        if "waz" in kinds:
            count("underweight", patient, kinds["waz"][0] < cat.UNDERWEIGHT)
        pregnant = "anc" in seen[patient]
        if pregnant and "muac" in kinds:
            count("kek", patient, kinds["muac"][0] < cat.LILA_KEK_CM)
        if pregnant and "hb" in kinds:
            count("anemia-bumil", patient, kinds["hb"][0] < cat.HB_ANAEMIA_G_DL)
        if "bp" in kinds:
            systolic, diastolic = kinds["bp"]
            high = (systolic or 0) >= cat.SYSTOLIC_HIGH or (diastolic or 0) >= cat.DIASTOLIC_HIGH
            count("hipertensi", patient, high)
        if "glucose" in kinds:
            count("diabetes", patient, kinds["glucose"][0] >= cat.GLUCOSE_HIGH_MG_DL)
        if pregnant:
            visits = anc_counts.get(patient, 0)
            count("k1", patient, first_anc.get(patient, "")[:7] == month)
            count("k4", patient, visits >= 4)
            count("k6", patient, visits >= 6)

    rows = [
        {
            "village": place[0],
            "posyandu": place[1],
            "indicator": code,
            "numerator": numerators.get((place, code), 0),
            "denominator": total,
        }
        for (place, code), total in denominators.items()
    ]
    rows.extend(
        {
            "village": place[0],
            "posyandu": place[1],
            "indicator": "kunjungan-rumah",
            "numerator": visits,
            "denominator": None,
        }
        for place, visits in home_visits.items()
    )
    return rows


def _month_events(
    connection: Any, month: str, cell: dict[str, Cell], villages: Sequence[str] | None
) -> tuple[dict[str, dict[str, tuple[Any, Any]]], dict[str, set[str]], Counter[Cell]]:
    """Per person: the latest value of each kind, the kinds seen; home visits per cell."""
    latest_at: dict[tuple[str, str], tuple[str, str]] = {}
    latest: dict[str, dict[str, tuple[Any, Any]]] = defaultdict(dict)
    seen: dict[str, set[str]] = defaultdict(set)
    home_visits: Counter[Cell] = Counter()
    for row in store.events_of(connection, [month], _KINDS, villages):
        if row.patient_id not in cell:  # an event of a Patient this server does not hold
            continue
        if row.kind == "home-visit":
            home_visits[cell[row.patient_id]] += 1
            continue
        seen[row.patient_id].add(row.kind)
        key = (row.patient_id, row.kind)
        order = (row.day, row.res_id)
        if row.kind != "anc" and (key not in latest_at or order > latest_at[key]):
            latest_at[key] = order
            latest[row.patient_id][row.kind] = (row.value, row.value2)
    return latest, seen, home_visits


def _pregnancies(
    connection: Any, end: date, cell: dict[str, Cell], villages: Sequence[str] | None
) -> tuple[dict[str, int], dict[str, str]]:
    """ANC visits of the pregnancy (those of the last 280 days) and the first one's day."""
    start = end - timedelta(days=cat.ANC_WINDOW_DAYS - 1)
    months = sorted({(start + timedelta(days=d)).isoformat()[:7] for d in range(0, 281, 28)})
    visits: dict[str, set[str]] = defaultdict(set)
    for row in store.events_of(connection, months + [end.isoformat()[:7]], ("anc",), villages):
        if row.patient_id in cell and start.isoformat() <= row.day <= end.isoformat():
            visits[row.patient_id].add(row.day)
    return (
        {patient: len(days) for patient, days in visits.items()},
        {patient: min(days) for patient, days in visits.items()},
    )


def _years(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))
