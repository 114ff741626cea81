"""Immunisations and vitamin A on the Posyandu balita sheet: what a kader writes in the
imunisasi cell is read as antigens and doses of the national schedule, the vitamin A capsule
follows the child's age, and both hang on the visit."""

from __future__ import annotations

from datetime import date

import pytest

from mappers.importing import map_file
from mappers.pemberian import vaccines_given, vitamin_a_capsule
from tests.mappers.conftest import mapper, sample, write


def given(text):
    return [(vaccine.key, dose) for vaccine, dose in vaccines_given(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("HB0, BCG, Polio 1", [("HB0", 1), ("BCG", 1), ("Polio", 1)]),
     ("DPT-HB-Hib 2; Polio 3 ; PCV 2;RV 2", [("DPT-HB-Hib", 2), ("Polio", 3), ("PCV", 2),
                                             ("RV", 2)]),
     ("pentabio 1, bOPV2, IPV 1", [("DPT-HB-Hib", 1), ("Polio", 2), ("IPV", 1)]),
     ("Campak-Rubela 1", [("MR", 1)]), ("mr2", [("MR", 2)]), ("", [])],
)  # fmt: skip
def test_the_sheet_spellings_are_read_as_antigens_and_doses(text, expected):
    assert given(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("Polio 5", "'Polio 5': Polio has 4 dose(s)"),
     ("BCG 2", "'BCG 2': BCG has 1 dose(s)"),
     ("Polio 1, polio1", "'polio1' is given twice"),
     ("Vaksin X", "'Vaksin X' is not an immunisation of the national schedule: expected HB0, "
      "BCG, Polio 1-4, IPV 1-2, DPT-HB-Hib 1-4, PCV 1-3, RV 1-3, MR 1-2")],
)  # fmt: skip
def test_unknown_antigens_and_doses_are_refused(text, message):
    with pytest.raises(Exception) as error:
        vaccines_given(text)
    assert (error.value.field, error.value.message) == ("imunisasi", message)


@pytest.mark.parametrize(
    ("born", "capsule"),
    [(date(2026, 5, 1), ("biru", 100_000)), (date(2025, 11, 24), ("biru", 100_000)),
     (date(2025, 11, 23), ("merah", 200_000)), (date(2022, 1, 1), ("merah", 200_000))],
)  # fmt: skip
def test_the_capsule_follows_the_age_in_months(born, capsule):
    assert vitamin_a_capsule(born, date(2026, 11, 23)) == capsule


def test_no_capsule_before_six_months():
    with pytest.raises(Exception) as error:
        vitamin_a_capsule(date(2026, 6, 1), date(2026, 11, 23))
    assert error.value.message == (
        "vitamin A capsules are given from 6 months of age: the child is 5 months old"
    )


def test_the_newborn_row_gives_three_immunizations_at_the_posyandu_visit():
    entries = map_file(mapper("posyandu-balita"), sample("posyandu-balita", "csv")).rows[7]
    encounter = next(e for e in entries if e["resource"]["resourceType"] == "Encounter")
    shots = [e["resource"] for e in entries if e["resource"]["resourceType"] == "Immunization"]
    assert [(s["vaccineCode"]["coding"][0]["code"], s["protocolApplied"][0]) for s in shots] == [
        ("08", {"series": "HB0", "doseNumberPositiveInt": 1}),
        ("19", {"series": "BCG", "doseNumberPositiveInt": 1}),
        ("178", {"series": "Polio", "doseNumberPositiveInt": 1}),
    ]
    for shot in shots:
        assert shot["patient"] == encounter["resource"]["subject"]
        assert shot["encounter"] == {"reference": encounter["request"]["url"]}
        assert shot["location"] == encounter["resource"]["location"][0]["location"]
        assert shot["occurrenceDateTime"] == "2026-11-10T08:35:00+08:00"
        assert shot["status"] == "completed" and shot["primarySource"] is True


def test_vitamin_a_is_a_medication_administration_by_the_kader():
    entries = map_file(mapper("posyandu-balita"), sample("posyandu-balita", "csv")).rows[4]
    (capsule,) = [
        e["resource"]
        for e in entries
        if e["resource"]["resourceType"] == "MedicationAdministration"
    ]
    encounter = next(e for e in entries if e["resource"]["resourceType"] == "Encounter")
    assert capsule["medicationCodeableConcept"]["coding"][0]["code"] == "A11CA01"
    assert capsule["dosage"]["text"] == "Kapsul vitamin A merah (200.000 IU)"
    assert capsule["dosage"]["dose"]["value"] == 200_000
    assert capsule["context"] == {"reference": encounter["request"]["url"]}
    assert capsule["performer"] == [
        {"actor": encounter["resource"]["participant"][0]["individual"]}
    ]


def test_a_row_with_an_impossible_vitamin_a_is_rejected_with_its_column(tmp_path):
    text = sample("posyandu-balita", "csv").read_text(encoding="utf-8")
    newborn = text.splitlines()[-1]
    path = write(tmp_path, "sheet.csv", text.replace(newborn, newborn.replace(",tidak,", ",ya,")))
    mapped = map_file(mapper("posyandu-balita"), path)
    assert [(e.row, e.field) for e in mapped.errors] == [(7, "vitamin_a")]
    assert "the child is 0 months old" in mapped.errors[0].message
