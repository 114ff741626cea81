"""The Posyandu session sheets of the stages after balita, each row a visit with the PTM and TB
screening of the juknis ILP: ``posyandu-remaja`` (usia sekolah dan remaja), ``posyandu-produktif``
(usia produktif, 18-59) and ``posyandu-lansia`` (60 and over).

One mapper serves the three sheets, told apart by their ``Stage``: the siklus hidup (and so the
klaster) of the Encounter, the ages the sheet is for and the plausible range of each measure.
Each row becomes an Encounter claiming ``ilp-encounter`` (class FLD) with the kader as
participant, and one Observation per value given: weight, standing height, waist
(``ilp-obs-waist-circumference``), systolic and diastolic pressure as two Observations as
SATUSEHAT takes them, blood glucose (``ilp-obs-blood-glucose``, fasting or random), and, with
no ILP profile to claim, the smoking status (LOINC 72166-2) and the TB symptom screen (SNOMED CT
171126009).  The person and the Posyandu are conditional references (import ``fasilitas`` and
``sasaran`` first); every identifier is made of the Posyandu code, the date, the sheet and the
NIK, so importing a sheet twice changes nothing (docs/formats.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from mappers import codes, sessions
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

# The profile requires 2339-0, which names no timing: a random (sewaktu) reading.  A fasting
# one adds the LOINC code of fasting glucose in capillary blood (the Posyandu's glucometer).
FASTING = codes.coding(codes.LOINC, "1556-0", "Fasting glucose [Mass/volume] in Capillary blood")
GLUCOSE_TEXT = {"sewaktu": "Gula darah sewaktu (GDS)", "puasa": "Gula darah puasa (GDP)"}
GLUCOSE = Measure(
    "gula_darah", "2339-0", "ilp-obs-blood-glucose", 20.0, 600.0,  # a glucometer's range
    category=tuple(codes.LABORATORY),
)  # fmt: skip

SMOKING_STATUS = codes.coding(codes.LOINC, "72166-2", "Tobacco smoking status")
# merokok -> the SNOMED CT answer of LOINC 72166-2, and the Indonesian text.
SMOKING = {
    "ya": ("77176002", "Smoker", "Merokok"),
    "berhenti": ("8517006", "Ex-smoker", "Sudah berhenti merokok"),
    "tidak": ("266919005", "Never smoked tobacco", "Tidak pernah merokok"),
}
TB_SCREENING = codes.coding(codes.SNOMED, "171126009", "Tuberculosis screening")
# The WHO four-symptom screen as the kader asks it: any "ya" makes the person terduga TBC.
TB_SYMPTOMS = (
    ("tbc_batuk", "49727002", "Cough", "Batuk 2 minggu atau lebih"),
    ("tbc_demam", "386661006", "Fever", "Demam"),
    ("tbc_berat_turun", "89362005", "Weight loss", "Berat badan turun tanpa sebab jelas"),
    ("tbc_keringat_malam", "42984000", "Night sweats", "Keringat malam tanpa aktivitas"),
)
TB_RESULT = {
    "positif": ("10828004", "Positive", "Terduga TBC"),
    "negatif": ("260385009", "Negative", "Bukan terduga TBC"),
}
_Values = list[tuple[Measure, float]]


@dataclass(frozen=True)
class Stage:
    """One sheet: its siklus hidup (codes.SIKLUS), the ages it is for (whole years at the
    visit), who its measure ranges are for (in messages) and the measures."""

    siklus: str
    youngest: int
    oldest: int | None
    who: str
    measures: tuple[Measure, ...]

    @property
    def ages(self) -> str:
        if self.oldest is None:
            return f"ages {self.youngest} and over"
        return f"ages {self.youngest}-{self.oldest}"


# Ranges reject what no living person of the stage measures: a unit or typing mistake.
_SCHOOL_AGE = (
    Measure("berat", "29463-7", "ilp-obs-body-weight", 10.0, 200.0),
    Measure("tinggi", "8302-2", "ilp-obs-body-height", 90.0, 220.0, sessions.metres_to_cm),
    Measure("lingkar_perut", "8280-0", "ilp-obs-waist-circumference", 35.0, 200.0),
    Measure("sistolik", "8480-6", "ilp-obs-bp-systolic", 50.0, 250.0),
    Measure("diastolik", "8462-4", "ilp-obs-bp-diastolic", 30.0, 150.0),
    GLUCOSE,
)
_ADULT = (
    Measure("berat", "29463-7", "ilp-obs-body-weight", 20.0, 300.0),
    Measure("tinggi", "8302-2", "ilp-obs-body-height", 90.0, 230.0, sessions.metres_to_cm),
    Measure("lingkar_perut", "8280-0", "ilp-obs-waist-circumference", 35.0, 250.0),
    Measure("sistolik", "8480-6", "ilp-obs-bp-systolic", 50.0, 300.0),
    Measure("diastolik", "8462-4", "ilp-obs-bp-diastolic", 30.0, 200.0),
    GLUCOSE,
)
STAGES = {
    "posyandu-remaja": Stage(
        "usia-sekolah-remaja", 7, 17, "a school-age child or adolescent", _SCHOOL_AGE
    ),
    "posyandu-produktif": Stage("dewasa", 18, 59, "an adult", _ADULT),
    "posyandu-lansia": Stage("lansia", 60, None, "an older person", _ADULT),
}


@dataclass(frozen=True)
class _Visit:
    """What every Observation of one row shares."""

    key: str
    when: str
    subject: dict[str, str]
    encounter: dict[str, str]
    performer: dict[str, str]


class PosyanduDewasaMapper(sessions.VisitSheet):
    """Rows of one of the three sheets -> Practitioner (kader) + Encounter + Observations."""

    def __init__(self, name: str, today: date | None = None) -> None:
        """KeyError when ``name`` is not one of STAGES."""
        super().__init__(today)
        self.stage = STAGES[name]
        self.name = name
        self.schema_path: Path = SCHEMAS / f"{name}.schema.json"

    def map(self, record: Record) -> list[Entry]:
        """RecordError for an impossible date, NIK, age, measure or screening (row and column)."""
        when, values, tb_result = self._check(record)
        person = conditional_reference("Patient", patient_query({"nik": record["nik"]}))
        sheet = self.name.removeprefix("posyandu-")
        key = f"{record['kode_posyandu']}:{when[0].isoformat()}:{sheet}:{record['nik']}"
        kader_query, kader = sessions.kader(record, "kode_posyandu")
        kader_ref = conditional_reference("Practitioner", kader_query)
        encounter = sessions.encounter(
            system=codes.KUNJUNGAN_POSYANDU, key=key, stage=self.stage.siklus,
            visit_class=codes.FIELD, visit_type="Kunjungan Posyandu",
            facility=record["kode_posyandu"], when=when[1], subject=person,
            participants=[{"type": sessions.KADER_ROLE, "individual": kader_ref}],
        )  # fmt: skip
        encounter_query = criteria(codes.KUNJUNGAN_POSYANDU, key)
        visit = _Visit(
            key, when[1], person, conditional_reference("Encounter", encounter_query), kader_ref
        )
        observations = [_measured(measure, value, record, visit) for measure, value in values]
        if "merokok" in record:
            observations.append(_smoking(record["merokok"], visit))
        if tb_result:
            observations.append(_tb_screening(tb_result, record, visit))
        return [
            conditional_create(kader, kader_query),
            conditional_update(encounter, encounter_query),
            *(conditional_update(o, identifier_criteria(o)) for o in observations),
        ]

    def _check(self, record: Record) -> tuple[tuple[date, str], _Values, str | None]:
        when = sessions.checked_visit_time(record, self.today)
        sessions.check_niks(record, "nik", "nik_kader")
        if "tanggal_lahir" in record:
            self._check_age(date.fromisoformat(record["tanggal_lahir"]), when[0])
        values = [(m, m.value(record, self.stage.who)) for m in self.stage.measures
                  if m.column in record]  # fmt: skip
        sessions.check_blood_pressure(values)
        tb_result = _tb_result(record)
        if not values and "merokok" not in record and tb_result is None:
            raise RecordError(
                0, "berat", "give at least one measure (berat, tinggi, lingkar_perut, sistolik, "
                "gula_darah) or screening (merokok, skrining_tbc or the tbc_ symptoms)",
            )  # fmt: skip
        return when, values, tb_result

    def _check_age(self, born: date, day: date) -> None:
        if born > day:
            raise RecordError(0, "tanggal_lahir", f"{born} is after the visit ({day})")
        age = sessions.years(born, day)
        too_old = self.stage.oldest is not None and age > self.stage.oldest
        if age < self.stage.youngest or too_old:
            raise RecordError(
                0, "tanggal_lahir", f"the person is {age} years old at the visit: "
                f"the {self.name} sheet is for {self.stage.ages}",
            )  # fmt: skip


def _tb_result(record: Record) -> str | None:
    """``positif``/``negatif`` from the symptoms, else as the sheet states it, else None.

    RecordError when only some symptoms are given (a screen left half-way says nothing), or
    when ``skrining_tbc`` contradicts the symptoms.
    """
    stated: str | None = record.get("skrining_tbc")
    asked = [column for column, *_ in TB_SYMPTOMS if column in record]
    if not asked:
        return stated
    if missing := [column for column, *_ in TB_SYMPTOMS if column not in record]:
        raise RecordError(
            0, missing[0], f"is required with {asked[0]}: give all four tbc_ symptoms or none"
        )
    present = [column for column in asked if record[column]]
    if stated == "positif" and not present:
        raise RecordError(0, "skrining_tbc", "positif, but every tbc_ symptom is tidak")
    if stated == "negatif" and present:
        raise RecordError(
            0, "skrining_tbc", f"negatif, but {present[0]} is ya (any symptom is positif)"
        )
    return "positif" if present else "negatif"


def _measured(measure: Measure, value: float, record: Record, visit: _Visit) -> dict[str, Any]:
    """The quantity Observation of one measure, with the height's position and the glucose's
    timing."""
    extra: tuple[dict[str, Any], ...] = ()
    if measure.column == "tinggi":
        extra = (sessions.POSITION["berdiri"],)
    elif measure is GLUCOSE and record["jenis_gula_darah"] == "puasa":
        extra = (FASTING,)
    observation = sessions.quantity_observation(
        measure, value, system=codes.PENGUKURAN_POSYANDU, key=f"{visit.key}:{measure.loinc}",
        when=visit.when, subject=visit.subject, encounter_ref=visit.encounter,
        performer=visit.performer, extra_codings=extra,
    )  # fmt: skip
    if measure is GLUCOSE:
        observation["code"]["text"] = GLUCOSE_TEXT[record["jenis_gula_darah"]]
    return observation


def _screening(
    code: dict[str, Any], text: str, category: tuple[str, str], visit: _Visit
) -> dict[str, Any]:
    """An Observation of an answer (no ILP profile covers it: base R4)."""
    return {
        "resourceType": "Observation",
        "identifier": [{"system": codes.SKRINING_POSYANDU, "value": f"{visit.key}:{code['code']}"}],
        "status": "final",
        "category": [codes.concept(codes.OBSERVATION_CATEGORY, *category)],
        "code": {"coding": [code], "text": text},
        "subject": visit.subject,
        "encounter": visit.encounter,
        "effectiveDateTime": visit.when,
        "performer": [visit.performer],
    }


def _smoking(answer: str, visit: _Visit) -> dict[str, Any]:
    observation = _screening(
        SMOKING_STATUS, "Status merokok", ("social-history", "Social History"), visit
    )
    code, display, text = SMOKING[answer]
    observation["valueCodeableConcept"] = codes.concept(codes.SNOMED, code, display, text=text)
    return observation


def _tb_screening(result: str, record: Record, visit: _Visit) -> dict[str, Any]:
    """The screen's result, with one component per symptom when the sheet gives them."""
    observation = _screening(TB_SCREENING, "Skrining gejala TBC", ("survey", "Survey"), visit)
    code, display, text = TB_RESULT[result]
    observation["valueCodeableConcept"] = codes.concept(codes.SNOMED, code, display, text=text)
    if "tbc_batuk" in record:
        observation["component"] = [
            {"code": codes.concept(codes.SNOMED, symptom, name, text=question),
             "valueBoolean": record[column]}
            for column, symptom, name, question in TB_SYMPTOMS
        ]  # fmt: skip
    return observation
