"""The home-visit register (``kunjungan-rumah``): each row a visit by a kader or a nakes.

Each row becomes an Encounter claiming ``ilp-encounter`` with class ``HH`` (home health) for
the Posyandu, Pustu or Puskesmas whose kader or nakes visited (``serviceProvider``; no
``location``: the visit was at home, not in its building), the purpose (``tujuan``) as
``reasonCode`` and its klaster and siklus hidup; one Observation per measure given
(``mappers/visits.py``) and one for the findings (``temuan``, free text); and the visitor's
Practitioner: a kader as the Posyandu sheets write one (by NIK, else by facility and name), a
nakes by NIK with the occupation.  The visit is found again by facility, date and person, so
importing twice changes nothing (docs/formats.md).
"""

from __future__ import annotations

from dataclasses import dataclass
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
)
from mappers.kunjungan import KLASTER_NAMES

_STAGES = tuple(codes.SIKLUS)


@dataclass(frozen=True)
class Purpose:
    """What a home visit is for: its text, the klaster that serves it and the stages it may
    address (the first is the one used when the row names none)."""

    text: str
    klaster: str
    stages: tuple[str, ...]


PURPOSES = {
    "balita": Purpose("Pemantauan balita", "2", ("balita",)),
    "neonatus": Purpose("Kunjungan neonatal (bayi baru lahir)", "2", ("balita",)),
    "ibu-hamil": Purpose("Pemantauan ibu hamil", "2", ("ibu",)),
    "nifas": Purpose("Kunjungan nifas", "2", ("ibu",)),
    "lansia": Purpose("Pemantauan lansia", "3", ("lansia",)),
    "ptm": Purpose("Pemantauan penyakit tidak menular (PTM)", "3", ("dewasa", "lansia")),
    "tbc": Purpose("Pemantauan pengobatan TBC", "4", ("dewasa", *_STAGES)),
}
ROLES = ("kader", *visits.PROFESSIONS)
FINDINGS = "Temuan kunjungan rumah"


class KunjunganRumahMapper(sessions.VisitSheet):
    """Home-visit rows -> Practitioner (kader or nakes) + Encounter + Observations."""

    name = "kunjungan-rumah"
    schema_path: Path = SCHEMAS / "kunjungan-rumah.schema.json"

    def map(self, record: Record) -> list[Entry]:
        """RecordError for an impossible date, NIK, role, stage or measure (row and column)."""
        when = sessions.checked_visit_time(record, self.today)
        visits.check_person(record, "nik", when[0])
        sessions.check_niks(record, "nik_petugas")
        role = visits.one_of(record, "peran", ROLES)
        purpose = PURPOSES[record["tujuan"]]
        stage = _stage(record, purpose)
        values = visits.measured(record, stage)

        subject, who = visits.person(record, "nik")
        # The visitor's role too: a kader and the bidan may visit one home on the same day.
        key = f"{record['kode_fasilitas']}:{when[0].isoformat()}:{who}:{role}"
        visitor_query, visitor, participation = _visitor(record, role)
        visitor_ref = conditional_reference("Practitioner", visitor_query)
        encounter = sessions.encounter(
            system=codes.KUNJUNGAN_RUMAH, key=key, stage=stage, visit_class=codes.HOME_HEALTH,
            visit_type="Kunjungan rumah", facility=record["kode_fasilitas"], when=when[1],
            subject=subject, participants=[{"type": participation, "individual": visitor_ref}],
        )  # fmt: skip
        del encounter["location"]  # at home: the facility's building is not where it happened
        klaster = purpose.klaster
        encounter["serviceType"] = codes.concept(codes.KLASTER, klaster, KLASTER_NAMES[klaster])
        encounter["reasonCode"] = [{"text": purpose.text}]
        encounter_query = criteria(codes.KUNJUNGAN_RUMAH, key)
        encounter_ref = conditional_reference("Encounter", encounter_query)
        entries = [
            conditional_create(visitor, visitor_query),
            conditional_update(encounter, encounter_query),
        ]
        entries += sessions.measure_entries(
            values, record, system=codes.PENGUKURAN_KUNJUNGAN_RUMAH, key=key, when=when[1],
            subject=subject, encounter_ref=encounter_ref, performer=visitor_ref,
        )  # fmt: skip
        if "temuan" in record:
            findings = _findings(record["temuan"], key=key, when=when[1], subject=subject,
                                 encounter_ref=encounter_ref, performer=visitor_ref)  # fmt: skip
            entries.append(
                conditional_update(findings, criteria(codes.TEMUAN_KUNJUNGAN_RUMAH, key))
            )
        return entries


def _stage(record: Record, purpose: Purpose) -> str:
    """The row's siklus hidup, or the purpose's; RecordError when the purpose excludes it."""
    stage: str = record.get("siklus_hidup", purpose.stages[0])
    if stage not in purpose.stages:
        allowed = " or ".join(dict.fromkeys(purpose.stages))
        raise RecordError(
            0, "siklus_hidup", f"{stage} does not fit tujuan {record['tujuan']}: expected {allowed}"
        )
    return stage


def _visitor(record: Record, role: str) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """The criteria, Practitioner and ``participant.type`` of the kader or nakes who visited."""
    if role == "kader":
        # The same kader as the Posyandu sheets write: by NIK, else by facility and name.
        names = {"nik_petugas": "nik_kader", "nama_petugas": "nama_kader"}
        as_kader = {new: record[old] for old, new in names.items() if old in record}
        as_kader["kode_fasilitas"] = record["kode_fasilitas"]
        query, practitioner = sessions.kader(as_kader, "kode_fasilitas")
        return query, practitioner, sessions.KADER_ROLE
    if "nik_petugas" not in record:
        raise RecordError(0, "nik_petugas", f"is required for a {role}: a nakes is known by NIK")
    query, practitioner = visits.nakes(record["nik_petugas"], record.get("nama_petugas"), role)
    return query, practitioner, visits.attender(role)


def _findings(
    text: str,
    *,
    key: str,
    when: str,
    subject: dict[str, str],
    encounter_ref: dict[str, str],
    performer: dict[str, str],
) -> dict[str, Any]:
    """The visitor's findings as a text Observation: R4 Encounter has no note, and reasonCode
    says why the visit was made, not what it found."""
    return {
        "resourceType": "Observation",
        "identifier": [{"system": codes.TEMUAN_KUNJUNGAN_RUMAH, "value": key}],
        "status": "final",
        "code": {"text": FINDINGS},
        "subject": subject,
        "encounter": encounter_ref,
        "effectiveDateTime": when,
        "performer": [performer],
        "valueString": text,
    }
