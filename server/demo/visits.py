"""A household's visits over the months of the demo: Encounters, each followed by its Observations.

Posyandu (monthly, on the Posyandu's day): under-fives are weighed and measured (weight, length or
height, head circumference, and from 6 months the mid-upper-arm circumference); mothers,
fathers and lansia have blood pressure and weight taken.  Pustu: antenatal care for pregnant
mothers (blood pressure, weight, hemoglobin) and blood-pressure follow-up of hypertensive adults.
Home visits (kunjungan rumah, class HH): the bidan desa measures stunted children every quarter.
Times carry the province's UTC offset, as a device in the field records them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from server.demo import codes, growth
from server.demo.codes import MEASURES, concept, reference, sys_ids
from server.demo.facilities import DesaSite, Facility
from server.demo.patients import patient_id
from server.demo.people import PREGNANCY_DAYS, Household, Person

_KINDS = {  # kind -> (class, type text, first hour, latest start in minutes, duration)
    "posyandu": (codes.AMBULATORY, "Kunjungan Posyandu", 8, 210, 10),
    "pustu": (codes.AMBULATORY, "Kunjungan Pustu", 8, 240, 15),
    "rumah": (codes.HOME_HEALTH, "Kunjungan rumah", 13, 150, 30),
}


@dataclass(frozen=True)
class _Visit:
    kind: str
    day: date
    person: Person
    facility: Facility
    start: int  # minutes after midnight, local time
    bidan: str
    offset: str

    @property
    def encounter_id(self) -> str:
        return f"enc-{self.person.key}-{self.day:%Y%m%d}-{self.kind}"

    def at(self, minutes: int) -> str:
        total = self.start + minutes
        return f"{self.day.isoformat()}T{total // 60:02d}:{total % 60:02d}:00{self.offset}"


def visit_resources(
    household: Household,
    site: DesaSite,
    months: list[date],
    end: date,
    seed: int,
    offset: str,
) -> Iterator[dict[str, Any]]:
    """Every visit of the household in ``months`` (first days of months), up to ``end``."""
    visits = _HouseholdVisits(household, site, end, seed, offset)
    posyandu_day = site.posyandu_days[household.posyandu]
    for number, month in enumerate(months):
        day = month.replace(day=posyandu_day)
        if day > end:
            break
        yield from visits.posyandu(day)
        pustu_day = month.replace(day=min(posyandu_day + 7, 28))
        if pustu_day <= end:
            yield from visits.pustu(pustu_day, lab=number % 3 == 0)
        home_day = month.replace(day=min(posyandu_day + 3, 28))
        if number % 3 == household.number % 3 and home_day <= end:
            yield from visits.home(home_day)


class _HouseholdVisits:
    """The lasting health of each member and the visits of one month, from one seeded rng."""

    def __init__(
        self, household: Household, site: DesaSite, end: date, seed: int, offset: str
    ) -> None:
        self._rng = random.Random(f"{seed}:visits:{household.desa.code}:{household.number}")
        self._household, self._site, self._offset = household, site, offset
        self._children = {
            p.key: growth.draw_child(self._rng) for p in household.members if p.is_child
        }
        self._adults = {
            p.key: growth.draw_adult(self._rng, p.gender, (end - p.birth_date).days / 365.25)
            for p in household.members
            if not p.is_child
        }

    def posyandu(self, day: date) -> Iterator[dict[str, Any]]:
        rng, household = self._rng, self._household
        facility = self._site.posyandu[household.posyandu]
        attended = False
        # Children first: a mother who brought a child is more likely to be measured too.
        for person in sorted(household.members, key=lambda p: not p.is_child):
            if person.is_child:
                age = (day - person.birth_date).days
                if age < 7 or rng.random() >= 0.8:
                    continue
                attended = True
                values = growth.child_measures(self._children[person.key], person.gender, age, rng)
                yield from _child_visit(self._visit("posyandu", person, day, facility), values, age)
            elif rng.random() < _adult_attendance(person.role, attended):
                found = self._visit("posyandu", person, day, facility)
                yield from _adult_visit(found, self._adults[person.key], rng, household.due_date)

    def pustu(self, day: date, lab: bool) -> Iterator[dict[str, Any]]:
        due = self._household.due_date
        for person in self._household.members:
            if person.is_child:
                continue
            health = self._adults[person.key]
            antenatal = person.role == "ibu" and _pregnant_on(due, day, weeks_from=8)
            if antenatal or (health.hypertensive and self._rng.random() < 0.4):
                found = self._visit("pustu", person, day, self._site.pustu)
                yield from _adult_visit(found, health, self._rng, due, lab=lab)

    def home(self, day: date) -> Iterator[dict[str, Any]]:
        for person in self._household.members:
            child = self._children.get(person.key)
            age = (day - person.birth_date).days
            if child is not None and child.stunted and age >= 7:
                values = growth.child_measures(child, person.gender, age, self._rng)
                found = self._visit("rumah", person, day, self._site.pustu)
                yield from _child_visit(found, values, age, only=("29463-7", "8302-2"))

    def _visit(self, kind: str, person: Person, day: date, facility: Facility) -> _Visit:
        _, _, hour, latest, _ = _KINDS[kind]
        start = hour * 60 + self._rng.randrange(latest)
        return _Visit(kind, day, person, facility, start, self._site.bidan, self._offset)


def _adult_attendance(role: str, came_with_child: bool) -> float:
    if role == "ibu":
        return 0.5 if came_with_child else 0.1
    return 0.45 if role == "lansia" else 0.25


def _pregnant_on(due: date | None, day: date, weeks_from: int = 0) -> bool:
    if due is None:
        return False
    gestation = PREGNANCY_DAYS - (due - day).days
    return 7 * weeks_from <= gestation < PREGNANCY_DAYS


def _child_visit(
    found: _Visit, values: dict[str, float], age_days: int, only: tuple[str, ...] | None = None
) -> Iterator[dict[str, Any]]:
    yield _encounter(found)
    for code, value in values.items():
        if only is None or code in only:
            # The ILP height profile needs the position: lying (8306-3) under two years,
            # standing (8308-9) from two.
            extra = None
            if code == "8302-2":
                extra = codes.LYING_LENGTH if age_days < 730 else _STANDING_HEIGHT
            yield _quantity(found, code, value, extra=extra)


def _adult_visit(
    found: _Visit,
    health: growth.AdultHealth,
    rng: random.Random,
    due: date | None,
    lab: bool = False,
) -> Iterator[dict[str, Any]]:
    yield _encounter(found, pregnant=_pregnant_on(due, found.day) and found.person.role == "ibu")
    yield _blood_pressure(found, *growth.blood_pressure(health, rng))
    pregnant = found.person.role == "ibu" and _pregnant_on(due, found.day)
    gestation = PREGNANCY_DAYS - (due - found.day).days if pregnant and due else 0
    yield _quantity(found, "29463-7", growth.adult_weight(health, rng, gestation))
    if pregnant and found.kind == "pustu" and lab:
        yield _quantity(found, "718-7", growth.hemoglobin(health, rng), codes.LABORATORY)


def _encounter(found: _Visit, pregnant: bool = False) -> dict[str, Any]:
    encounter_class, text, _, _, minutes = _KINDS[found.kind]
    arrived, started, finished = found.at(0), found.at(2), found.at(minutes)
    stage = found.person.life_stage(found.day, pregnant)
    stage_name, klaster = codes.SIKLUS[stage]
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": found.encounter_id,
        "meta": codes.profiled("ilp-encounter"),
        "identifier": [
            {
                "system": sys_ids("encounter", found.facility.satusehat_id),
                "value": found.encounter_id,
            }
        ],
        "status": "finished",
        "statusHistory": [
            {"status": "arrived", "period": {"start": arrived, "end": started}},
            {"status": "in-progress", "period": {"start": started, "end": finished}},
            {"status": "finished", "period": {"start": finished}},
        ],
        "class": encounter_class,
        "type": [concept(codes.SIKLUS_HIDUP, stage, stage_name), {"text": text}],
        "serviceType": concept(codes.KLASTER, klaster, codes.KLASTER_NAMES[klaster]),
        "subject": reference("Patient", patient_id(found.person)),
        "participant": [
            {"type": codes.BIDAN_ATTENDER, "individual": reference("Practitioner", found.bidan)}
        ],
        "period": {"start": arrived, "end": finished},
    }
    if found.kind != "rumah":
        resource["location"] = [{"location": reference("Location", found.facility.id)}]
    resource["serviceProvider"] = reference("Organization", found.facility.id)
    return resource


# Each Observation claims the ILP profile of its measurement (docs/profiles-observations.md).
_PROFILES = {
    "29463-7": "ilp-obs-body-weight",
    "8302-2": "ilp-obs-body-height",
    "9843-4": "ilp-obs-head-circumference",
    "56072-2": "ilp-obs-muac",
    "85354-9": "ilp-obs-bp-panel",
    "718-7": "ilp-obs-hemoglobin",
}
_STANDING_HEIGHT = codes.coding(codes.LOINC, "8308-9", "Body height --standing")


def _observation(found: _Visit, code: dict[str, Any], category: list[Any]) -> dict[str, Any]:
    loinc = code["coding"][0]["code"]
    res_id = f"obs-{found.person.key}-{found.day:%Y%m%d}-{found.kind}-{loinc}"
    return {
        "resourceType": "Observation",
        "id": res_id,
        "meta": codes.profiled(_PROFILES[loinc]),
        "identifier": [
            {"system": sys_ids("observation", found.facility.satusehat_id), "value": res_id}
        ],
        "status": "final",
        "category": category,
        "code": code,
        "subject": reference("Patient", patient_id(found.person)),
        "encounter": reference("Encounter", found.encounter_id),
        "effectiveDateTime": found.at(1),
        "issued": found.at(2),
        "performer": [reference("Practitioner", found.bidan)],
    }


def _code(loinc: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    display, text, _ = MEASURES[loinc]
    value = concept(codes.LOINC, loinc, display, text=text)
    if extra is not None:
        value["coding"].append(extra)
    return value


def _ucum(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": codes.UCUM, "code": unit}


def _quantity(
    found: _Visit,
    loinc: str,
    value: float,
    category: list[Any] = codes.VITAL_SIGNS,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    resource = _observation(found, _code(loinc, extra), category)
    resource["valueQuantity"] = _ucum(value, MEASURES[loinc][2])
    return resource


def _blood_pressure(found: _Visit, systolic: int, diastolic: int) -> dict[str, Any]:
    resource = _observation(found, _code("85354-9"), codes.VITAL_SIGNS)
    resource["component"] = [
        {"code": _code("8480-6"), "valueQuantity": _ucum(systolic, "mm[Hg]")},
        {"code": _code("8462-4"), "valueQuantity": _ucum(diastolic, "mm[Hg]")},
    ]
    return resource
