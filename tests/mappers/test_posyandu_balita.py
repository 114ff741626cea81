"""The Posyandu balita sheet: each row an Encounter at the Posyandu and its Observations, which
meet the ILP profiles; units are normalised, impossible rows refused with row and column, and
importing fasilitas, sasaran and the sheet twice changes nothing."""

from __future__ import annotations

import pytest

from mappers import RecordError, mapper_for
from mappers.importing import build_bundles, map_file
from mappers.posyandu_balita import MEASURES
from mappers.sessions import visit_time
from server.fhir.validation import Validator
from tests.mappers.conftest import mapper, sample, write
from tests.mappers.test_import_api import import_file, one, versions
from tests.validation.conftest import PROFILES_FOLDER, conformance_set

PROFILE = "https://fhir.ilp-gateway.id/StructureDefinition/"
KODE = "https://fhir.ilp-gateway.id/id/kode-fasilitas"
NIK = "https://fhir.kemkes.go.id/id/nik"
HEADER = (
    "tanggal,kode_posyandu,nik_kader,nama_kader,nik_anak,nik_ibu,jenis_kelamin,tanggal_lahir,"
    "berat,panjang_tinggi,cara_ukur,lingkar_kepala,lila\n"
)
GOOD = (
    "2026-11-10 08:35 WITA,posyandu-5260012001-1,5260014507880001,Baiq,5260014905230003,,P,"
    "2023-05-09,13.5,94,berdiri,48.5,15.3\n"
)


@pytest.fixture(scope="module")
def validator():
    return Validator(conformance_set(PROFILES_FOLDER))


def resources(path, today_mapper=None):
    mapped = map_file(today_mapper or mapper("posyandu-balita"), path)
    assert mapped.errors == []
    return [e["resource"] for entries in mapped.rows.values() for e in entries]


def test_registered_as_a_format():
    assert mapper_for("posyandu-balita").name == "posyandu-balita"


@pytest.mark.parametrize("extension", ["csv", "ndjson"])
def test_every_resource_meets_its_ilp_profile(validator, extension):
    mapped = resources(sample("posyandu-balita", extension))
    kinds = [r["resourceType"] for r in mapped]
    assert kinds.count("Encounter") == 6 and kinds.count("Observation") == 20
    assert kinds.count("Immunization") == 3 and kinds.count("MedicationAdministration") == 1
    for resource in mapped:
        issues = validator.validate(resource)
        assert [i for i in issues if i.severity in ("error", "fatal")] == [], resource
        if resource["resourceType"] in ("Encounter", "Observation"):
            assert resource["meta"]["profile"][0].startswith(PROFILE)


def test_the_encounter_is_a_field_visit_at_the_posyandu_with_the_kader():
    baby = [r for r in resources(sample("posyandu-balita", "csv")) if "2026-11-10" in str(r)]
    encounter = next(r for r in baby if r["resourceType"] == "Encounter")
    assert encounter["class"]["code"] == "FLD"
    assert encounter["type"][0]["coding"][0]["code"] == "balita"
    assert encounter["serviceType"]["coding"][0]["code"] == "2"
    assert encounter["serviceProvider"] == {
        "reference": f"Organization?identifier={KODE}|posyandu-5260012001-1"
    }
    assert encounter["subject"] == {
        "reference": "Patient?identifier=https://fhir.kemkes.go.id/id/nik-ibu|5260015403960001"
        "&birthdate=2026-10-20&gender=male"
    }
    assert encounter["participant"][0]["type"][0]["coding"][1]["code"] == "kader"
    assert encounter["period"]["start"] == "2026-11-10T08:35:00+08:00"
    observations = {
        r["code"]["coding"][0]["code"]: r for r in baby if r["resourceType"] == "Observation"
    }
    assert sorted(observations) == ["29463-7", "8302-2", "9843-4"]  # no LILA under 6 months
    weight, length = observations["29463-7"], observations["8302-2"]
    assert weight["valueQuantity"]["value"] == 4.25  # 4250 on the sheet: grams
    assert length["code"]["coding"][1]["code"] == "8306-3"  # telentang: lying
    for observation in observations.values():
        assert observation["subject"] == encounter["subject"]
        assert observation["effectiveDateTime"] == "2026-11-10T08:35:00+08:00"
        assert observation["performer"] == [encounter["participant"][0]["individual"]]
        assert observation["encounter"]["reference"].startswith("Encounter?identifier=")


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [("berat", 13.2, 13.2), ("berat", 13200, 13.2), ("berat", 4250, 4.25),
     ("panjang_tinggi", 93.1, 93.1), ("panjang_tinggi", 0.931, 93.1), ("lila", 15.2, 15.2)],
)  # fmt: skip
def test_units_are_normalised(column, value, expected):
    measure = next(m for m in MEASURES if m.column == column)
    assert measure.normalise(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2026-11-10", "2026-11-10"), ("10/11/2026 08:35 WITA", "2026-11-10T08:35:00+08:00"),
     ("2026-11-10 8.35 wib", "2026-11-10T08:35:00+07:00"),
     ("2026-11-10T08:35:10+0900", "2026-11-10T08:35:10+09:00"),
     ("2026-11-10 08:35 WIT", "2026-11-10T08:35:00+09:00")],
)  # fmt: skip
def test_visit_dates_keep_their_zone_as_an_offset(text, expected):
    assert visit_time(text)[1] == expected


