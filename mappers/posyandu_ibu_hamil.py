"""The session sheet for pregnant women at a Posyandu or Pustu (``posyandu-ibu-hamil``): each
row a visit.

Each row becomes an Encounter claiming ``ilp-encounter`` (siklus hidup ``ibu``, klaster 2;
class FLD at a Posyandu, AMB in a Pustu or Puskesmas building) with the bidan and the kader as
participants, one Observation per measure given (gestational age, ``ilp-obs-body-weight``,
``ilp-obs-muac``, ``ilp-obs-bp-systolic`` and ``ilp-obs-bp-diastolic`` as two Observations as
SATUSEHAT takes them, ``ilp-obs-hemoglobin``) and a MedicationDispense for the iron tablets
(tablet tambah darah, TTD) handed over.  The woman and the facility are conditional
references, so the ``fasilitas`` and ``sasaran`` registers must be imported first; the bidan
and the kader are
Practitioners written by conditional updates.  Every resource is found again by an identifier
made of the facility code, the visit date and the woman's NIK, so importing a sheet twice
changes nothing (docs/formats.md).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from mappers import codes, sessions, visits
from mappers.base import (
    SCHEMAS,
    Entry,
    Record,
    RecordError,
    conditional_create,
    conditional_reference,
    conditional_update,
    criteria,
    identifier_criteria,
)
from mappers.sasaran import patient_query
from mappers.sessions import Measure

WOMAN = "a pregnant woman"
_EXAM = (codes.concept(codes.OBSERVATION_CATEGORY, "exam", "Exam"),)
# Ranges catch unit and typing mistakes (grams, mm, g/L), not illness: a woman with severe
# anaemia (Hb 5) or pre-eclampsia (180/120) must still be recorded.  Gestational age has no
# ILP profile (profile ""): it is claimed by none and meets base R4.
# The broader LOINC code, which Indonesian ANC guides and growth-chart apps search by.
GESTATIONAL_AGE = codes.coding(codes.LOINC, "18185-9", "Gestational age")
MEASURES = (
    Measure(
        "usia_kehamilan", "11884-4", "", 1.0, 45.0, category=_EXAM, also_coded=(GESTATIONAL_AGE,)
    ),
    Measure("berat", "29463-7", "ilp-obs-body-weight", 30.0, 200.0),
    Measure("lila", "56072-2", "ilp-obs-muac", 15.0, 50.0),
    Measure("sistolik", "8480-6", "ilp-obs-bp-systolic", 60.0, 260.0),
    Measure("diastolik", "8462-4", "ilp-obs-bp-diastolic", 30.0, 160.0),
    Measure("hb", "718-7", "ilp-obs-hemoglobin", 3.0, 20.0, category=tuple(codes.LABORATORY)),
)
# Three months' supply (one a day, or two a day for anaemia for 45 days) at most per visit.
MAX_TABLETS = 90
TABLETS = "Tablet tambah darah (TTD)"
# ATC B03AD: iron in combination with folic acid, what the programme's TTD tablet is.
IRON_FOLIC_ACID = codes.concept(
    "http://www.whocc.no/atc", "B03AD", "iron in combination with folic acid", text=TABLETS
)
# tempat -> Encounter class and visit type: a Posyandu is outreach, a Pustu a building.
_PLACES = {
    "posyandu": (codes.FIELD, "Kunjungan Posyandu"),
    "pustu": (codes.AMBULATORY, "Kunjungan Pustu"),
    "puskesmas": (codes.AMBULATORY, "Kunjungan Puskesmas"),
}


class PosyanduIbuHamilMapper(sessions.VisitSheet):
    """Pregnant women's sheet rows -> Practitioners (bidan, kader) + Encounter + Observations."""

    name = "posyandu-ibu-hamil"
    schema_path: Path = SCHEMAS / "posyandu-ibu-hamil.schema.json"

    def map(self, record: Record) -> list[Entry]:
        """RecordError for an impossible date, NIK, measure or tablet count (row and column)."""
        when, values = self._check(record)
        woman = conditional_reference("Patient", patient_query({"nik": record["nik_ibu"]}))
        key = f"{record['kode_fasilitas']}:{when[0].isoformat()}:{record['nik_ibu']}"
        entries, participants = _practitioners(record)
        visit_class, visit_type = _PLACES[record.get("tempat", "posyandu")]
        encounter = sessions.encounter(
            system=codes.KUNJUNGAN_IBU_HAMIL, key=key, stage="ibu", visit_class=visit_class,
            visit_type=visit_type, facility=record["kode_fasilitas"], when=when[1],
            subject=woman, participants=participants,
        )  # fmt: skip
        encounter_query = criteria(codes.KUNJUNGAN_IBU_HAMIL, key)
        entries.append(conditional_update(encounter, encounter_query))
        encounter_ref = conditional_reference("Encounter", encounter_query)
        performer = participants[0]["individual"]  # the bidan when there is one
        entries += sessions.measure_entries(
            values, record, system=codes.PEMERIKSAAN_IBU_HAMIL, key=key, when=when[1],
            subject=woman, encounter_ref=encounter_ref, performer=performer,
        )  # fmt: skip
        if "tablet_tambah_darah" in record:
            tablets = _tablets(
                record["tablet_tambah_darah"], key=f"{key}:ttd", when=when[1], woman=woman,
                encounter_ref=encounter_ref, performer=performer,
            )  # fmt: skip
            entries.append(conditional_update(tablets, identifier_criteria(tablets)))
        return entries

    def _check(self, record: Record) -> tuple[tuple[date, str], list[tuple[Measure, float]]]:
        when = sessions.checked_visit_time(record, self.today)
        sessions.check_niks(record, "nik_kader", "nik_bidan")
        if problem := codes.check_nik(record["nik_ibu"], woman=True):
            raise RecordError(0, "nik_ibu", f"{record['nik_ibu']}: {problem}")
        if "nik_bidan" in record and record["nik_bidan"] == record.get("nik_kader"):
            raise RecordError(0, "nik_bidan", "is the kader's NIK: name each person once")
        values = [(m, m.value(record, WOMAN)) for m in MEASURES if m.column in record]
        sessions.check_blood_pressure(values)
        if record.get("tablet_tambah_darah", 0) > MAX_TABLETS:
            raise RecordError(
                0, "tablet_tambah_darah", f"{record['tablet_tambah_darah']} tablets is "
                f"impossible for one visit: expected 0-{MAX_TABLETS}",
            )  # fmt: skip
        if not values and "tablet_tambah_darah" not in record:
            raise RecordError(
                0, "usia_kehamilan", "give at least one measure (usia_kehamilan, berat, lila, "
                "sistolik and diastolik, hb) or tablet_tambah_darah",
            )  # fmt: skip
        return when, values


