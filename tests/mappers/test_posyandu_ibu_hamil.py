"""The pregnant women's session sheet: each row an Encounter at the Posyandu or Pustu with its
Observations (blood pressure as two, as SATUSEHAT takes it) and the iron tablets given; every
resource meets its ILP profile or base R4, impossible rows are refused with row and column, and
importing fasilitas, sasaran and the sheet twice changes nothing."""

from __future__ import annotations

import pytest

from mappers import mapper_for
from mappers.importing import build_bundles, map_file
from server.fhir.validation import Validator
from tests.mappers.conftest import mapper, sample, write
from tests.mappers.test_import_api import import_file, one, versions
from tests.validation.conftest import PROFILES_FOLDER, conformance_set

PROFILE = "https://fhir.ilp-gateway.id/StructureDefinition/"
KODE = "https://fhir.ilp-gateway.id/id/kode-fasilitas"
NIK = "https://fhir.kemkes.go.id/id/nik"
SITI = f"Patient?identifier={NIK}|5260015403960001"
BIDAN = {"reference": f"Practitioner?identifier={NIK}|5260016208900002"}
KADER = {"reference": f"Practitioner?identifier={NIK}|5260014507880001"}
TABLETS = "MedicationDispense"  # the iron tablets handed over
HEADER = (
    "tanggal,kode_fasilitas,tempat,nik_bidan,nama_bidan,nik_kader,nama_kader,nik_ibu,"
    "usia_kehamilan,berat,lila,sistolik,diastolik,hb,tablet_tambah_darah\n"
)
GOOD = (
    "2026-11-10 09:15 WITA,posyandu-5260012001-1,posyandu,5260016208900002,Rina,"
    "5260014507880001,Baiq,5260015403960001,12,55.5,24.5,115,75,11.5,30\n"
)
# What each code of the sheet claims: an ILP profile, or none (base R4).
CLAIMS = {
    "11884-4": None,
    "29463-7": "ilp-obs-body-weight",
    "56072-2": "ilp-obs-muac",
    "8480-6": "ilp-obs-bp-systolic",
    "8462-4": "ilp-obs-bp-diastolic",
    "718-7": "ilp-obs-hemoglobin",
}


@pytest.fixture(scope="module")
def validator():
    return Validator(conformance_set(PROFILES_FOLDER))


def resources(path):
    mapped = map_file(mapper("posyandu-ibu-hamil"), path)
    assert mapped.errors == []
    return [e["resource"] for entries in mapped.rows.values() for e in entries]


def visit(day):
    """The Encounter, its Observations by code and its iron tablets of a sample day."""
    found = [r for r in resources(sample("posyandu-ibu-hamil", "csv")) if day in str(r)]
    encounter = next(r for r in found if r["resourceType"] == "Encounter")
    observations = {
        r["code"]["coding"][0]["code"]: r for r in found if r["resourceType"] == "Observation"
    }
    tablets = next((r for r in found if r["resourceType"] == TABLETS), None)
    return encounter, observations, tablets


def category(observation):
    return observation["category"][0]["coding"][0]["code"]


def test_registered_as_a_format():
    assert mapper_for("posyandu-ibu-hamil").name == "posyandu-ibu-hamil"


@pytest.mark.parametrize("extension", ["csv", "ndjson"])
def test_every_resource_meets_its_ilp_profile_or_base_r4(validator, extension):
    mapped = resources(sample("posyandu-ibu-hamil", extension))
    kinds = [r["resourceType"] for r in mapped]
    assert kinds.count("Encounter") == 6 and kinds.count("Observation") == 31
    assert kinds.count(TABLETS) == 6
    for resource in mapped:
        issues = validator.validate(resource)
        assert [i for i in issues if i.severity in ("error", "fatal")] == [], resource
        if resource["resourceType"] == "Encounter":
            assert resource["meta"]["profile"] == [f"{PROFILE}ilp-encounter"]
        elif resource["resourceType"] == "Observation":
            claim = CLAIMS[resource["code"]["coding"][0]["code"]]
            assert resource.get("meta", {}).get("profile") == (
                [f"{PROFILE}{claim}"] if claim else None
            )