def test_the_same_sheet_in_grams_and_metres_gives_the_same_bundle(tmp_path):
    metric = write(tmp_path, "a.csv", HEADER + GOOD)
    grams = write(tmp_path, "b.csv", HEADER + GOOD.replace("13.5,94,", "13500,0.94,"))
    assert build_bundles(map_file(mapper("posyandu-balita"), metric)) == build_bundles(
        map_file(mapper("posyandu-balita"), grams)
    )


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [((",13.5,", ",45,"), "berat", "45 (45 kg) is impossible for a child under 5"),
     ((",13.5,", ",0,"), "berat", "0"),
     ((",13.5,", ",200,"), "berat", "0.2 kg"),
     ((",94,", ",140,"), "panjang_tinggi", "30-130 cm"),
     ((",48.5,", ",70,"), "lingkar_kepala", "25-60 cm"),
     ((",15.3", ",30"), "lila", "5-25 cm"),
     ((",berdiri,", ",duduk,"), "cara_ukur", "is not one of"),
     ((",berdiri,", ",,"), "cara_ukur", "is required"),
     (("2023-05-09", "2021-05-09"), "tanggal_lahir", "5 years old"),
     (("2023-05-09", "2026-11-11"), "tanggal_lahir", "after the visit"),
     (("2026-11-10 08:35 WITA", "2026-11-24"), "tanggal", "in the future"),
     (("2026-11-10 08:35 WITA", "2026-11-10 08:35"), "tanggal", "give the time zone"),
     (("2026-11-10 08:35 WITA", "2026-11-10 08:35 +05:30"), "tanggal", "is not WIB"),
     (("2026-11-10 08:35 WITA", "kemarin"), "tanggal", "is not a date"),
     (("5260014905230003,", "5260014905230000,"), "nik_anak", "serial"),
     (("5260014905230003,,P", ",5260015403960001,"), "jenis_kelamin", "without nik_anak"),
     (("5260014905230003,", ","), "nik_anak", "give nik_anak or nik_ibu"),
     ((",5260014507880001,Baiq,", ",,,"), "nik_kader", "give nik_kader or nama_kader")],
)  # fmt: skip
def test_impossible_values_are_rejected_with_row_and_field(tmp_path, change, field, message):
    bad = GOOD.replace(*change)
    assert bad != GOOD
    path = write(tmp_path, "sheet.csv", HEADER + GOOD.replace("2026-11-10", "2026-10-13") + bad)
    mapped = map_file(mapper("posyandu-balita"), path)
    assert list(mapped.rows) == [2]  # the good row still maps
    assert [(e.row, e.field) for e in mapped.errors] == [(3, field)]
    assert message in mapped.errors[0].message
    assert str(mapped.errors[0]).startswith(f"row 3, {field}: ")


def test_a_second_row_for_the_same_visit_is_rejected_and_the_kader_written_once(tmp_path):
    other_child = GOOD.replace("5260014905230003,,P,2023-05-09", ",5260015403960001,L,2026-10-20")
    other_child = other_child.replace("13.5,94,berdiri,48.5,15.3", "4.3,54,telentang,37,")
    path = write(tmp_path, "s.csv", HEADER + GOOD + other_child + GOOD.replace(",15.3", ","))
    mapped = map_file(mapper("posyandu-balita"), path)
    assert [str(e) for e in mapped.errors] == ["row 4, record: same record as row 2"]
    (bundle,) = build_bundles(mapped)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Practitioner") == 1 and kinds.count("Encounter") == 2


def test_a_kader_named_differently_on_two_rows_is_rejected(tmp_path):
    other_day = GOOD.replace("2026-11-10", "2026-10-13").replace("Baiq", "Baiq Nur")
    mapped = map_file(
        mapper("posyandu-balita"), write(tmp_path, "s.csv", HEADER + GOOD + other_day)
    )
    assert [(e.row, e.field) for e in mapped.errors] == [(3, "")]
    assert "differs from row 2" in mapped.errors[0].message


def test_a_kader_without_nik_is_keyed_by_posyandu_and_name(tmp_path):
    text = HEADER + GOOD.replace("5260014507880001,Baiq", ",Baiq  Nurhayati")
    (kader, *_) = resources(write(tmp_path, "s.csv", text))
    assert kader["identifier"] == [
        {
            "system": "https://fhir.ilp-gateway.id/id/kader-posyandu",
            "value": "posyandu-5260012001-1:baiq nurhayati",
        }
    ]


