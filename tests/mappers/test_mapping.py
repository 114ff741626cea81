"""The sample registers map to entries that meet the ILP profiles; impossible rows are refused
with their row and field."""

from __future__ import annotations

import copy

import pytest

from mappers.importing import build_bundles, map_file
from server.fhir.validation import Validator
from tests.mappers.conftest import mapper, sample, write
from tests.validation.conftest import PROFILES_FOLDER, conformance_set

PROFILE = "https://fhir.ilp-gateway.id/StructureDefinition/"


@pytest.fixture(scope="module")
def validator():
    return Validator(conformance_set(PROFILES_FOLDER))


@pytest.mark.parametrize("extension", ["csv", "ndjson"])
def test_sample_maps_without_errors_to_resources_meeting_the_ilp_profiles(
    validator, format_name, extension
):
    mapped = map_file(mapper(format_name), sample(format_name, extension))
    assert mapped.errors == []
    assert len(mapped.rows) == len(sample(format_name, "ndjson").read_text().splitlines())
    for entries in mapped.rows.values():
        for entry in entries:
            errors = [
                i for i in validator.validate(entry["resource"]) if i.severity in ("error", "fatal")
            ]
            assert errors == [], entry["request"]["url"]


def test_csv_and_ndjson_samples_give_the_same_bundles(format_name):
    bundles = [
        build_bundles(map_file(mapper(format_name), sample(format_name, ext)))
        for ext in ("csv", "ndjson")
    ]
    assert bundles[0] == bundles[1]


def test_mapping_is_deterministic(format_name):
    first, again = (
        build_bundles(map_file(mapper(format_name), sample(format_name, "csv"))) for _ in range(2)
    )
    assert first == again


def test_facilities_claim_the_profile_of_their_kind_and_refer_to_the_parent_by_code():
    mapped = map_file(mapper("fasilitas"), sample("fasilitas", "csv"))
    organizations = {
        e["resource"]["identifier"][0]["value"]: e["resource"]
        for entries in mapped.rows.values()
        for e in entries
        if e["resource"]["resourceType"] == "Organization"
    }
    assert organizations["pkm-526001"]["meta"]["profile"] == [f"{PROFILE}ilp-puskesmas"]
    polindes = organizations["pustu-5260012002"]
    assert polindes["meta"]["profile"] == [f"{PROFILE}ilp-pustu"]
    assert polindes["type"][1]["coding"][0]["code"] == "polindes"
    assert polindes["partOf"] == {
        "reference": "Organization?identifier=https://fhir.ilp-gateway.id/id/kode-fasilitas|pkm-526001"
    }
    assert organizations["posyandu-5260012002-1"]["active"] is False


def test_parents_come_before_children_in_the_bundle():
    (bundle,) = build_bundles(map_file(mapper("fasilitas"), sample("fasilitas", "csv")))
    urls = [e["request"]["url"].rsplit("|", 1)[1] for e in bundle["entry"]][::2]
    assert urls.index("pkm-526001") < urls.index("pustu-5260012001")
    assert urls.index("pustu-5260012001") < urls.index("posyandu-5260012001-1")


def test_a_baby_without_nik_is_keyed_by_the_mothers_nik_and_refers_to_her():
    mapped = map_file(mapper("sasaran"), sample("sasaran", "csv"))
    (baby,) = mapped.rows[2]
    assert baby["request"]["url"] == (
        "Patient?identifier=https://fhir.kemkes.go.id/id/nik-ibu|5260015403960001"
        "&birthdate=2026-10-20&gender=male"
    )
    assert baby["resource"]["extension"][0]["valueReference"] == {
        "reference": "Patient?identifier=https://fhir.kemkes.go.id/id/nik|5260015403960001"
    }
    (bundle,) = build_bundles(mapped)
    assert bundle["entry"][-1] == baby  # after the mother


FACILITY = "kode,nama,jenis,kode_induk,kode_desa,lintang,bujur\n"
RESIDENT = "nik,nama,jenis_kelamin,tanggal_lahir,nik_ibu,kode_desa\n"
GOOD_FACILITY = "pustu-1,Pustu Satu,pustu,pkm-1,5260012001,-8.6,116.5\n"
GOOD_RESIDENT = "5260015403960001,Siti,P,1996-03-14,,5260012001\n"