def test_a_posyandu_visit_is_a_field_visit_with_the_bidan_in_charge_and_the_kader():
    encounter, observations, tablets = visit("2026-03-10")
    assert encounter["class"]["code"] == "FLD"
    assert encounter["type"][0]["coding"][0]["code"] == "ibu"
    assert encounter["type"][1] == {"text": "Kunjungan Posyandu"}
    assert encounter["serviceType"]["coding"][0]["code"] == "2"
    assert encounter["subject"] == {"reference": SITI}
    assert encounter["identifier"] == [
        {
            "system": "https://fhir.ilp-gateway.id/id/kunjungan-ibu-hamil",
            "value": "posyandu-5260012001-1:2026-03-10:5260015403960001",
        }
    ]
    roles = [[c["code"] for c in p["type"][0]["coding"]] for p in encounter["participant"]]
    assert roles == [["ATND", "bidan"], ["PART", "kader"]]
    assert [p["individual"] for p in encounter["participant"]] == [BIDAN, KADER]
    assert encounter["serviceProvider"] == {
        "reference": f"Organization?identifier={KODE}|posyandu-5260012001-1"
    }
    assert encounter["period"] == {
        "start": "2026-03-10T09:15:00+08:00",
        "end": "2026-03-10T09:15:00+08:00",
    }
    assert sorted(observations) == sorted(CLAIMS)
    for observation in observations.values():
        assert observation["subject"] == {"reference": SITI}
        assert observation["effectiveDateTime"] == "2026-03-10T09:15:00+08:00"
        assert observation["performer"] == [BIDAN]  # the bidan measures, not the kader
        assert observation["encounter"] == {
            "reference": "Encounter?identifier=https://fhir.ilp-gateway.id/id/kunjungan-ibu-hamil"
            "|posyandu-5260012001-1:2026-03-10:5260015403960001"
        }
        assert observation["identifier"][0]["system"] == (
            "https://fhir.ilp-gateway.id/id/pemeriksaan-ibu-hamil"
        )


def test_a_pustu_visit_is_ambulatory_and_each_measure_has_its_code_unit_and_category():
    encounter, observations, tablets = visit("2026-07-14")
    assert encounter["class"]["code"] == "AMB"
    assert encounter["type"][1] == {"text": "Kunjungan Pustu"}
    assert encounter["location"] == [
        {"location": {"reference": f"Location?identifier={KODE}|pustu-5260012001"}}
    ]
    assert [p["individual"] for p in encounter["participant"]] == [BIDAN]
    values = {
        code: (o["valueQuantity"]["value"], o["valueQuantity"]["code"], category(o))
        for code, o in observations.items()
    }
    assert values == {
        "11884-4": (26, "wk", "exam"),
        "29463-7": (58.2, "kg", "vital-signs"),
        "56072-2": (24.8, "cm", "vital-signs"),
        "8480-6": (120, "mm[Hg]", "vital-signs"),
        "8462-4": (80, "mm[Hg]", "vital-signs"),
        "718-7": (10.6, "g/dL", "laboratory"),
    }
    gestational_age = observations["11884-4"]["code"]["coding"]
    assert [c["code"] for c in gestational_age] == ["11884-4", "18185-9"]
    assert tablets["identifier"][0]["value"].endswith(":2026-07-14:5260015403960001:ttd")
    assert tablets["quantity"] == {
        "value": 60, "unit": "tablet", "system": "http://unitsofmeasure.org", "code": "{tbl}"
    }  # fmt: skip
    assert tablets["medicationCodeableConcept"]["coding"][0]["code"] == "B03AD"
    assert (tablets["status"], tablets["whenHandedOver"]) == (
        "completed",
        encounter["period"]["start"],
    )
    assert tablets["context"]["reference"].startswith("Encounter?identifier=")