@pytest.mark.parametrize("batch_size", [100, 2])
def test_fasilitas_sasaran_then_the_sheet_import_and_a_second_import_changes_nothing(
    ilp_client, batch_size
):
    import_file(ilp_client, "fasilitas", sample("fasilitas", "csv"))
    import_file(ilp_client, "sasaran", sample("sasaran", "csv"))
    statuses = import_file(
        ilp_client, "posyandu-balita", sample("posyandu-balita", "csv"), batch_size
    )
    assert statuses.count("201 Created") == 1 + 6 + 20 + 3 + 1
    types = ("Practitioner", "Encounter", "Observation", "Immunization", "MedicationAdministration")
    before = {t: versions(ilp_client, t) for t in types}
    # 20 measurements, and the 4 WHO z-scores derived from each of the 6 weighings
    assert [len(v) for v in before.values()] == [1, 6, 20 + 6 * 4, 3, 1]

    import_file(ilp_client, "posyandu-balita", sample("posyandu-balita", "ndjson"), batch_size)
    assert {t: versions(ilp_client, t) for t in types} == before

    posyandu = one(ilp_client, f"Organization?identifier={KODE}|posyandu-5260012001-1")
    putri = one(ilp_client, f"Patient?identifier={NIK}|5260014905230003")
    visits = ilp_client.get(
        f"/fhir/Encounter?subject=Patient/{putri['id']}&siklus-hidup=balita&_count=50"
    ).get_json()
    assert len(visits["entry"]) == 5
    encounter = visits["entry"][0]["resource"]
    assert encounter["serviceProvider"] == {"reference": f"Organization/{posyandu['id']}"}
    assert encounter["participant"][0]["individual"]["reference"].startswith("Practitioner/")
    weights = ilp_client.get(
        f"/fhir/Observation?subject=Patient/{putri['id']}&code=http://loinc.org|29463-7"
    ).get_json()
    assert sorted(e["resource"]["valueQuantity"]["value"] for e in weights["entry"]) == [
        12.9,
        13.1,
        13.2,
        13.4,
        13.5,
    ]


def test_a_kader_known_by_a_name_with_a_comma_is_found_again_as_one_value(ilp_client, tmp_path):
    """ "Hj. Rohani, S.Pd" must not become two search values (FHIR search splits on commas)."""
    import_file(ilp_client, "fasilitas", sample("fasilitas", "csv"))
    import_file(ilp_client, "sasaran", sample("sasaran", "csv"))
    text = sample("posyandu-balita", "csv").read_text(encoding="utf-8")
    text = text.replace("5260014507880001,Baiq Nurhayati", ',"Hj. Rohani, S.Pd"')
    path = write(tmp_path, "sheet.csv", text)
    import_file(ilp_client, "posyandu-balita", path)
    before = versions(ilp_client, "Practitioner")
    import_file(ilp_client, "posyandu-balita", path)
    assert versions(ilp_client, "Practitioner") == before and len(before) == 1
    kader = ilp_client.get(f"/fhir/Practitioner/{next(iter(before))}").get_json()
    assert kader["identifier"][0]["value"] == "posyandu-5260012001-1:hj. rohani, s.pd"


def test_a_morning_visit_in_papua_is_not_in_the_future_for_a_utc_server(monkeypatch):
    """07:30 WIT on 24 November is 22:30 UTC on the 23rd: the sheet's date is already today."""
    from datetime import UTC, datetime

    import mappers.base

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            utc = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)
            return utc.astimezone(tz) if tz else utc.replace(tzinfo=None)

    monkeypatch.setattr(mappers.base, "datetime", Clock)
    sheet = mapper_for("posyandu-balita")  # "today" from the clock, not fixed by the test
    record = {
        "tanggal": "2026-11-24 07:30 WIT", "kode_posyandu": "posyandu-9101012001-1",
        "nama_kader": "Mama Yuliana", "nik_anak": "9101014905230003",
        "tanggal_lahir": "2023-05-09", "berat": 13.5,
    }  # fmt: skip
    assert sheet.map(record)[1]["resource"]["period"]["start"] == "2026-11-24T07:30:00+09:00"
    with pytest.raises(RecordError, match="is in the future"):
        sheet.map({**record, "tanggal": "2026-11-25 07:30 WIT"})


def test_a_kader_kept_with_more_detail_is_not_overwritten_by_the_sheet(ilp_client):
    """The sheet names the kader; it must not erase what the Puskesmas keeps about her."""
    import_file(ilp_client, "fasilitas", sample("fasilitas", "csv"))
    import_file(ilp_client, "sasaran", sample("sasaran", "csv"))
    kept = {
        "resourceType": "Practitioner",
        "identifier": [{"system": NIK, "value": "5260014507880001"}],
        "name": [{"text": "Baiq Nurhayati, S.Pd"}],
        "telecom": [{"system": "phone", "value": "+6281234500001"}],
    }
    created = ilp_client.post("/fhir/Practitioner", json=kept)
    assert created.status_code == 201
    import_file(ilp_client, "posyandu-balita", sample("posyandu-balita", "csv"))
    (kader,) = [e["resource"] for e in ilp_client.get("/fhir/Practitioner").get_json()["entry"]]
    assert kader["meta"]["versionId"] == "1" and kader["telecom"] == kept["telecom"]
