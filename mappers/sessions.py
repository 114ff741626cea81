"""What every visit sheet shares: visit times with their zone, measures checked against a
plausible range, the kader or health worker as participant, the Encounter and its Observations.

The Posyandu sheets (``posyandu_*.py``) and the visit exports build on these, so that a
measure means the same thing (LOINC code, ILP profile, unit) whichever sheet it comes from.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from mappers import codes
from mappers.base import (
    Entry,
    Record,
    RecordError,
    conditional_reference,
    conditional_update,
    criteria,
    identifier_criteria,
    indonesia_today,
)
from mappers.fasilitas import facility_query
from server.demo.codes import LYING_LENGTH

_ZONES = {"WIB": "+07:00", "WITA": "+08:00", "WIT": "+09:00", "Z": "+00:00"}
_INDONESIA = {"+07:00", "+08:00", "+09:00"}
_WHEN = re.compile(
    r"^(?:(?P<iso>\d{4}-\d{2}-\d{2})|(?P<d>\d{1,2})[/-](?P<m>\d{1,2})[/-](?P<y>\d{4}))"
    r"(?:[ T](?P<hh>\d{1,2})[:.](?P<mm>\d{2})(?:[:.](?P<ss>\d{2}))?"
    r"\s*(?P<zone>WIB|WITA|WIT|Z|[+-]\d{2}:?\d{2})?)?$",
    re.IGNORECASE,
)
CORE = "http://hl7.org/fhir/StructureDefinition/"  # the R4 vital-signs profiles
# How a length or height was measured (cara_ukur): the ILP height profile needs it.
POSITION = {
    "telentang": LYING_LENGTH,
    "berdiri": codes.coding(codes.LOINC, "8308-9", "Body height --standing"),
}
KADER_ROLE = [
    {
        "coding": [
            codes.coding(codes.PARTICIPATION_TYPE, "PART", "Participation"),
            codes.coding(codes.PARTICIPANT_ROLE, "kader", "Kader kesehatan"),
        ],
        "text": "Kader kesehatan",
    }
]


@dataclass(frozen=True)
class Measure:
    """A sheet column that becomes a quantity Observation.

    ``profile`` is the ILP profile's id, a core profile's URL (``CORE``), or "" for a measure
    no profile covers yet.
    ``low``-``high`` is the plausible range after ``normalise`` (in ``unit``, UCUM); ``who``
    names the people the range is for, in the message that rejects a value.
    """

    column: str
    loinc: str
    profile: str
    low: float
    high: float
    normalise: Callable[[float], float] = float
    category: tuple[dict[str, Any], ...] = tuple(codes.VITAL_SIGNS)
    also_coded: tuple[dict[str, Any], ...] = ()  # codings after the LOINC code, always

    @property
    def unit(self) -> str:
        return codes.MEASURES[self.loinc][2]

    def value(self, record: Record, who: str) -> float:
        """The normalised value of the column; RecordError when outside the range."""
        value = self.normalise(record[self.column])
        if not self.low <= value <= self.high:
            raise RecordError(
                0, self.column, f"{record[self.column]:g} ({value:g} {self.unit}) is impossible "
                f"for {who}: expected "
                f"{self.low:g}-{self.high:g} {self.unit}",
            )  # fmt: skip
        return value


class VisitSheet:
    """What every visit sheet's mapper shares: "today" (the one impure input, fixed at
    construction so that ``map`` stays a pure function), one import rank for all rows (they
    refer only to what the registers stored), and Practitioners several rows may share."""

    shared = frozenset({"Practitioner"})  # one kader or nakes sees many people

    def __init__(self, today: date | None = None) -> None:
        self.today = today or indonesia_today()

    def rank(self, record: Record) -> int:
        return 0


def check_blood_pressure(values: list[tuple[Measure, float]]) -> None:
    """RecordError when the diastolic pressure is not below the systolic (no profile can
    check that across the two Observations SATUSEHAT takes)."""
    given = {measure.loinc: value for measure, value in values}
    systolic, diastolic = given.get("8480-6"), given.get("8462-4")
    if systolic is not None and diastolic is not None and diastolic >= systolic:
        raise RecordError(
            0, "diastolik", f"{diastolic:g} mm[Hg] is not below sistolik {systolic:g} mm[Hg]: "
            "are the columns swapped?",
        )  # fmt: skip


def grams_to_kg(value: float) -> float:
    """A weight above 100 is taken as grams (a sheet kept in grams for babies)."""
    return round(value / 1000, 3) if value > 100 else float(value)


def metres_to_cm(value: float) -> float:
    """A length below 3 is taken as metres."""
    return round(value * 100, 1) if value < 3 else float(value)


def visit_time(text: str) -> tuple[date, str]:
    """The visit's date and its FHIR dateTime: the date alone, or date, time and offset.

    ValueError with the reason when the text is not a date (and time with zone).
    """
    match = _WHEN.match(text.strip())
    if match is None:
        raise ValueError(
            f"{text!r} is not a date (YYYY-MM-DD or DD/MM/YYYY) with an optional time HH:MM "
            "and zone (WIB, WITA, WIT or +07:00)"
        )
    if match["iso"]:
        day = date.fromisoformat(match["iso"])
    else:
        day = date(int(match["y"]), int(match["m"]), int(match["d"]))
    if match["hh"] is None:
        return day, day.isoformat()
    hour, minute, second = int(match["hh"]), int(match["mm"]), int(match["ss"] or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"{text!r}: {hour:02d}:{minute:02d}:{second:02d} is not a time")
    if match["zone"] is None:
        raise ValueError(f"{text!r}: give the time zone (WIB, WITA, WIT) or an offset (+08:00)")
    zone = match["zone"].upper()
    offset = _ZONES.get(zone) or f"{zone[:3]}:{zone[-2:]}"
    if offset not in _INDONESIA:
        raise ValueError(f"{text!r}: {offset} is not WIB (+07:00), WITA (+08:00) or WIT (+09:00)")
    return day, f"{day.isoformat()}T{hour:02d}:{minute:02d}:{second:02d}{offset}"


def checked_visit_time(record: Record, today: date, column: str = "tanggal") -> tuple[date, str]:
    """``visit_time`` of the column, not in the future; RecordError naming the column."""
    try:
        when = visit_time(record[column])
    except ValueError as exc:
        raise RecordError(0, column, str(exc)) from None
    if when[0] > today:
        raise RecordError(0, column, f"{when[0]} is in the future")
    return when


def check_niks(record: Record, *columns: str) -> None:
    """RecordError for the first of ``columns`` present whose NIK is impossible."""
    for column in columns:
        if column in record and (problem := codes.check_nik(record[column])):
            raise RecordError(0, column, f"{record[column]}: {problem}")


def years(born: date, day: date) -> int:
    """Age in whole years on ``day``."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def kader(record: Record, facility: str) -> tuple[str, dict[str, Any]]:
    """The kader's criteria and Practitioner: by ``nik_kader``, else by facility and name."""
    if "nik_kader" in record:
        identifier = {"use": "official", "system": codes.NIK, "value": record["nik_kader"]}
    else:
        name = " ".join(record["nama_kader"].lower().split())
        identifier = {"system": codes.KADER_POSYANDU, "value": f"{record[facility]}:{name}"}
    resource: dict[str, Any] = {"resourceType": "Practitioner", "identifier": [identifier]}
    resource["active"] = True
    if "nama_kader" in record:
        resource["name"] = [{"use": "official", "text": record["nama_kader"]}]
    return criteria(identifier["system"], identifier["value"]), resource