@pytest.mark.parametrize(
    ("format_name", "row", "field", "message"),
    [
        ("sasaran", "526001540396001,Siti,P,1996-03-14,,5260012001", "nik", "16 digits"),
        ("sasaran", "5260015403960001,Siti,P,1996-03-14,,52600120", "kode_desa", "10 digits"),
        ("sasaran", "5260015403960001,Siti,P,2027-01-01,,5260012001", "tanggal_lahir",
         "2027-01-01 is in the future"),
        ("sasaran", "5260015403960001,Siti,P,31/02/2024,,5260012001", "tanggal_lahir",
         "'31/02/2024' is not a valid date"),
        ("sasaran", "5260013303960001,Siti,P,1996-03-14,,5260012001", "nik",
         "digits 7-8 must be the day of birth"),
        ("sasaran", "0060015403960001,Siti,P,1996-03-14,,5260012001", "nik", "province"),
        ("sasaran", ",Bayi,L,2026-10-01,5260011403960001,5260012001", "nik_ibu",
         "a woman's day of birth"),
        ("sasaran", ",Bayi,L,2026-10-01,,5260012001", "nik", "give nik or nik_ibu"),
        ("sasaran", "5260015403960001,Siti,X,1996-03-14,,5260012001", "jenis_kelamin",
         "is not one of"),
        ("sasaran", "5260015403960001,Siti,P,1996-03-14,,0060012001", "kode_desa", "province"),
        ("fasilitas", "pustu-1,Pustu Satu,pustu,pkm-1,5260012001,-8.6,-116.5", "bujur",
         "94.5 to 141.5"),
        ("fasilitas", "pustu-1,Pustu Satu,pustu,,5260012001,-8.6,116.5", "kode_induk",
         "is required"),
        ("fasilitas", "pustu-1,Pustu Satu,klinik,pkm-1,5260012001,-8.6,116.5", "jenis",
         "is not one of"),
        ("fasilitas", "pustu-1,Pustu Satu,pustu,pkm-1,5260012001,-8.6,", "bujur", "is required"),
        ("fasilitas", "pustu-1,Pustu Satu,pustu,pustu-1,5260012001,-8.6,116.5", "kode_induk",
         "its own parent"),
        ("fasilitas", "pkm 1,Puskesmas,puskesmas,,5260012001,-8.6,116.5", "kode",
         "letters, digits"),
    ],
)  # fmt: skip
def test_impossible_values_are_rejected_with_row_and_field(
    tmp_path, format_name, row, field, message
):
    header, good = (FACILITY, GOOD_FACILITY) if format_name == "fasilitas" else (
        RESIDENT, GOOD_RESIDENT)  # fmt: skip
    path = write(tmp_path, "register.csv", header + good + row + "\n")
    mapped = map_file(mapper(format_name), path)
    assert list(mapped.rows) == [2]  # the good row still maps
    assert [(e.row, e.field) for e in mapped.errors] == [(3, field)]
    assert message in mapped.errors[0].message
    assert str(mapped.errors[0]).startswith(f"row 3, {field}: ")


def test_swapped_coordinates_are_rejected_on_both_fields(tmp_path):
    path = write(
        tmp_path, "r.csv", FACILITY + "pustu-1,Pustu Satu,pustu,pkm-1,5260012001,116.5,-8.6\n"
    )
    errors = map_file(mapper("fasilitas"), path).errors
    assert [(e.row, e.field) for e in errors] == [(2, "bujur"), (2, "lintang")]
    assert "-11.5 to 6.5 (Indonesia)" in errors[1].message


def test_an_unknown_column_is_rejected(tmp_path):
    path = write(tmp_path, "r.csv", FACILITY.strip() + ",warna\n" + GOOD_FACILITY.strip() + ",x\n")
    (error,) = map_file(mapper("fasilitas"), path).errors
    assert error.row == 2 and "unknown column" in error.message and "warna" in error.message


def test_a_second_row_for_the_same_resident_is_rejected(tmp_path):
    path = write(tmp_path, "r.csv", RESIDENT + GOOD_RESIDENT + GOOD_RESIDENT)
    mapped = map_file(mapper("sasaran"), path)
    assert list(mapped.rows) == [2]
    assert [str(e) for e in mapped.errors] == ["row 3, record: same record as row 2"]


def test_batches_hold_at_most_batch_size_rows():
    mapped = map_file(mapper("fasilitas"), sample("fasilitas", "csv"))
    bundles = build_bundles(mapped, batch_size=4)
    assert [len(b["entry"]) for b in bundles] == [8, 4]
    assert all(b["type"] == "transaction" for b in bundles)
    assert copy.deepcopy(bundles) == build_bundles(mapped, batch_size=4)


def test_a_line_that_is_not_json_is_rejected_and_the_rows_after_it_still_map(tmp_path):
    lines = sample("sasaran", "ndjson").read_text(encoding="utf-8").splitlines()
    broken = [lines[0], "{nik: 1", *lines[1:]]
    mapped = map_file(mapper("sasaran"), write(tmp_path, "s.ndjson", "\n".join(broken) + "\n"))
    assert [(e.row, e.message[:8]) for e in mapped.errors] == [(2, "not JSON")]
    assert sorted(mapped.rows) == [1, *range(3, len(broken) + 1)]
