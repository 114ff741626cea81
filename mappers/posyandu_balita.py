"""The Posyandu session sheet for under-fives (``posyandu-balita``): each row a visit.

Each row becomes an Encounter claiming ``ilp-encounter`` (class FLD, klaster 2, siklus hidup
``balita``) at the Posyandu, with the kader as participant, and one Observation per measure
given (``ilp-obs-body-weight``, ``ilp-obs-body-height``, ``ilp-obs-head-circumference``,
``ilp-obs-muac``).  The child, the Posyandu (Organization and Location) are conditional
references, so the ``fasilitas`` and ``sasaran`` registers must be imported first; the kader
is a Practitioner written by a conditional update on the kader's NIK.  Every resource is found
again by an identifier made of the Posyandu code, the visit date and the child, so importing
a sheet twice changes nothing (docs/formats.md).  ``vitamin_a`` and ``imunisasi`` are read and
checked but not yet mapped.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

from mappers import codes
from mappers.base import (
    SCHEMAS,
    Entry,
    Record,
    RecordError,
    conditional_reference,
    conditional_update,
    criteria,
)
from mappers.fasilitas import facility_query
from mappers.sasaran import patient_query

_ZONES = {"WIB": "+07:00", "WITA": "+08:00", "WIT": "+09:00", "Z": "+00:00"}
_INDONESIA = {"+07:00", "+08:00", "+09:00"}
_WHEN = re.compile(
    r"^(?:(?P<iso>\d{4}-\d{2}-\d{2})|(?P<d>\d{1,2})[/-](?P<m>\d{1,2})[/-](?P<y>\d{4}))"
    r"(?:[ T](?P<hh>\d{1,2})[:.](?P<mm>\d{2})(?:[:.](?P<ss>\d{2}))?"
    r"\s*(?P<zone>WIB|WITA|WIT|Z|[+-]\d{2}:?\d{2})?)?$",
    re.IGNORECASE,
)
# column -> (LOINC, ILP profile, lowest, highest accepted value after normalisation)
_MEASURES: dict[str, tuple[str, str, float, float]] = {
    "berat": ("29463-7", "ilp-obs-body-weight", 0.5, 40.0),
    "panjang_tinggi": ("8302-2", "ilp-obs-body-height", 30.0, 130.0),
    "lingkar_kepala": ("9843-4", "ilp-obs-head-circumference", 25.0, 60.0),
    "lila": ("56072-2", "ilp-obs-muac", 5.0, 25.0),
}
_POSITION = {
    "telentang": codes.coding(codes.LOINC, "8306-3", "Body height --lying"),
    "berdiri": codes.coding(codes.LOINC, "8308-9", "Body height --standing"),
}
_KADER = [
    {
        "coding": [
            codes.coding(codes.PARTICIPATION_TYPE, "PART", "Participation"),
            codes.coding(codes.PARTICIPANT_ROLE, "kader", "Kader kesehatan"),
        ],
        "text": "Kader kesehatan",
    }
]


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


def normalised(column: str, value: float) -> float:
    """``value`` in the unit of the Observation: grams -> kg (above 100), metres -> cm (below 3)."""
    if column == "berat" and value > 100:
        return round(value / 1000, 3)
    if column == "panjang_tinggi" and value < 3:
        return round(value * 100, 1)
    return float(value)


class PosyanduBalitaMapper:
    """Posyandu balita sheet rows -> Practitioner (kader) + Encounter + Observations."""

    name = "posyandu-balita"
    schema_path: Path = SCHEMAS / "posyandu-balita.schema.json"
    shared = frozenset({"Practitioner"})  # one kader weighs many children

    def __init__(self, today: date | None = None) -> None:
        # The one impure input, fixed at construction so that map() stays a pure function.
        self.today = today or date.today()

    def rank(self, record: Record) -> int:
        """All rows are alike: they refer only to what earlier registers stored."""
        return 0

    def map(self, record: Record) -> list[Entry]:
        """RecordError for an impossible date, child, NIK or measure (row and column)."""
        when, values = self._check(record)
        child = _child(record)
        key = _visit_key(record, child, when[0])
        kader_query, kader = _kader(record)
        kader_ref = conditional_reference("Practitioner", kader_query)
        encounter_query = criteria(codes.KUNJUNGAN_POSYANDU, key)
        entries = [
            conditional_update(kader, kader_query),
            conditional_update(_encounter(record, when[1], key, child, kader_ref), encounter_query),
        ]
        encounter_ref = conditional_reference("Encounter", encounter_query)
        for column, value in values.items():
            observation = _observation(
                record, column, value, when[1], f"{key}:{_MEASURES[column][0]}", child,
                encounter_ref, kader_ref,
            )  # fmt: skip
            query = criteria(codes.PENGUKURAN_POSYANDU, observation["identifier"][0]["value"])
            entries.append(conditional_update(observation, query))
        return entries

    def _check(self, record: Record) -> tuple[tuple[date, str], dict[str, float]]:
        try:
            when = visit_time(record["tanggal"])
        except ValueError as exc:
            raise RecordError(0, "tanggal", str(exc)) from None
        day = when[0]
        if day > self.today:
            raise RecordError(0, "tanggal", f"{day} is in the future")
        for column in ("nik_anak", "nik_kader"):
            if column in record and (problem := codes.check_nik(record[column])):
                raise RecordError(0, column, f"{record[column]}: {problem}")
        if "nik_anak" not in record:
            if problem := codes.check_nik(record["nik_ibu"], woman=True):
                raise RecordError(0, "nik_ibu", f"{record['nik_ibu']}: {problem}")
            if "jenis_kelamin" not in record:
                raise RecordError(0, "jenis_kelamin", "is required for a child without nik_anak")
        born = date.fromisoformat(record["tanggal_lahir"])
        if born > day:
            raise RecordError(0, "tanggal_lahir", f"{born} is after the visit ({day})")
        if _years(born, day) >= 5:
            raise RecordError(
                0, "tanggal_lahir", f"the child is {_years(born, day)} years old at the visit: "
                "the balita sheet is for children under 5",
            )  # fmt: skip
        values: dict[str, float] = {}
        for column, (_, _, low, high) in _MEASURES.items():
            if column not in record:
                continue
            value = normalised(column, record[column])
            if not low <= value <= high:
                unit = "kg" if column == "berat" else "cm"
                raise RecordError(
                    0, column, f"{record[column]:g} ({value:g} {unit}) is impossible for a child "
                    f"under 5: expected {low:g}-{high:g} {unit}",
                )  # fmt: skip
            values[column] = value
        if not values:
            raise RecordError(0, "berat", "give at least one measure (berat, panjang_tinggi, ...)")
        return when, values


def _years(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _child(record: Record) -> dict[str, str]:
    """The conditional reference to the child's Patient, matched as the sasaran register does."""
    if "nik_anak" in record:
        keys = {"nik": record["nik_anak"]}
    else:
        keys = {
            "nik_ibu": record["nik_ibu"],
            "tanggal_lahir": record["tanggal_lahir"],
            "jenis_kelamin": record["jenis_kelamin"],
        }
    return conditional_reference("Patient", patient_query(keys))


