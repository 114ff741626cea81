"""The Puskesmas / Pustu visit export (``kunjungan``): each row an outpatient visit.

Each row becomes an Encounter claiming ``ilp-encounter`` (class AMB) at the facility, with the
klaster of the row as ``serviceType``, its siklus hidup, the nakes as ``ATND`` participant and
the diagnoses in ``diagnosis`` (rank 1 the primary, use ``DD`` as SATUSEHAT sends them); one
Condition per ICD-10 diagnosis (``encounter-diagnosis``, active); one Observation per vital
sign given (``mappers/visits.py``); and the nakes's Practitioner, a conditional update on the
NIK.  The visit is found again by the facility code and the facility's own visit number, the
Conditions by that and their rank, so importing twice changes nothing and a corrected
diagnosis updates its Condition in place (docs/formats.md).
"""

from __future__ import annotations

import re
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

ICD10 = "http://hl7.org/fhir/sid/icd-10"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
DIAGNOSIS_ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
KLASTER_NAMES = {
    **codes.KLASTER_NAMES,
    "4": "Klaster 4: Penanggulangan Penyakit Menular",
    "5": "Lintas Klaster",
}
DIAGNOSA_COLUMNS = tuple(f"diagnosa_{rank}" for rank in range(1, 6))
# A code (a letter, two digits, then a dot, which exports often drop, and 1-4 characters),
# then optionally its name after a space, '-' or ':': "J06.9 - ISPA", "j069", "A09 Diare".
_DIAGNOSIS = re.compile(
    r"^(?P<code>[A-Z][0-9]{2})(?:\.?(?P<sub>[0-9A-Z]{1,4}))?(?:(?:\s*[-:]\s*|\s+)(?P<name>.*))?$",
    re.IGNORECASE,
)
_VISIT_TYPES = {
    "": "Kunjungan rawat jalan",
    "baru": "Kunjungan rawat jalan: kunjungan baru",
    "lama": "Kunjungan rawat jalan: kunjungan lama",
}


class KunjunganMapper(sessions.VisitSheet):
    """Visit export rows -> Practitioner (nakes) + Encounter + Conditions + Observations."""

    name = "kunjungan"
    schema_path: Path = SCHEMAS / "kunjungan.schema.json"

    def map(self, record: Record) -> list[Entry]:
        """RecordError for an impossible date, NIK, klaster, profession, measure or code."""
        when = sessions.checked_visit_time(record, self.today)
        visits.check_person(record, "nik_pasien", when[0])
        sessions.check_niks(record, "nik_nakes")
        role = visits.one_of(record, "profesi", visits.PROFESSIONS)
        klaster, stage = _klaster_and_stage(record)
        values = visits.measured(record, stage)
        diagnoses = _diagnoses(record)

        subject, _ = visits.person(record, "nik_pasien")
        key = f"{record['kode_fasilitas']}:{record['no_kunjungan']}"
        nakes_query, nakes = visits.nakes(record["nik_nakes"], record.get("nama_nakes"), role)
        nakes_ref = conditional_reference("Practitioner", nakes_query)
        encounter_query = criteria(codes.KUNJUNGAN, key)
        encounter_ref = conditional_reference("Encounter", encounter_query)
        conditions = [
            _condition(code, name, key=f"{key}:{rank}", subject=subject, when=when[1],
                       encounter_ref=encounter_ref, asserter=nakes_ref)
            for rank, (code, name) in enumerate(diagnoses, start=1)
        ]  # fmt: skip
        encounter = sessions.encounter(
            system=codes.KUNJUNGAN, key=key, stage=stage, visit_class=codes.AMBULATORY,
            visit_type=_VISIT_TYPES[record.get("jenis_kunjungan", "")],
            facility=record["kode_fasilitas"], when=when[1], subject=subject,
            participants=[{"type": visits.attender(role), "individual": nakes_ref}],
        )  # fmt: skip
        encounter["serviceType"] = codes.concept(codes.KLASTER, klaster, KLASTER_NAMES[klaster])
        if conditions:
            encounter["diagnosis"] = [
                {
                    "condition": conditional_reference("Condition", identifier_criteria(condition)),
                    "use": codes.concept(DIAGNOSIS_ROLE, "DD", "Discharge diagnosis"),
                    "rank": rank,
                }
                for rank, condition in enumerate(conditions, start=1)
            ]
        entries = [
            conditional_create(nakes, nakes_query),
            conditional_update(encounter, encounter_query),
            *(conditional_update(c, identifier_criteria(c)) for c in conditions),
        ]
        entries += sessions.measure_entries(
            values, record, system=codes.PENGUKURAN_KUNJUNGAN, key=key, when=when[1],
            subject=subject, encounter_ref=encounter_ref, performer=nakes_ref,
        )  # fmt: skip
        return entries


def _klaster_and_stage(record: Record) -> tuple[str, str]:
    """The klaster code (1-5) and the siklus hidup; RecordError when they do not fit."""
    klaster = str(record["klaster"]).replace("lintas", "5")
    stage = record["siklus_hidup"]
    if klaster == "1":
        raise RecordError(0, "klaster", "Klaster 1 (Manajemen) does not serve patients")
    served_by = codes.SIKLUS[stage][1]
    if klaster in ("2", "3") and served_by != klaster:  # as the ilp-enc-2 warning says
        raise RecordError(
            0, "siklus_hidup", f"{stage} is served by Klaster {served_by}, not Klaster {klaster}"
        )
    return klaster, stage


def _diagnoses(record: Record) -> list[tuple[str, str | None]]:
    """The (ICD-10 code, name) of each diagnosis, the primary first."""
    if "diagnosa" in record and "diagnosa_1" in record:
        raise RecordError(0, "diagnosa", "give diagnosa or diagnosa_1..diagnosa_5, not both")
    if "diagnosa" in record:
        cells = [("diagnosa", cell) for cell in record["diagnosa"].split(";") if cell.strip()]
    else:
        cells = [(column, record[column]) for column in DIAGNOSA_COLUMNS if column in record]
    found: dict[str, str] = {}
    diagnoses = []
    for column, cell in cells:
        match = _DIAGNOSIS.match(cell.strip())
        if match is None:
            raise RecordError(
                0, column, f"{cell.strip()!r} is not an ICD-10 code: a letter, two digits and "
                "optionally a dot and 1-4 letters or digits (J06.9), then optionally its name",
            )  # fmt: skip
        code = match["code"].upper() + (f".{match['sub'].upper()}" if match["sub"] else "")
        if code in found:
            raise RecordError(0, column, f"{code} is already given in {found[code]}")
        found[code] = column
        diagnoses.append((code, match["name"] or None))
    return diagnoses


def _condition(
    code: str,
    name: str | None,
    *,
    key: str,
    subject: dict[str, str],
    when: str,
    encounter_ref: dict[str, str],
    asserter: dict[str, str],
) -> dict[str, Any]:
    """A diagnosis of the visit, as SATUSEHAT takes it: ICD-10, active, encounter-diagnosis."""
    coded: dict[str, Any] = {"coding": [{"system": ICD10, "code": code}]}
    if name:
        coded["text"] = name
    return {
        "resourceType": "Condition",
        "identifier": [{"system": codes.DIAGNOSA_KUNJUNGAN, "value": key}],
        "clinicalStatus": codes.concept(CONDITION_CLINICAL, "active", "Active"),
        "category": [
            codes.concept(CONDITION_CATEGORY, "encounter-diagnosis", "Encounter Diagnosis")
        ],
        "code": coded,
        "subject": subject,
        "encounter": encounter_ref,
        "recordedDate": when,
        "asserter": asserter,
    }
