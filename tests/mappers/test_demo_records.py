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


def test_each_posyandu_visit_of_an_under_five_is_one_row_with_its_measures(demo, exported):
    files, _ = exported
    visits = {
        r["id"] for r in demo
        if r["resourceType"] == "Encounter" and r["id"].endswith("-posyandu")
        and r["type"][0]["coding"][0]["code"] == "balita"
    }  # fmt: skip
    measures = Counter(
        r["code"]["coding"][0]["code"] for r in demo
        if r["resourceType"] == "Observation" and r["encounter"]["reference"][10:] in visits
    )  # fmt: skip
    sheet = map_file(mapper("posyandu-balita"), files["posyandu-balita"])
    resources = [e["resource"] for entries in sheet.rows.values() for e in entries]
    assert len(sheet.rows) == len(visits)
    assert (
        Counter(
            r["code"]["coding"][0]["code"] for r in resources if r["resourceType"] == "Observation"
        )
        == measures
    )
    kinds = Counter(r["resourceType"] for r in resources)
    assert kinds["Immunization"] > 0 and kinds["MedicationAdministration"] > 0