def _practitioners(record: Record) -> tuple[list[Entry], list[dict[str, Any]]]:
    """The bidan's and the kader's Practitioner entries, and their Encounter participants
    (the bidan first: she is in charge, and performs the measures)."""
    people: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = []
    if "nik_bidan" in record:
        bidan = visits.nakes(record["nik_bidan"], record.get("nama_bidan"), "bidan")
        people.append((*bidan, visits.attender("bidan")))
    if "nik_kader" in record or "nama_kader" in record:
        people.append((*sessions.kader(record, "kode_fasilitas"), sessions.KADER_ROLE))
    entries = [conditional_create(resource, query) for query, resource, _ in people]
    participants = [
        {"type": role, "individual": conditional_reference("Practitioner", query)}
        for query, _, role in people
    ]
    return entries, participants


def _tablets(
    count: int, *, key: str, when: str, woman: dict[str, str], encounter_ref: dict[str, str],
    performer: dict[str, str],
) -> dict[str, Any]:  # fmt: skip
    """The iron tablets handed over to take at home, one a day: a MedicationDispense (not an
    administration: none is swallowed at the visit).  0 tablets is a dispense declined."""
    dispense: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "identifier": [{"system": codes.PEMERIKSAAN_IBU_HAMIL, "value": key}],
        "status": "completed" if count else "declined",
        "medicationCodeableConcept": IRON_FOLIC_ACID,
        "subject": woman,
        "context": encounter_ref,
        "performer": [{"actor": performer}],
    }
    if count:
        dispense["quantity"] = {"value": count, "unit": "tablet", "system": codes.UCUM,
                                "code": "{tbl}"}  # fmt: skip
        dispense["daysSupply"] = {"value": count, "unit": "d", "system": codes.UCUM, "code": "d"}
        dispense["whenHandedOver"] = when
        dispense["dosageInstruction"] = [{"text": "1 tablet sehari"}]
    return dispense