def _visit_key(record: Record, child: dict[str, str], day: date) -> str:
    if "nik_anak" in record:
        who = record["nik_anak"]
    else:
        who = f"ibu-{record['nik_ibu']}-{record['tanggal_lahir']}-{record['jenis_kelamin']}"
    return f"{record['kode_posyandu']}:{day.isoformat()}:{who}"


def _kader(record: Record) -> tuple[str, dict[str, Any]]:
    """The kader's criteria and Practitioner: by NIK, else by Posyandu and name."""
    if "nik_kader" in record:
        identifier = {"use": "official", "system": codes.NIK, "value": record["nik_kader"]}
    else:
        name = " ".join(record["nama_kader"].lower().split())
        identifier = {
            "system": codes.KADER_POSYANDU,
            "value": f"{record['kode_posyandu']}:{name}",
        }
    resource: dict[str, Any] = {"resourceType": "Practitioner", "identifier": [identifier]}
    resource["active"] = True
    if "nama_kader" in record:
        resource["name"] = [{"use": "official", "text": record["nama_kader"]}]
    return criteria(identifier["system"], identifier["value"]), resource


def _encounter(
    record: Record, when: str, key: str, child: dict[str, str], kader: dict[str, str]
) -> dict[str, Any]:
    stage_name, klaster = codes.SIKLUS["balita"]
    posyandu = facility_query(record["kode_posyandu"])
    return {
        "resourceType": "Encounter",
        "meta": codes.profile("ilp-encounter"),
        "identifier": [{"system": codes.KUNJUNGAN_POSYANDU, "value": key}],
        "status": "finished",
        "class": codes.FIELD,
        "type": [
            codes.concept(codes.SIKLUS_HIDUP, "balita", stage_name),
            {"text": "Kunjungan Posyandu"},
        ],
        "serviceType": codes.concept(codes.KLASTER, klaster, codes.KLASTER_NAMES[klaster]),
        "subject": child,
        "participant": [{"type": _KADER, "individual": kader}],
        "period": {"start": when, "end": when},
        "location": [{"location": conditional_reference("Location", posyandu)}],
        "serviceProvider": conditional_reference("Organization", posyandu),
    }


def _observation(
    record: Record,
    column: str,
    value: float,
    when: str,
    key: str,
    child: dict[str, str],
    encounter: dict[str, str],
    kader: dict[str, str],
) -> dict[str, Any]:
    loinc, profile, _, _ = _MEASURES[column]
    display, text, unit = codes.MEASURES[loinc]
    code = codes.concept(codes.LOINC, loinc, display, text=text)
    if column == "panjang_tinggi":
        code["coding"].append(_POSITION[record["cara_ukur"]])
    return {
        "resourceType": "Observation",
        "meta": codes.profile(profile),
        "identifier": [{"system": codes.PENGUKURAN_POSYANDU, "value": key}],
        "status": "final",
        "category": codes.VITAL_SIGNS,
        "code": code,
        "subject": child,
        "encounter": encounter,
        "effectiveDateTime": when,
        "performer": [kader],
        "valueQuantity": {"value": value, "unit": unit, "system": codes.UCUM, "code": unit},
    }
