"""The demo district written as registers and sheets: every row passes its format's checks,
and the rows carry what the FHIR demo holds (one resident per Patient, one sheet row per
Posyandu visit of an under-five, each measure once)."""

from __future__ import annotations

from collections import Counter

import pytest

from mappers.demo_records import write_files
from mappers.importing import map_file
from server.demo import district
from server.demo.district import PRESETS
from tests.mappers.conftest import mapper


@pytest.fixture(scope="module")
def demo():
    return list(district.generate(PRESETS["small"], 1))


@pytest.fixture(scope="module")
def exported(demo, tmp_path_factory):
    return write_files(demo, tmp_path_factory.mktemp("demo"))


def test_every_exported_row_maps_without_error(exported):
    files, counts = exported
    for name, path in files.items():
        mapped = map_file(mapper(name), path)
        assert [str(e) for e in mapped.errors] == [], name
        assert len(mapped.rows) == counts[name] > 0


def test_the_registers_hold_every_facility_and_resident(demo, exported):
    files, _ = exported
    patients = [r for r in demo if r["resourceType"] == "Patient"]
    facilities = [
        r for r in demo
        if r["resourceType"] == "Organization" and not r["id"].startswith("dinkes-")
    ]  # fmt: skip
    sasaran = map_file(mapper("sasaran"), files["sasaran"])
    fasilitas = map_file(mapper("fasilitas"), files["fasilitas"])
    assert len(sasaran.rows) == len(patients)
    assert len(fasilitas.rows) == len(facilities)
    births = Counter(p["birthDate"] for p in patients)
    mapped = [e["resource"] for entries in sasaran.rows.values() for e in entries]
    assert Counter(p["birthDate"] for p in mapped) == births


def test_every_demo_visit_is_one_sheet_row_with_every_measure(demo, exported):
    files, counts = exported
    visit_rows = sum(n for name, n in counts.items() if name not in ("fasilitas", "sasaran"))
    assert visit_rows == sum(r["resourceType"] == "Encounter" for r in demo)
    measures = Counter()
    for resource in demo:
        if resource["resourceType"] == "Observation":
            for part in [resource, *resource.get("component", [])]:
                if "valueQuantity" in part:
                    measures[part["code"]["coding"][0]["code"]] += 1
    imported = Counter()
    for name, path in files.items():
        for entries in map_file(mapper(name), path).rows.values():
            for entry in entries:
                if entry["resource"]["resourceType"] == "Observation":
                    imported[entry["resource"]["code"]["coding"][0]["code"]] += 1
    assert imported == measures  # the blood-pressure panel comes back as two Observations


def test_each_sheet_takes_the_visits_of_its_place_and_stage(demo, exported):
    files, counts = exported
    assert set(counts) == {
        "fasilitas", "sasaran", "posyandu-balita", "posyandu-produktif", "posyandu-lansia",
        "posyandu-ibu-hamil", "kunjungan", "kunjungan-rumah",
    }  # fmt: skip
    balita = map_file(mapper("posyandu-balita"), files["posyandu-balita"])
    kinds = Counter(e["resource"]["resourceType"] for es in balita.rows.values() for e in es)
    assert kinds["Immunization"] > 0 and kinds["MedicationAdministration"] > 0
    home = [e["resource"] for es in map_file(mapper("kunjungan-rumah"),
            files["kunjungan-rumah"]).rows.values() for e in es]  # fmt: skip
    assert {r["class"]["code"] for r in home if r["resourceType"] == "Encounter"} == {"HH"}
