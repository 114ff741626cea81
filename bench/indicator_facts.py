"""Indicator facts at a district's scale, inserted in bulk (for bench/dashboard.py --children).

Loading 100,000 children and a million Observations through the write path takes hours on this
machine (about 155 resources a second with the facts and the z-score derivation), so this fills
``ind_person`` and ``ind_event`` directly with what that path would have written for such a
district: children under five weighed in some months and measured in fewer, each measurement
followed by its derived z-scores (weight-for-age; length/height-for-age, weight-for-length/height
and BMI-for-age on days with a length), pregnant women with antenatal visits, LILA and Hb, adults
screened for blood pressure and glucose.  The rows have the write path's shape (kinds, units, ids
of the derived Observations); the values are drawn from distributions near Indonesia's (about a
fifth stunted).  The dashboard reads only these tables and the health network, which the bench
loads through the write path.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

PREFIX = "bulk-"  # ids of the bulk facts: never those of a stored resource
_CHUNK = 20_000


@dataclass
class Filled:
    children: int = 0
    women: int = 0
    adults: int = 0
    measurements: int = 0  # measurement Observations (weight, length/height, LILA, Hb, BP, glucose)
    derived: int = 0  # derived z-score Observations
    visits: int = 0  # antenatal Encounters


def fill(
    engine: sa.Engine,
    cells: Sequence[tuple[str, str]],
    months: Sequence[str],
    children: int,
    seed: int = 1,
) -> Filled:
    """Insert ``children`` children (and a tenth as many pregnant women, half as many adults)
    spread over ``cells`` (desa, Posyandu) with events in ``months`` (YYYY-MM, oldest first)."""
    rng = random.Random(seed)
    filled = Filled()
    people: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    last_day = date.fromisoformat(f"{months[-1]}-28")
    with engine.begin() as connection:

        def flush(force: bool = False) -> None:
            for rows, table in ((people, "ind_person"), (events, "ind_event")):
                if rows and (force or len(rows) >= _CHUNK):
                    columns = list(rows[0])
                    statement = sa.insert(sa.table(table, *map(sa.column, columns)))
                    connection.execute(statement, rows)
                    rows.clear()

        for number in range(children):
            village, posyandu = cells[number % len(cells)]
            born = last_day - timedelta(days=rng.randint(0, 59 * 30))
            pid = f"{PREFIX}child-{number}"
            people.append(_person(pid, rng.choice("MF"), born, village, posyandu))
            filled.children += 1
            for month in months:
                day = date.fromisoformat(f"{month}-{rng.randint(1, 28):02d}")
                if day <= born or rng.random() > 0.65:
                    continue
                events.extend(_child_day(rng, pid, day, posyandu, rng.random() < 0.45, filled))
            flush()
        for number in range(children // 10):
            village, posyandu = cells[number % len(cells)]
            pid = f"{PREFIX}ibu-{number}"
            born = last_day - timedelta(days=rng.randint(20 * 365, 40 * 365))
            people.append(_person(pid, "F", born, village, posyandu))
            filled.women += 1
            events.extend(_pregnancy(rng, pid, last_day, posyandu, filled))
            flush()
        for number in range(children // 2):
            village, posyandu = cells[number % len(cells)]
            pid = f"{PREFIX}dewasa-{number}"
            born = last_day - timedelta(days=rng.randint(15 * 365, 80 * 365))
            people.append(_person(pid, rng.choice("MF"), born, village, None))
            filled.adults += 1
            if rng.random() < 0.4:
                day = date.fromisoformat(f"{rng.choice(months)}-{rng.randint(1, 28):02d}")
                events.extend(_screening(rng, pid, day, posyandu, filled))
            flush()
        flush(force=True)
    return filled


def _person(pid: str, sex: str, born: date, village: str, posyandu: str | None) -> dict[str, Any]:
    return {
        "patient_id": pid,
        "name": pid,
        "sex": {"M": "male", "F": "female"}[sex],
        "birth_date": born.isoformat(),
        "village": village,
        "posyandu": posyandu,
        "posyandu_day": None,
    }


def _event(
    res_type: str,
    res_id: str,
    kind: str,
    pid: str,
    day: date,
    value: float | None,
    facility: str | None,
    value2: float | None = None,
) -> dict[str, Any]:
    return {
        "res_type": res_type,
        "res_id": res_id,
        "kind": kind,
        "patient_id": pid,
        "day": day.isoformat(),
        "month": day.isoformat()[:7],
        "value": value,
        "value2": value2,
        "facility": facility,
    }


def _child_day(
    rng: random.Random, pid: str, day: date, posyandu: str, measured: bool, filled: Filled
) -> Iterator[dict[str, Any]]:
    key = f"{pid}-{day.isoformat()}"
    yield _event(
        "Observation", f"{PREFIX}w-{key}", "weight", pid, day, rng.uniform(3, 18), posyandu
    )
    yield _event(
        "Observation", f"{PREFIX}zscore-wfa-{key}", "waz", pid, day, rng.gauss(-0.9, 1.1), posyandu
    )
    filled.measurements += 1
    filled.derived += 1
    if not measured:
        return
    yield _event(
        "Observation", f"{PREFIX}h-{key}", "height", pid, day, rng.uniform(48, 110), posyandu, 1.0
    )
    for code, kind, mean in (("lhfa", "haz", -1.2), ("wflh", "whz", -0.4), ("bfa", "baz", -0.2)):
        value = rng.gauss(mean, 1.1)
        yield _event("Observation", f"{PREFIX}zscore-{code}-{key}", kind, pid, day, value, posyandu)
    filled.measurements += 1
    filled.derived += 3


def _pregnancy(
    rng: random.Random, pid: str, last_day: date, posyandu: str, filled: Filled
) -> Iterator[dict[str, Any]]:
    first = last_day - timedelta(days=rng.randint(0, 250))
    for visit in range(rng.randint(1, 7)):
        day = first + timedelta(days=35 * visit)
        if day > last_day:
            break
        yield _event("Encounter", f"{PREFIX}anc-{pid}-{visit}", "anc", pid, day, None, posyandu)
        filled.visits += 1
        if visit == 0:
            yield _event(
                "Observation", f"{PREFIX}lila-{pid}", "muac", pid, day, rng.gauss(25, 2.5), posyandu
            )
            yield _event(
                "Observation", f"{PREFIX}hb-{pid}", "hb", pid, day, rng.gauss(11.5, 1.2), posyandu
            )
            filled.measurements += 2


def _screening(
    rng: random.Random, pid: str, day: date, posyandu: str, filled: Filled
) -> Iterator[dict[str, Any]]:
    systolic = rng.gauss(128, 18)
    yield _event(
        "Observation", f"{PREFIX}bp-{pid}", "bp", pid, day, systolic, posyandu, systolic * 0.65
    )
    filled.measurements += 1
    if rng.random() < 0.5:
        yield _event(
            "Observation", f"{PREFIX}glu-{pid}", "glucose", pid, day, rng.gauss(140, 45), posyandu
        )
        filled.measurements += 1
