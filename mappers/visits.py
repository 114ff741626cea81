"""What the visit exports (``kunjungan``, ``kunjungan-rumah``) share beyond ``sessions.py``.

The person visited, by NIK or, for a baby without one, by the mother's NIK as ``sasaran`` keys
it; the nakes as a Practitioner found by NIK, with the occupation the demo gives nakes (SNOMED
CT) as ``qualification``, and as the ``ATND`` participant SATUSEHAT expects; and measures
plausible at any age.  Weight, height, LILA and blood pressure claim the ILP measure profiles;
heart rate, temperature and respiratory rate have no ILP profile and claim the core R4 ones
(``heartrate``, ``bodytemp``, ``resprate``), whose rules they meet
(https://hl7.org/fhir/R4/observation-vitalsigns.html).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from mappers import codes, sessions
from mappers.base import (
    Record,
    RecordError,
    conditional_reference,
    criteria,
)
from mappers.sasaran import patient_query
from mappers.sessions import Measure
from server.demo.codes import BIDAN, DOKTER, PERAWAT, SNOMED

# ILP participant role -> occupation (SNOMED CT code, display, Indonesian title, prefix, degree).
PROFESSIONS = {"dokter": DOKTER, "bidan": BIDAN, "perawat": PERAWAT}
BALITA = "a balita"
OLDER = "a patient of school age or older"
# A balita's sheet may keep weight in grams and length in metres, as the Posyandu sheets do;
# from school age a weight above 100 is a heavy adult, so no unit is guessed there.
BALITA_MEASURES = (
    Measure("berat", "29463-7", "ilp-obs-body-weight", 0.5, 40.0, sessions.grams_to_kg),
    Measure("tinggi", "8302-2", "ilp-obs-body-height", 30.0, 130.0, sessions.metres_to_cm),
    Measure("lila", "56072-2", "ilp-obs-muac", 5.0, 25.0),
    Measure("sistolik", "8480-6", "ilp-obs-bp-systolic", 50.0, 200.0),
    Measure("diastolik", "8462-4", "ilp-obs-bp-diastolic", 20.0, 150.0),
    Measure("nadi", "8867-4", f"{sessions.CORE}heartrate", 50.0, 250.0),
    Measure("suhu", "8310-5", f"{sessions.CORE}bodytemp", 30.0, 45.0),
    Measure("napas", "9279-1", f"{sessions.CORE}resprate", 10.0, 120.0),
)
MEASURES = (
    Measure("berat", "29463-7", "ilp-obs-body-weight", 10.0, 300.0),
    Measure("tinggi", "8302-2", "ilp-obs-body-height", 80.0, 250.0, sessions.metres_to_cm),
    Measure("lila", "56072-2", "ilp-obs-muac", 10.0, 60.0),
    Measure("sistolik", "8480-6", "ilp-obs-bp-systolic", 50.0, 300.0),
    Measure("diastolik", "8462-4", "ilp-obs-bp-diastolic", 20.0, 200.0),
    Measure("nadi", "8867-4", f"{sessions.CORE}heartrate", 20.0, 250.0),
    Measure("suhu", "8310-5", f"{sessions.CORE}bodytemp", 30.0, 45.0),
    Measure("napas", "9279-1", f"{sessions.CORE}resprate", 5.0, 80.0),
)


def one_of(record: Record, column: str, allowed: Iterable[str]) -> str:
    """The column's value in lower case; RecordError naming the allowed values otherwise."""
    value = " ".join(record[column].lower().split())
    choices = list(allowed)
    if value not in choices:
        listed = ", ".join(choices[:-1]) + f" or {choices[-1]}"
        raise RecordError(0, column, f"{record[column]!r} is not one of {listed}")
    return value


def check_person(record: Record, nik_column: str, day: date) -> None:
    """RecordError for an impossible NIK, or a baby without NIK who cannot be found."""
    sessions.check_niks(record, nik_column)
    if nik_column not in record:
        if problem := codes.check_nik(record["nik_ibu"], woman=True):
            raise RecordError(0, "nik_ibu", f"{record['nik_ibu']}: {problem}")
        for column in ("tanggal_lahir", "jenis_kelamin"):
            if column not in record:
                raise RecordError(0, column, f"is required for a patient without {nik_column}")
    if "tanggal_lahir" in record and (born := date.fromisoformat(record["tanggal_lahir"])) > day:
        raise RecordError(0, "tanggal_lahir", f"{born} is after the visit ({day})")


def person(record: Record, nik_column: str) -> tuple[dict[str, str], str]:
    """The conditional reference to the person's Patient (as ``sasaran`` keys it) and a key."""
    if nik_column in record:
        nik = record[nik_column]
        return conditional_reference("Patient", patient_query({"nik": nik})), nik
    keys = {k: record[k] for k in ("nik_ibu", "tanggal_lahir", "jenis_kelamin")}
    key = f"ibu-{keys['nik_ibu']}-{keys['tanggal_lahir']}-{keys['jenis_kelamin']}"
    return conditional_reference("Patient", patient_query(keys)), key


def nakes(nik: str, name: str | None, role: str) -> tuple[str, dict[str, Any]]:
    """The criteria and Practitioner of a nakes: by NIK, the occupation as qualification."""
    code, display, text, _, _ = PROFESSIONS[role]
    resource: dict[str, Any] = {
        "resourceType": "Practitioner",
        "identifier": [{"use": "official", "system": codes.NIK, "value": nik}],
        "active": True,
    }
    if name:
        resource["name"] = [{"use": "official", "text": name}]
    resource["qualification"] = [{"code": codes.concept(SNOMED, code, display, text=text)}]
    return criteria(codes.NIK, nik), resource


def attender(role: str) -> list[dict[str, Any]]:
    """``participant.type`` of the nakes in charge: v3 ``ATND`` refined by the ILP role."""
    text = PROFESSIONS[role][2]
    return [
        {
            "coding": [
                codes.coding(codes.PARTICIPATION_TYPE, "ATND", "attender"),
                codes.coding(codes.PARTICIPANT_ROLE, role, text),
            ],
            "text": text,
        }
    ]


def measured(record: Record, stage: str) -> list[tuple[Measure, float]]:
    """The measures of the row, each within the range of the life-cycle ``stage``.

    RecordError for a value outside it, diastolic not below systolic, or a balita's height
    without ``cara_ukur``.
    """
    measures, who = (BALITA_MEASURES, BALITA) if stage == "balita" else (MEASURES, OLDER)
    values = [(m, m.value(record, who)) for m in measures if m.column in record]
    sessions.check_blood_pressure(values)
    if "tinggi" in record and "cara_ukur" not in record and stage == "balita":
        raise RecordError(
            0, "cara_ukur", "is required with tinggi for a balita: telentang (lying, under 2 "
            "years) or berdiri (standing)",
        )  # fmt: skip
    return values
