"""Counting a month: the numerator and denominator of every indicator per desa and Posyandu.

A person counts once per indicator, in the cell of their home desa and the Posyandu that saw
them last; a measurement counts by the person's latest one of the month.  The result is kept
(``ind_summary``); a write marks the (month, desa) pairs it changed and the next reader recounts
those desa (``refresh``), while changes of who is registered where are applied in place by the
writer (``registration``, ``recorder.py``).  docs/indicators.md defines each indicator.
"""

from __future__ import annotations

import calendar
from collections import Counter
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine

from server.fhir.growth import age_in_days
from server.services.indicators import catalogue as cat
from server.storage import indicators as store

Cell = tuple[str, str]  # (desa code, Posyandu id or "")
_UNDER_FIVE_DAYS = 1827  # WHO: z-scores while age in days / 30.4375 < 60


def refresh(engine: Engine, months: Sequence[str]) -> list[str]:
    """Recount those of ``months`` that are stale, each in its own transaction: the whole month
    if it was never counted, else only the desa whose facts changed since.  Returns them."""
    with engine.connect() as connection:
        todo = store.stale(connection, months)
    for month in todo:
        with engine.connect() as connection:
            writing = connection.execution_options(ilp_write=True)  # SQLite: BEGIN IMMEDIATE
            with writing.begin():
                _recount(writing, month)
    return todo


def _recount(connection: Any, month: str) -> None:
    if month not in store.computed_months(connection):  # once counted, always counted
        store.lock_people(connection, shared=False)
    store.lock_summary(connection, month)  # a concurrent recount may have done it meanwhile
    marks = store.change_marks(connection, month)
    whole = month not in store.computed_months(connection)
    if not whole and not marks:
        return
    everywhere = whole or any(village is None for _, village in marks)
    villages = None if everywhere else sorted({v for _, v in marks if v is not None})
    rows = count_month(connection, month, villages)
    store.store_summary(connection, month, rows, villages, [seq for seq, _ in marks])


def is_month(text: str) -> bool:
    """Whether ``text`` is a calendar month, YYYY-MM."""
    digits = text[:4] + text[5:]
    return len(text) == 7 and text[4] == "-" and digits.isdigit() and 1 <= int(text[5:]) <= 12


def under_five(born: date, on: date) -> bool:
    """Under five on ``on`` as WHO counts it (z-scores while age in days / 30.4375 < 60)."""
    return born <= on and age_in_days(born, on) < _UNDER_FIVE_DAYS


def month_range(month: str, count: int) -> list[str]:
    """The ``count`` months ending at ``month``, oldest first."""
    year, number = int(month[:4]), int(month[5:7])
    found = []
    for _ in range(count):
        found.append(f"{year:04d}-{number:02d}")
        year, number = (year, number - 1) if number > 1 else (year - 1, 12)
    return found[::-1]


def month_end(month: str) -> date:
    year, number = int(month[:4]), int(month[5:7])
    return date(year, number, calendar.monthrange(year, number)[1])


def registration(month: str, birth_date: str | None, cell: Cell) -> Counter[tuple[Cell, str]]:
    """What a person born on ``birth_date`` adds to ``month``'s denominators of registered
    people in ``cell``, as count_month counts them (the rest depends on their events)."""
    child, adult = _registered_as(birth_date, _born(month))
    found: Counter[tuple[Cell, str]] = Counter()
    if child:
        found[(cell, "balita-ditimbang")] = 1
    if adult:
        found[(cell, "skrining-hipertensi")] = found[(cell, "skrining-diabetes")] = 1
    return found


def _registered_as(birth_date: str | None, born: tuple[str, str, str]) -> tuple[bool, bool]:
    """Whether someone born on ``birth_date`` counts as a child under five, and as an adult,
    with the cut-offs of _born()."""
    if birth_date is None:
        return False, False
    child_after, until, adult_by = born
    return child_after < birth_date <= until, birth_date <= adult_by


def _born(month: str) -> tuple[str, str, str]:
    """ISO birth dates that make a child under five at the end of ``month`` (after the first, by
    the second; as under_five()) and an adult of 15 or more (by the third)."""
    end = month_end(month)
    child_after = (end - timedelta(days=_UNDER_FIVE_DAYS)).isoformat()
    return (
        child_after,
        end.isoformat(),
        f"{end.year - cat.ADULT_YEARS:04d}-{month[5:]}-{end.day:02d}",
    )


def count_month(
    connection: Any, month: str, villages: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The summary rows of ``month`` (of ``villages``; None: all): one per cell and indicator
    with anything to count."""
    born = _born(month)
    child_after, until, adult_by = born
    numerators: dict[tuple[Cell, str], int] = Counter()
    denominators: dict[tuple[Cell, str], int] = Counter()
    home_visits: Counter[Cell] = Counter()
    for row in store.registered(connection, (child_after, until), adult_by, villages):
        place = (row.village, row.posyandu or "")
        denominators[(place, "balita-ditimbang")] += int(row.children)
        denominators[(place, "skrining-hipertensi")] += int(row.adults)
        denominators[(place, "skrining-diabetes")] += int(row.adults)
    start = date.fromisoformat(until) - timedelta(days=cat.ANC_WINDOW_DAYS - 1)
    window = (start.isoformat(), until)
    pregnancies = {r.patient_id: r for r in store.antenatal(connection, month, window, villages)}

    for person in store.month_people(connection, month, villages):
        place = (person.village, person.posyandu or "")
        home_visits[place] += int(person.home_visits)

        def count(code: str, hit: bool, place: Cell = place) -> None:
            denominators[(place, code)] += 1
            numerators[(place, code)] += hit

        child, adult = _registered_as(person.birth_date, born)
        if child and person.n_weight:
            numerators[(place, "balita-ditimbang")] += 1  # counted in by registered()
        if adult:
            numerators[(place, "skrining-hipertensi")] += person.n_bp > 0
            numerators[(place, "skrining-diabetes")] += person.n_glucose > 0
        if person.haz is not None:
            count("stunting", person.haz < cat.STUNTED)
            count("stunting-berat", person.haz < cat.SEVERELY_STUNTED)
        if person.whz is not None:
            count("wasting", person.whz < cat.WASTED)
            count("overweight", person.whz > cat.OVERWEIGHT)
        if person.waz is not None:
            count("underweight", person.waz < cat.UNDERWEIGHT)
        pregnant = person.n_anc > 0
        if pregnant and person.muac is not None:
            count("kek", person.muac < cat.LILA_KEK_CM)
        if pregnant and person.hb is not None:
            count("anemia-bumil", person.hb < cat.HB_ANAEMIA_G_DL)
        if person.n_bp:
            high = (person.bp or 0) >= cat.SYSTOLIC_HIGH or (person.bp2 or 0) >= cat.DIASTOLIC_HIGH
            count("hipertensi", high)
        if person.glucose is not None:
            count("diabetes", person.glucose >= cat.GLUCOSE_HIGH_MG_DL)
        if pregnant:
            pregnancy = pregnancies.get(person.patient_id)
            visits = int(pregnancy.visits) if pregnancy else 0
            count("k1", pregnancy is not None and pregnancy.first[:7] == month)
            count("k4", visits >= 4)
            count("k6", visits >= 6)

    rows = [
        {
            "village": place[0],
            "posyandu": place[1],
            "indicator": code,
            "numerator": numerators.get((place, code), 0),
            "denominator": total,
        }
        for (place, code), total in denominators.items()
        if total
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
        if visits
    )
    return rows