def test_without_a_bidan_the_kader_is_the_performer_and_an_empty_tempat_is_a_posyandu():
    encounter, observations, tablets = visit("2026-08-11")
    assert [p["individual"] for p in encounter["participant"]] == [KADER]
    assert {o["performer"][0]["reference"] for o in observations.values()} == {KADER["reference"]}
    assert tablets["performer"] == [{"actor": KADER}]
    assert sorted(observations) == ["11884-4", "29463-7", "56072-2"]
    assert visit("2026-06-09")[0]["class"]["code"] == "FLD"  # tempat left empty


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [((",55.5,", ",555,"), "berat",
      "555 (555 kg) is impossible for a pregnant woman: expected 30-200 kg"),
     ((",24.5,", ",245,"), "lila",
      "245 (245 cm) is impossible for a pregnant woman: expected 15-50 cm"),
     ((",12,", ",50,"), "usia_kehamilan",
      "50 (50 wk) is impossible for a pregnant woman: expected 1-45 wk"),
     ((",11.5,", ",115,"), "hb",
      "115 (115 g/dL) is impossible for a pregnant woman: expected 3-20 g/dL"),
     ((",115,75,", ",300,75,"), "sistolik",
      "300 (300 mm[Hg]) is impossible for a pregnant woman: expected 60-260 mm[Hg]"),
     ((",115,75,", ",115,20,"), "diastolik",
      "20 (20 mm[Hg]) is impossible for a pregnant woman: expected 30-160 mm[Hg]"),
     ((",115,75,", ",75,115,"), "diastolik",
      "115 mm[Hg] is not below sistolik 75 mm[Hg]: are the columns swapped?"),
     ((",115,75,", ",115,,"), "diastolik", "is required with sistolik"),
     ((",30\n", ",120\n"), "tablet_tambah_darah",
      "120 tablets is impossible for one visit: expected 0-90"),
     ((",30\n", ",-1\n"), "tablet_tambah_darah", "-1 does not fit: number of iron and folic "
      "acid tablets (tablet tambah darah, TTD) given"),
     ((",30\n", ",2.5\n"), "tablet_tambah_darah", "'2.5' is not of type 'integer'"),
     ((",12,55.5,24.5,115,75,11.5,30", ",,,,,,,"), "usia_kehamilan",
      "give at least one measure (usia_kehamilan, berat, lila, sistolik and diastolik, hb) "
      "or tablet_tambah_darah"),
     (("5260015403960001", "5260011403960001"), "nik_ibu",
      "5260011403960001: digits 7-8 must be a woman's day of birth (41-71)"),
     (("5260015403960001", ""), "nik_ibu", "is required"),
     (("5260016208900002", "5260014507880001"), "nik_bidan",
      "is the kader's NIK: name each person once"),
     (("5260016208900002,Rina,", ",Rina,"), "nik_bidan", "is required with nama_bidan"),
     (("5260016208900002,Rina,5260014507880001,Baiq", ",,,"), "nik_kader",
      "give nik_kader or nama_kader or nik_bidan"),
     (("5260014507880001,", "5260014507880000,"), "nik_kader",
      "5260014507880000: digits 13-16 (serial) must not be 0000"),
     ((",posyandu,", ",rumah,"), "tempat",
      "'rumah' is not one of ['posyandu', 'pustu', 'puskesmas']"),
     (("2026-11-10 09:15 WITA", "2026-11-24"), "tanggal", "2026-11-24 is in the future"),
     (("2026-11-10 09:15 WITA", "2026-11-10 09:15"), "tanggal",
      "'2026-11-10 09:15': give the time zone (WIB, WITA, WIT) or an offset (+08:00)")],
)  # fmt: skip
def test_impossible_values_are_rejected_with_row_and_column(tmp_path, change, field, message):
    bad = GOOD.replace(*change)
    assert bad != GOOD
    path = write(tmp_path, "sheet.csv", HEADER + GOOD.replace("2026-11-10", "2026-10-13") + bad)
    mapped = map_file(mapper("posyandu-ibu-hamil"), path)
    assert list(mapped.rows) == [2]  # the good row still maps
    assert [(e.row, e.field) for e in mapped.errors] == [(3, field)]
    assert str(mapped.errors[0]) == f"row 3, {field}: {message}"


def test_a_second_row_for_the_same_visit_is_rejected_and_the_practitioners_written_once(tmp_path):
    at_the_pustu = GOOD.replace("posyandu-5260012001-1,posyandu", "pustu-5260012001,pustu")
    path = write(tmp_path, "s.csv", HEADER + GOOD + at_the_pustu + GOOD.replace(",30\n", ",\n"))
    mapped = map_file(mapper("posyandu-ibu-hamil"), path)
    assert [str(e) for e in mapped.errors] == ["row 4, record: same record as row 2"]
    (bundle,) = build_bundles(mapped)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Practitioner") == 2 and kinds.count("Encounter") == 2