def encounter(
    *,
    system: str,
    key: str,
    stage: str,
    visit_class: dict[str, Any],
    visit_type: str,
    facility: str,
    when: str,
    subject: dict[str, str],
    participants: list[dict[str, Any]],
) -> dict[str, Any]:
    """An ``ilp-encounter`` of life-cycle ``stage`` (codes.SIKLUS) at the facility coded
    ``facility``, found again by ``system|key``."""
    stage_name, klaster = codes.SIKLUS[stage]
    where = facility_query(facility)
    return {
        "resourceType": "Encounter",
        "meta": codes.profile("ilp-encounter"),
        "identifier": [{"system": system, "value": key}],
        "status": "finished",
        "class": visit_class,
        "type": [codes.concept(codes.SIKLUS_HIDUP, stage, stage_name), {"text": visit_type}],
        "serviceType": codes.concept(codes.KLASTER, klaster, codes.KLASTER_NAMES[klaster]),
        "subject": subject,
        "participant": participants,
        "period": {"start": when, "end": when},
        "location": [{"location": conditional_reference("Location", where)}],
        "serviceProvider": conditional_reference("Organization", where),
    }


def quantity_observation(
    measure: Measure,
    value: float,
    *,
    system: str,
    key: str,
    when: str,
    subject: dict[str, str],
    encounter_ref: dict[str, str],
    performer: dict[str, str],
    extra_codings: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    """The Observation of ``measure`` claiming its ILP profile (none when the profile is ""),
    found again by ``system|key``."""
    display, text, unit = codes.MEASURES[measure.loinc]
    code = codes.concept(codes.LOINC, measure.loinc, display, text=text)
    code["coding"] += (*measure.also_coded, *extra_codings)
    meta: dict[str, Any] = {}
    if measure.profile.startswith(CORE):
        meta["meta"] = {"profile": [measure.profile]}
    elif measure.profile:
        meta["meta"] = codes.profile(measure.profile)
    return {
        "resourceType": "Observation",
        **meta,
        "identifier": [{"system": system, "value": key}],
        "status": "final",
        "category": list(measure.category),
        "code": code,
        "subject": subject,
        "encounter": encounter_ref,
        "effectiveDateTime": when,
        "performer": [performer],
        "valueQuantity": {"value": value, "unit": unit, "system": codes.UCUM, "code": unit},
    }


def measure_entries(
    values: list[tuple[Measure, float]],
    record: Record,
    *,
    system: str,
    key: str,
    when: str,
    subject: dict[str, str],
    encounter_ref: dict[str, str],
    performer: dict[str, str],
) -> list[Entry]:
    """One Observation per measure, found again by ``system|{key}:{LOINC}``; a height carries
    how it was measured (``cara_ukur``; standing when the sheet does not say)."""
    entries = []
    for measure, value in values:
        position = (POSITION[record.get("cara_ukur", "berdiri")],)
        observation = quantity_observation(
            measure, value, system=system, key=f"{key}:{measure.loinc}", when=when,
            subject=subject, encounter_ref=encounter_ref, performer=performer,
            extra_codings=position if measure.loinc == "8302-2" else (),
        )  # fmt: skip
        entries.append(conditional_update(observation, identifier_criteria(observation)))
    return entries
