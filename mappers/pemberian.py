"""What a Posyandu gives a child at a visit: immunisations and vitamin A capsules.

Immunisations become Immunization resources coded in CVX, the code system the R4 vaccine-code
ValueSet names and SATUSEHAT accepts beside KFA (KFA product codes need the vial's brand, which
a kader's sheet does not record).  Vitamin A becomes a MedicationAdministration: the blue
capsule (100,000 IU) from 6 to 11 months, the red one (200,000 IU) from 12 to 59 months, as
the national programme gives them each February and August.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from mappers import codes
from mappers.base import Record, RecordError

CVX = "http://hl7.org/fhir/sid/cvx"
ATC = "http://www.whocc.no/atc"
ORAL = codes.concept("http://snomed.info/sct", "26643006", "Oral route", text="Diminum")


@dataclass(frozen=True)
class Vaccine:
    """An antigen of the national schedule: as written on sheets, and its doses (0: one)."""

    key: str
    cvx: str
    display: str  # CVX short description
    text: str  # as the Posyandu book names it
    doses: int
    spellings: tuple[str, ...]  # lower case, without spaces, hyphens or dots


VACCINES = (
    Vaccine("HB0", "08", "Hep B, adolescent or pediatric", "Hepatitis B dosis lahir (HB0)", 0,
            ("hb0", "hbo", "hepb0")),
    Vaccine("BCG", "19", "BCG", "BCG", 0, ("bcg",)),
    Vaccine("Polio", "178", "OPV bivalent", "Polio tetes (bOPV)", 4, ("polio", "opv", "bopv")),
    Vaccine("IPV", "10", "IPV", "Polio suntik (IPV)", 2, ("ipv",)),
    Vaccine("DPT-HB-Hib", "198", "DTP-hepB-Hib Pentavalent Non-US", "DPT-HB-Hib (pentavalen)", 4,
            ("dpthbhib", "pentavalen", "pentabio", "dpt")),
    Vaccine("PCV", "152", "Pneumococcal Conjugate, unspecified formulation", "Pneumokokus (PCV)",
            3, ("pcv",)),
    Vaccine("RV", "122", "rotavirus, unspecified formulation", "Rotavirus", 3, ("rv", "rotavirus")),
    Vaccine("MR", "04", "M/R", "Campak-Rubela (MR)", 2, ("mr", "campakrubela", "campak")),
)  # fmt: skip
_BY_SPELLING = {spelling: vaccine for vaccine in VACCINES for spelling in vaccine.spellings}
_DOSE = re.compile(r"^(?P<name>[a-z]+?)(?P<dose>[1-9])?$")
_KNOWN = ", ".join(f"{v.key} 1-{v.doses}" if v.doses else v.key for v in VACCINES)


def vaccines_given(text: str) -> list[tuple[Vaccine, int]]:
    """The (vaccine, dose) pairs of an ``imunisasi`` cell: "BCG, Polio 1; DPT-HB-Hib 1"."""
    given: list[tuple[Vaccine, int]] = []
    for token in filter(None, (t.strip() for t in re.split(r"[,;]", text))):
        spelt = re.sub(r"[\s.\-]", "", token.lower())
        vaccine, dose = _BY_SPELLING.get(spelt), 1
        if vaccine is None and (match := _DOSE.match(spelt)):
            vaccine, dose = _BY_SPELLING.get(match["name"]), int(match["dose"] or 1)
        if vaccine is None:
            raise RecordError(0, "imunisasi", f"{token!r} is not an immunisation of the national "
                              f"schedule: expected {_KNOWN}")  # fmt: skip
        if dose > max(vaccine.doses, 1):
            raise RecordError(0, "imunisasi", f"{token!r}: {vaccine.key} has "
                              f"{max(vaccine.doses, 1)} dose(s)")  # fmt: skip
        if any(v is vaccine and d == dose for v, d in given):
            raise RecordError(0, "imunisasi", f"{token!r} is given twice")
        given.append((vaccine, dose))
    return given


def months(born: date, day: date) -> int:
    """Age in whole months on ``day``."""
    return (day.year - born.year) * 12 + day.month - born.month - (day.day < born.day)


def vitamin_a_capsule(born: date, day: date) -> tuple[str, int]:
    """The capsule (colour, IU) for a child's age; RecordError when too young."""
    age = months(born, day)
    if age < 6:
        raise RecordError(0, "vitamin_a", f"vitamin A capsules are given from 6 months of age: "
                          f"the child is {age} months old")  # fmt: skip
    return ("biru", 100_000) if age < 12 else ("merah", 200_000)


def immunization(
    vaccine: Vaccine, dose: int, *, key: str, when: str, child: dict[str, str],
    encounter_ref: dict[str, str], location: dict[str, str],
) -> dict[str, Any]:  # fmt: skip
    """An Immunization given at the visit, found again by ``key``."""
    return {
        "resourceType": "Immunization",
        "identifier": [{"system": codes.IMUNISASI_POSYANDU, "value": key}],
        "status": "completed",
        "vaccineCode": codes.concept(CVX, vaccine.cvx, vaccine.display, text=vaccine.text),
        "patient": child,
        "encounter": encounter_ref,
        "occurrenceDateTime": when,
        "primarySource": True,
        "location": location,
        "protocolApplied": [{"series": vaccine.key, "doseNumberPositiveInt": dose}],
    }


def vitamin_a(
    record: Record, *, key: str, day: date, when: str, child: dict[str, str],
    encounter_ref: dict[str, str], kader_ref: dict[str, str],
) -> dict[str, Any]:  # fmt: skip
    """The vitamin A capsule given at the visit, found again by ``key``."""
    colour, units = vitamin_a_capsule(date.fromisoformat(record["tanggal_lahir"]), day)
    text = f"Kapsul vitamin A {colour} ({units:,} IU)".replace(",", ".")
    return {
        "resourceType": "MedicationAdministration",
        "identifier": [{"system": codes.VITAMIN_A_POSYANDU, "value": key}],
        "status": "completed",
        "medicationCodeableConcept": codes.concept(ATC, "A11CA01", "retinol (vit A)", text=text),
        "subject": child,
        "context": encounter_ref,
        "effectiveDateTime": when,
        "performer": [{"actor": kader_ref}],
        "dosage": {
            "text": text,
            "route": ORAL,
            "dose": {"value": units, "unit": "IU", "system": codes.UCUM, "code": "[iU]"},
        },
    }
