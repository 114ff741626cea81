"""The Posyandu session sheet for under-fives (``posyandu-balita``): each row a visit.

Each row becomes an Encounter claiming ``ilp-encounter`` (class FLD, klaster 2, siklus hidup
``balita``) at the Posyandu, with the kader as participant, and one Observation per measure
given (``ilp-obs-body-weight``, ``ilp-obs-body-height``, ``ilp-obs-head-circumference``,
``ilp-obs-muac``).  The child, the Posyandu (Organization and Location) are conditional
references, so the ``fasilitas`` and ``sasaran`` registers must be imported first; the kader
is a Practitioner written by a conditional update on the kader's NIK.  Every resource is found
again by an identifier made of the Posyandu code, the visit date and the child, so importing
a sheet twice changes nothing (docs/formats.md).  Immunisations given become Immunization
resources and a vitamin A capsule a MedicationAdministration (``mappers/pemberian.py``).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from mappers import codes, pemberian, sessions, visits
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
from mappers.sessions import Measure

CHILD = "a child under 5"
MEASURES = (
    Measure("berat", "29463-7", "ilp-obs-body-weight", 0.5, 40.0, sessions.grams_to_kg),
    Measure("panjang_tinggi", "8302-2", "ilp-obs-body-height", 30.0, 130.0, sessions.metres_to_cm),
    Measure("lingkar_kepala", "9843-4", "ilp-obs-head-circumference", 25.0, 60.0),
    Measure("lila", "56072-2", "ilp-obs-muac", 5.0, 25.0),
)


class PosyanduBalitaMapper(sessions.VisitSheet):
    """Posyandu balita sheet rows -> Practitioner (kader) + Encounter + Observations."""

    name = "posyandu-balita"
    schema_path: Path = SCHEMAS / "posyandu-balita.schema.json"

    def map(self, record: Record) -> list[Entry]:
        """RecordError for an impossible date, child, NIK or measure (row and column)."""
        when, values = self._check(record)
        vaccines = pemberian.vaccines_given(record.get("imunisasi", ""))
        child, who = visits.person(record, "nik_anak")
        key = f"{record['kode_posyandu']}:{when[0].isoformat()}:{who}"
        kader_query, kader = sessions.kader(record, "kode_posyandu")
        kader_ref = conditional_reference("Practitioner", kader_query)
        encounter = sessions.encounter(
            system=codes.KUNJUNGAN_POSYANDU, key=key, stage="balita", visit_class=codes.FIELD,
            visit_type="Kunjungan Posyandu", facility=record["kode_posyandu"], when=when[1],
            subject=child, participants=[{"type": sessions.KADER_ROLE, "individual": kader_ref}],
        )  # fmt: skip
        encounter_query = criteria(codes.KUNJUNGAN_POSYANDU, key)
        entries = [
            conditional_create(kader, kader_query),
            conditional_update(encounter, encounter_query),
        ]
        encounter_ref = conditional_reference("Encounter", encounter_query)
        entries += sessions.measure_entries(
            values, record, system=codes.PENGUKURAN_POSYANDU, key=key, when=when[1],
            subject=child, encounter_ref=encounter_ref, performer=kader_ref,
        )  # fmt: skip
        for vaccine, dose in vaccines:
            given = pemberian.immunization(
                vaccine, dose, key=f"{key}:{vaccine.key}-{dose}", when=when[1], child=child,
                encounter_ref=encounter_ref, location=encounter["location"][0]["location"],
            )  # fmt: skip
            entries.append(conditional_update(given, identifier_criteria(given)))
        if record.get("vitamin_a"):
            capsule = pemberian.vitamin_a(
                record, key=f"{key}:vitamin-a", day=when[0], when=when[1], child=child,
                encounter_ref=encounter_ref, kader_ref=kader_ref,
            )  # fmt: skip
            entries.append(conditional_update(capsule, identifier_criteria(capsule)))
        return entries

    def _check(self, record: Record) -> tuple[tuple[date, str], list[tuple[Measure, float]]]:
        when = sessions.checked_visit_time(record, self.today)
        day = when[0]
        sessions.check_niks(record, "nik_kader")
        visits.check_person(record, "nik_anak", day)  # by NIK, or the mother's NIK and birth
        if (age := sessions.years(date.fromisoformat(record["tanggal_lahir"]), day)) >= 5:
            raise RecordError(
                0, "tanggal_lahir", f"the child is {age} years old at the visit: "
                "the balita sheet is for children under 5",
            )  # fmt: skip
        values = [(m, m.value(record, CHILD)) for m in MEASURES if m.column in record]
        if not values and not record.get("imunisasi") and not record.get("vitamin_a"):
            raise RecordError(
                0, "berat", "give at least one measure (berat, panjang_tinggi, ...), "
                "immunisation or vitamin A",
            )  # fmt: skip
        return when, values