@pytest.mark.parametrize("batch_size", [100, 2])
def test_fasilitas_sasaran_then_the_sheet_import_and_a_second_import_changes_nothing(
    ilp_client, batch_size
):
    import_file(ilp_client, "fasilitas", sample("fasilitas", "csv"))
    import_file(ilp_client, "sasaran", sample("sasaran", "csv"))
    statuses = import_file(
        ilp_client, "posyandu-ibu-hamil", sample("posyandu-ibu-hamil", "csv"), batch_size
    )
    assert statuses.count("201 Created") == 2 + 6 + 31 + 6
    types = ("Practitioner", "Encounter", "Observation", TABLETS)
    before = {t: versions(ilp_client, t) for t in types}
    assert [len(v) for v in before.values()] == [2, 6, 31, 6]

    import_file(
        ilp_client, "posyandu-ibu-hamil", sample("posyandu-ibu-hamil", "ndjson"), batch_size
    )
    assert {t: versions(ilp_client, t) for t in types} == before

    siti = one(ilp_client, f"Patient?identifier={NIK}|5260015403960001")
    pustu = one(ilp_client, f"Organization?identifier={KODE}|pustu-5260012001")
    visits = ilp_client.get(
        f"/fhir/Encounter?subject=Patient/{siti['id']}&siklus-hidup=ibu&_count=50"
    ).get_json()
    assert len(visits["entry"]) == 6
    providers = [e["resource"]["serviceProvider"]["reference"] for e in visits["entry"]]
    assert providers.count(f"Organization/{pustu['id']}") == 2
    systolic = ilp_client.get(
        f"/fhir/Observation?subject=Patient/{siti['id']}&code=http://loinc.org|8480-6"
    ).get_json()
    assert sorted(e["resource"]["valueQuantity"]["value"] for e in systolic["entry"]) == [
        110, 110, 112, 118, 120
    ]  # fmt: skip
    tablets = ilp_client.get(
        f"/fhir/MedicationDispense?subject=Patient/{siti['id']}&status=completed"
    ).get_json()
    assert sum(e["resource"]["quantity"]["value"] for e in tablets["entry"]) == 210


def test_a_corrected_row_updates_its_observation_in_place(ilp_client, tmp_path):
    import_file(ilp_client, "fasilitas", sample("fasilitas", "csv"))
    import_file(ilp_client, "sasaran", sample("sasaran", "csv"))
    import_file(ilp_client, "posyandu-ibu-hamil", sample("posyandu-ibu-hamil", "csv"))
    query = (
        "Observation?identifier=https://fhir.ilp-gateway.id/id/pemeriksaan-ibu-hamil"
        "|pustu-5260012001:2026-07-14:5260015403960001:718-7"
    )
    before = one(ilp_client, query)
    counts = {t: len(versions(ilp_client, t)) for t in ("Encounter", "Observation")}
    text = sample("posyandu-ibu-hamil", "csv").read_text().replace(",10.6,", ",10.9,")
    statuses = import_file(ilp_client, "posyandu-ibu-hamil", write(tmp_path, "s.csv", text))
    assert set(statuses) == {"200 OK"}
    after = one(ilp_client, query)
    assert after["id"] == before["id"] and after["meta"]["versionId"] == "2"
    assert after["valueQuantity"]["value"] == 10.9
    assert {t: len(versions(ilp_client, t)) for t in counts} == counts


def test_no_tablets_handed_over_is_a_declined_dispense_without_quantity(tmp_path):
    path = write(tmp_path, "sheet.csv", HEADER + GOOD.replace(",30\n", ",0\n"))
    (entries,) = map_file(mapper("posyandu-ibu-hamil"), path).rows.values()
    (dispense,) = [e["resource"] for e in entries if e["resource"]["resourceType"] == TABLETS]
    assert dispense["status"] == "declined"
    assert "quantity" not in dispense and "whenHandedOver" not in dispense
