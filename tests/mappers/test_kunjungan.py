"""The visit exports: a Puskesmas / Pustu visit (``kunjungan``) becomes an AMB Encounter with its
vital signs and ICD-10 Conditions, a home visit (``kunjungan-rumah``) an HH Encounter with its
measures and findings; every resource meets the profile it claims (or base R4), impossible
rows are refused with row and column, and importing twice changes nothing."""

from __future__ import annotations

import csv
import io

import pytest

from mappers import mapper_for
from mappers.importing import build_bundles, map_file
from server.fhir.validation import Validator
from tests.mappers.conftest import mapper, sample, write
from tests.mappers.test_import_api import import_file, one, versions
from tests.validation.conftest import PROFILES_FOLDER, conformance_set

ILP = "https://fhir.ilp-gateway.id"
CORE = "http://hl7.org/fhir/StructureDefinition/"
NIK = "https://fhir.kemkes.go.id/id/nik"
KODE = f"{ILP}/id/kode-fasilitas"
VISIT = f"{ILP}/id/kunjungan"
DIAGNOSIS = f"{ILP}/id/diagnosa-kunjungan"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
PUTRI, WULAN = "5260014905230003", "5260016208920004"
HEADER = (
    "no_kunjungan,tanggal,kode_fasilitas,nik_pasien,klaster,siklus_hidup,sistolik,diastolik,"
    "nadi,suhu,berat,tinggi,diagnosa_1,diagnosa_2,nik_nakes,nama_nakes,profesi\n"
)
GOOD = (
    "PKM-1,2026-11-10 09:00 WITA,pkm-526001,5260013112850005,3,dewasa,130,85,88,36.8,60,165,"
    "I10,E11.9,5260011204860007,dr. Hendra Kurniawan,dokter\n"
)
HOME_HEADER = (
    "tanggal,kode_fasilitas,nik,nik_ibu,tanggal_lahir,jenis_kelamin,nik_petugas,nama_petugas,"
    "peran,tujuan,siklus_hidup,temuan,berat,tinggi,cara_ukur,sistolik,diastolik,lila\n"
)
HOME = (
    "2026-11-10,posyandu-5260012001-1,5260014905230003,,,,5260014507880001,Baiq Nurhayati,kader,"
    "balita,,Anak sehat,13.4,93.6,berdiri,,,15.3\n"
)


@pytest.fixture(scope="module")
def validator():
    return Validator(conformance_set(PROFILES_FOLDER))


def resources(name, path):
    mapped = map_file(mapper(name), path)
    assert mapped.errors == []
    return [e["resource"] for entries in mapped.rows.values() for e in entries]


def by_identifier(found, value):
    return next(r for r in found if r.get("identifier", [{}])[0].get("value") == value)


def rejected(name, tmp_path, header, good, bad):
    assert bad != good
    path = write(tmp_path, "rows.csv", header + good + bad)
    mapped = map_file(mapper(name), path)
    assert list(mapped.rows) == [2]  # the good row still maps
    return mapped.errors


def test_both_formats_are_registered():
    assert mapper_for("kunjungan").name == "kunjungan"
    assert mapper_for("kunjungan-rumah").name == "kunjungan-rumah"


@pytest.mark.parametrize(
    ("name", "counts"),
    [("kunjungan", {"Practitioner": 3, "Encounter": 6, "Condition": 8, "Observation": 34}),
     ("kunjungan-rumah", {"Practitioner": 4, "Encounter": 6, "Observation": 20})],
)  # fmt: skip
@pytest.mark.parametrize("extension", ["csv", "ndjson"])
def test_every_resource_meets_the_profile_it_claims_or_base_r4(validator, name, counts, extension):
    (bundle,) = build_bundles(map_file(mapper(name), sample(name, extension)))
    written = [e["resource"] for e in bundle["entry"]]  # a nakes seeing several patients once
    kinds = [r["resourceType"] for r in written]
    assert {kind: kinds.count(kind) for kind in counts} == counts
    for resource in written:
        issues = validator.validate(resource)
        assert [i for i in issues if i.severity in ("error", "fatal")] == [], resource
        claimed = resource.get("meta", {}).get("profile", [])
        if resource["resourceType"] == "Encounter":
            assert claimed == [f"{ILP}/StructureDefinition/ilp-encounter"]
        elif resource["resourceType"] in ("Practitioner", "Condition"):
            assert claimed == []  # no ILP profile covers them: base R4
        elif "valueQuantity" in resource:
            assert claimed[0].startswith((f"{ILP}/StructureDefinition/ilp-obs-", CORE))


def test_a_puskesmas_visit_is_an_ambulatory_encounter_with_its_klaster_nakes_and_diagnoses():
    found = resources("kunjungan", sample("kunjungan", "csv"))
    encounter = by_identifier(found, "pustu-5260012001:PST-001/XI/2026")
    assert encounter["class"]["code"] == "AMB"
    assert encounter["type"][0]["coding"][0]["code"] == "balita"
    assert encounter["type"][1] == {"text": "Kunjungan rawat jalan: kunjungan lama"}
    assert encounter["serviceType"]["coding"][0]["code"] == "2"
    assert encounter["period"] == {
        "start": "2026-11-05T10:05:00+08:00",
        "end": "2026-11-05T10:05:00+08:00",
    }
    assert encounter["location"][0]["location"] == {
        "reference": f"Location?identifier={KODE}|pustu-5260012001"
    }
    bidan = {"reference": f"Practitioner?identifier={NIK}|{WULAN}"}
    (participant,) = encounter["participant"]
    assert participant["individual"] == bidan
    assert [c["code"] for c in participant["type"][0]["coding"]] == ["ATND", "bidan"]
    conditions = f"Condition?identifier={DIAGNOSIS}|pustu-5260012001:PST-001%2FXI%2F2026"
    assert [(d["condition"]["reference"], d["use"]["coding"][0]["code"], d["rank"])
            for d in encounter["diagnosis"]] == [
        (f"{conditions}:1", "DD", 1), (f"{conditions}:2", "DD", 2)]  # fmt: skip
    assert by_identifier(found, "pustu-5260012001:PST-001/XI/2026:1") == {
        "resourceType": "Condition",
        "identifier": [{"system": DIAGNOSIS, "value": "pustu-5260012001:PST-001/XI/2026:1"}],
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                    "display": "Active",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "encounter-diagnosis",
                        "display": "Encounter Diagnosis",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": ICD10, "code": "J06.9"}], "text": "ISPA"},
        "subject": {"reference": f"Patient?identifier={NIK}|{PUTRI}"},
        "encounter": {
            "reference": f"Encounter?identifier={VISIT}|pustu-5260012001:PST-001%2FXI%2F2026"
        },
        "recordedDate": "2026-11-05T10:05:00+08:00",
        "asserter": bidan,
    }
    practitioner = by_identifier(found, WULAN)
    assert practitioner["name"][0]["text"] == "Bd. Wulan Lestari, S.Tr.Keb"
    assert practitioner["qualification"][0]["code"]["coding"][0]["code"] == "309453006"


def test_vital_signs_claim_the_core_profiles_and_a_babys_weight_in_grams_is_converted():
    found = resources("kunjungan", sample("kunjungan", "csv"))
    observations = {
        r["identifier"][0]["value"].rsplit(":", 1)[1]: r
        for r in found
        if r["resourceType"] == "Observation" and "PST-001" in r["identifier"][0]["value"]
    }
    profiles = {code: o["meta"]["profile"][0] for code, o in observations.items()}
    assert {code: url.rsplit("/", 1)[1] for code, url in profiles.items()} == {
        "29463-7": "ilp-obs-body-weight", "8302-2": "ilp-obs-body-height",
        "8867-4": "heartrate", "8310-5": "bodytemp", "9279-1": "resprate",
    }  # fmt: skip
    assert profiles["8867-4"] == f"{CORE}heartrate"
    assert observations["8310-5"]["valueQuantity"] == {
        "value": 38.4, "unit": "Cel", "system": "http://unitsofmeasure.org", "code": "Cel"
    }  # fmt: skip
    assert observations["8867-4"]["valueQuantity"]["code"] == "/min"
    assert observations["8302-2"]["code"]["coding"][1]["code"] == "8308-9"  # berdiri
    baby = by_identifier(found, "pustu-5260012001:PST-003/XI/2026:29463-7")
    assert baby["valueQuantity"]["value"] == 4.15  # 4150 on the sheet: grams
    assert baby["subject"]["reference"] == (
        "Patient?identifier=https://fhir.kemkes.go.id/id/nik-ibu|5260015403960001"
        "&birthdate=2026-10-20&gender=male"
    )
    lying = by_identifier(found, "pustu-5260012001:PST-003/XI/2026:8302-2")
    assert lying["code"]["coding"][1]["code"] == "8306-3"
    lintas = by_identifier(found, "pkm-526001:PKM-2026-11-00201")
    assert lintas["serviceType"]["coding"][0] == {
        "system": f"{ILP}/CodeSystem/ilp-klaster", "code": "5", "display": "Lintas Klaster"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("cell", "expected"),
    [('"J06.9 ISPA; a09 - Diare"', [("J06.9", "ISPA"), ("A09", "Diare")]),
     ("J069", [("J06.9", None)]), ("z00.121", [("Z00.121", None)])],
)  # fmt: skip
def test_diagnoses_may_share_one_column_and_codes_are_normalised(tmp_path, cell, expected):
    header = HEADER.replace("diagnosa_1,diagnosa_2", "diagnosa")
    row = GOOD.replace("I10,E11.9", cell)
    conditions = [
        r for r in resources("kunjungan", write(tmp_path, "k.csv", header + row))
        if r["resourceType"] == "Condition"
    ]  # fmt: skip
    assert [(c["code"]["coding"][0]["code"], c["code"].get("text")) for c in conditions] == expected
    assert [c["identifier"][0]["value"][-1] for c in conditions] == [
        str(rank) for rank in range(1, len(expected) + 1)
    ]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [((",I10,", ",ISPA,"), "diagnosa_1", "'ISPA' is not an ICD-10 code: a letter, two digits "
      "and optionally a dot and 1-4 letters or digits (J06.9), then optionally its name"),
     ((",I10,", ",J6.9,"), "diagnosa_1", "'J6.9' is not an ICD-10 code"),
     ((",I10,", ",I10.12345,"), "diagnosa_1", "'I10.12345' is not an ICD-10 code"),
     ((",E11.9,", ",i10 Hipertensi,"), "diagnosa_2", "I10 is already given in diagnosa_1"),
     ((",I10,", ",,"), "diagnosa_1", "diagnosa_2"),  # "is required with ... diagnosa_2"
     ((",dokter", ",apoteker"), "profesi", "'apoteker' is not one of dokter, bidan or perawat"),
     ((",36.8,", ",98.6,"), "suhu", "98.6 (98.6 Cel) is impossible for a patient of school age "
      "or older: expected 30-45 Cel"),
     ((",88,", ",400,"), "nadi", "expected 20-250 /min"),
     ((",130,85,", ",330,85,"), "sistolik", "expected 50-300 mm[Hg]"),
     ((",130,85,", ",85,130,"), "diastolik",
      "130 mm[Hg] is not below sistolik 85 mm[Hg]: are the columns swapped?"),
     ((",60,165,", ",4150,165,"), "berat", "4150 (4150 kg) is impossible"),
     ((",60,165,", ",60,16.5,"), "tinggi", "expected 80-250 cm"),
     ((",3,dewasa,", ",2,dewasa,"), "siklus_hidup", "dewasa is served by Klaster 3, not Klaster 2"),
     ((",3,dewasa,", ",1,dewasa,"), "klaster", "Klaster 1 (Manajemen) does not serve patients"),
     ((",3,dewasa,", ",6,dewasa,"), "klaster", "is not one of"),
     ((",3,dewasa,", ",3,remaja,"), "siklus_hidup", "is not one of"),
     ((",5260013112850005,", ",5260013112850000,"), "nik_pasien", "digits 13-16 (serial)"),
     ((",5260013112850005,", ",526001311285005,"), "nik_pasien", "NIK: 16 digits"),
     ((",5260013112850005,", ",,"), "nik_pasien", "give nik_pasien or nik_ibu"),
     ((",5260011204860007,", ",5260011213860007,"), "nik_nakes", "month of birth, 01-12"),
     ((",5260011204860007,", ",,"), "nik_nakes", "is required"),
     (("PKM-1,", "PKM 1,"), "no_kunjungan", "does not fit"),
     (("2026-11-10 09:00 WITA", "2026-11-24"), "tanggal", "2026-11-24 is in the future"),
     (("2026-11-10 09:00 WITA", "2026-11-10 09:00"), "tanggal", "give the time zone")],
)  # fmt: skip
def test_impossible_visits_are_rejected_with_row_and_column(tmp_path, change, field, message):
    good = GOOD.replace("PKM-1", "PKM-0")
    errors = rejected("kunjungan", tmp_path, HEADER, good, GOOD.replace(*change))
    assert [(e.row, e.field) for e in errors] == [(3, field)]
    assert message in errors[0].message
    assert str(errors[0]).startswith(f"row 3, {field}: ")


BASE = {
    "no_kunjungan": "PKM-0", "tanggal": "2026-11-10", "kode_fasilitas": "pkm-526001",
    "nik_pasien": "5260015403960001", "klaster": "2", "siklus_hidup": "ibu",
    "nik_nakes": "5260011204860007", "profesi": "Dokter",
}  # fmt: skip


def csv_text(*rows):
    columns = list(dict.fromkeys(column for row in rows for column in row))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([row.get(column, "") for column in columns] for row in rows)
    return out.getvalue()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [({"diagnosa": "I10", "diagnosa_1": "I10"}, "diagnosa",
      "give diagnosa or diagnosa_1..diagnosa_5, not both"),
     ({"diagnosa": "I10; J06.9; i10"}, "diagnosa", "I10 is already given in diagnosa"),
     ({"siklus_hidup": "balita", "tinggi": "93"}, "cara_ukur",
      "is required with tinggi for a balita: telentang (lying, under 2 years) or berdiri"),
     ({"siklus_hidup": "balita", "berat": "45"}, "berat",
      "45 (45 kg) is impossible for a balita: expected 0.5-40 kg"),
     ({"nik_pasien": "", "nik_ibu": "5260015403960001"}, "tanggal_lahir",
      "is required for a patient without nik_pasien"),
     ({"nik_pasien": "", "nik_ibu": "5260015403960001", "tanggal_lahir": "2026-11-11",
       "jenis_kelamin": "L"}, "tanggal_lahir", "2026-11-11 is after the visit (2026-11-10)"),
     ({"nik_pasien": "", "nik_ibu": "5260011403960001", "tanggal_lahir": "2026-10-20",
       "jenis_kelamin": "L"}, "nik_ibu", "digits 7-8 must be a woman's day of birth")],
)  # fmt: skip
def test_rules_across_columns_are_checked(tmp_path, change, field, message):
    path = write(tmp_path, "k.csv", csv_text(BASE, {**BASE, "no_kunjungan": "PKM-1", **change}))
    mapped = map_file(mapper("kunjungan"), path)
    assert list(mapped.rows) == [2]  # "Dokter": the profession is matched without regard to case
    assert [(e.row, e.field) for e in mapped.errors] == [(3, field)]
    assert message in mapped.errors[0].message


def test_the_same_visit_number_twice_is_rejected_and_the_nakes_written_once(tmp_path):
    other_patient = GOOD.replace("PKM-1,", "PKM-2,").replace("5260013112850005", PUTRI)
    other_patient = other_patient.replace(",3,dewasa,", ",2,balita,").replace(",60,165,", ",14,,")
    path = write(tmp_path, "k.csv", HEADER + GOOD + other_patient + GOOD.replace("I10,", "I11,"))
    mapped = map_file(mapper("kunjungan"), path)
    assert [str(e) for e in mapped.errors] == ["row 4, record: same record as row 2"]
    (bundle,) = build_bundles(mapped)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Practitioner") == 1 and kinds.count("Encounter") == 2


def test_a_home_visit_is_a_home_health_encounter_of_the_facility_with_its_findings():
    found = resources("kunjungan-rumah", sample("kunjungan-rumah", "csv"))
    tbc = by_identifier(found, "pkm-526001:2026-11-18:5260013112850005:perawat")
    assert tbc["class"] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "code": "HH",
        "display": "home health",
    }
    assert "location" not in tbc  # at home, not in the Puskesmas building
    assert tbc["serviceProvider"] == {"reference": f"Organization?identifier={KODE}|pkm-526001"}
    assert tbc["serviceType"]["coding"][0]["code"] == "4"
    assert tbc["type"][0]["coding"][0]["code"] == "dewasa"
    assert tbc["reasonCode"] == [{"text": "Pemantauan pengobatan TBC"}]
    assert [c["code"] for c in tbc["participant"][0]["type"][0]["coding"]] == ["ATND", "perawat"]
    findings = by_identifier(
        [r for r in found if "valueString" in r], "pkm-526001:2026-11-18:5260013112850005:perawat"
    )
    assert findings["code"] == {"text": "Temuan kunjungan rumah"}
    assert findings["valueString"] == "Minum obat teratur (PMO: istri); batuk berkurang"
    assert findings["performer"] == [tbc["participant"][0]["individual"]]
    assert findings["encounter"] == {
        "reference": f"Encounter?identifier={ILP}/id/kunjungan-rumah|"
        "pkm-526001:2026-11-18:5260013112850005:perawat"
    }

    ptm = by_identifier(found, "posyandu-5260012001-1:2026-11-14:5260010207930002:kader")
    assert ptm["participant"][0]["type"][0]["coding"][1]["code"] == "kader"
    assert ptm["participant"][0]["individual"] == {
        "reference": f"Practitioner?identifier={ILP}/id/kader-posyandu|"
        "posyandu-5260012001-1:sri%20wahyuni"
    }
    height = by_identifier(found, "posyandu-5260012001-1:2026-11-14:5260010207930002:kader:8302-2")
    assert height["valueQuantity"]["value"] == 168.0  # 1.68 on the sheet: metres
    neonatus = by_identifier(
        found, "pustu-5260012001:2026-10-23:ibu-5260015403960001-2026-10-20-L:bidan:29463-7"
    )
    assert neonatus["valueQuantity"]["value"] == 3.35


def test_a_kader_is_the_same_practitioner_as_on_the_posyandu_sheet():
    home = resources("kunjungan-rumah", sample("kunjungan-rumah", "csv"))
    sheet = resources("posyandu-balita", sample("posyandu-balita", "csv"))
    assert by_identifier(home, "5260014507880001") == by_identifier(sheet, "5260014507880001")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [((",kader,", ",dukun,"), "peran", "'dukun' is not one of kader, dokter, bidan or perawat"),
     ((",5260014507880001,Baiq Nurhayati,kader,", ",,Wulan,bidan,"), "nik_petugas",
      "is required for a bidan: a nakes is known by NIK"),
     ((",5260014507880001,Baiq Nurhayati,", ",,,"), "nik_petugas",
      "give nik_petugas or nama_petugas"),
     ((",balita,,", ",imunisasi,,"), "tujuan", "is not one of"),
     ((",balita,,", ",balita,lansia,"), "siklus_hidup",
      "lansia does not fit tujuan balita: expected balita"),
     ((",15.3", ",30"), "lila", "30 (30 cm) is impossible for a balita: expected 5-25 cm"),
     ((",berdiri,", ",,"), "cara_ukur", "is required with tinggi for a balita"),
     ((",5260014905230003,", ",5260014905230000,"), "nik", "digits 13-16 (serial)"),
     ((",5260014905230003,", ",,"), "nik", "give nik or nik_ibu"),
     ((",5260014507880001,", ",0060014507880001,"), "nik_petugas", "province")],
)  # fmt: skip
def test_impossible_home_visits_are_rejected_with_row_and_column(tmp_path, change, field, message):
    good = HOME.replace("2026-11-10", "2026-10-13")
    bad = HOME.replace(*change)
    path = write(tmp_path, "rumah.csv", HOME_HEADER + good + bad)
    mapped = map_file(mapper("kunjungan-rumah"), path)
    assert list(mapped.rows) == [2]
    assert [(e.row, e.field) for e in mapped.errors] == [(3, field)]
    assert message in mapped.errors[0].message
    assert str(mapped.errors[0]).startswith(f"row 3, {field}: ")


def test_a_balitas_weight_in_grams_is_converted_on_a_home_visit(tmp_path):
    text = HOME_HEADER + HOME.replace(",13.4,", ",13400,")
    weight = by_identifier(
        resources("kunjungan-rumah", write(tmp_path, "r.csv", text)),
        "posyandu-5260012001-1:2026-11-10:5260014905230003:kader:29463-7",
    )
    assert weight["valueQuantity"]["value"] == 13.4


def test_one_nik_as_kader_and_as_bidan_in_one_file_is_refused_on_the_later_row(tmp_path):
    as_bidan = HOME.replace("2026-11-10", "2026-11-11").replace(",kader,", ",bidan,")
    mapped = map_file(
        mapper("kunjungan-rumah"), write(tmp_path, "r.csv", HOME_HEADER + HOME + as_bidan)
    )
    assert [(e.row, e.field) for e in mapped.errors] == [(3, "")]
    assert "differs from row 2" in mapped.errors[0].message


def import_all(client, extension="csv", batch_size=100):
    statuses = {}
    for name in ("fasilitas", "sasaran", "kunjungan", "kunjungan-rumah"):
        statuses[name] = import_file(client, name, sample(name, extension), batch_size)
    return statuses


TYPES = ("Practitioner", "Encounter", "Condition", "Observation")


@pytest.mark.parametrize("batch_size", [100, 2])
def test_fasilitas_sasaran_then_both_exports_import_and_a_second_import_changes_nothing(
    ilp_client, batch_size
):
    statuses = import_all(ilp_client, "csv", batch_size)
    assert statuses["kunjungan"].count("201 Created") == 3 + 6 + 8 + 34
    # The bidan and the perawat are stored already and unchanged; the two kader are new.
    assert statuses["kunjungan-rumah"].count("201 Created") == 2 + 6 + 20
    before = {t: versions(ilp_client, t) for t in TYPES}
    # 54 measurements, and the WHO z-scores derived from the children's (13)
    assert [len(v) for v in before.values()] == [5, 12, 8, 54 + 13]

    import_all(ilp_client, "ndjson", batch_size)
    assert {t: versions(ilp_client, t) for t in TYPES} == before

    putri = one(ilp_client, f"Patient?identifier={NIK}|{PUTRI}")
    pustu = one(ilp_client, f"Organization?identifier={KODE}|pustu-5260012001")
    visit = ilp_client.get(
        "/fhir/Encounter", query_string={"identifier": f"{VISIT}|pustu-5260012001:PST-001/XI/2026"}
    ).get_json()
    (entry,) = visit["entry"]
    encounter = entry["resource"]
    assert encounter["subject"] == {"reference": f"Patient/{putri['id']}"}
    assert encounter["serviceProvider"] == {"reference": f"Organization/{pustu['id']}"}
    diagnoses = ilp_client.get(
        f"/fhir/Condition?encounter=Encounter/{encounter['id']}&_count=10"
    ).get_json()
    conditions = {e["resource"]["id"]: e["resource"] for e in diagnoses["entry"]}
    assert [
        conditions[d["condition"]["reference"].split("/")[1]]["code"]["coding"][0]["code"]
        for d in sorted(encounter["diagnosis"], key=lambda d: d["rank"])
    ] == ["J06.9", "A09"]
    hypertensive = ilp_client.get(f"/fhir/Condition?code={ICD10}|I10").get_json()
    assert len(hypertensive["entry"]) == 1
    home = ilp_client.get(f"/fhir/Encounter?subject=Patient/{putri['id']}&class=HH").get_json()
    assert [e["resource"]["period"]["start"] for e in home["entry"]] == ["2026-11-16"]


def test_a_corrected_diagnosis_updates_its_condition_in_place(ilp_client, tmp_path):
    import_all(ilp_client)
    query = f"Condition?identifier={DIAGNOSIS}|pustu-5260012001:PST-001%2FXI%2F2026:1"
    before = one(ilp_client, query)
    encounter = one(
        ilp_client, f"Encounter?identifier={VISIT}|pustu-5260012001:PST-001%2FXI%2F2026"
    )
    text = sample("kunjungan", "csv").read_text().replace("J06.9 - ISPA", "J02.9 - Faringitis akut")
    statuses = import_file(ilp_client, "kunjungan", write(tmp_path, "kunjungan.csv", text))
    assert "201 Created" not in statuses
    after = one(ilp_client, query)
    assert after["id"] == before["id"] and after["meta"]["versionId"] == "2"
    assert after["code"] == {
        "coding": [{"system": ICD10, "code": "J02.9"}],
        "text": "Faringitis akut",
    }
    assert len(versions(ilp_client, "Condition")) == 8
    # The Encounter refers to the same Condition: it did not change.
    again = one(ilp_client, f"Encounter?identifier={VISIT}|pustu-5260012001:PST-001%2FXI%2F2026")
    assert again["meta"]["versionId"] == encounter["meta"]["versionId"] == "1"


def test_a_kader_and_a_bidan_visiting_one_home_on_one_day_are_two_visits(tmp_path):
    lines = sample("kunjungan-rumah", "csv").read_text(encoding="utf-8").splitlines()
    kader = next(line for line in lines if ",kader,balita," in line)
    bidan = kader.replace(
        "5260014507880001,Baiq Nurhayati,kader", "5260016208920004,Bd. Wulan,bidan"
    )
    assert bidan != kader
    mapped = map_file(
        mapper("kunjungan-rumah"), write(tmp_path, "r.csv", "\n".join([lines[0], kader, bidan]))
    )
    assert mapped.errors == []
    visits = [e["resource"]["identifier"][0]["value"] for rows in mapped.rows.values()
              for e in rows if e["resource"]["resourceType"] == "Encounter"]  # fmt: skip
    assert len(set(visits)) == 2 and {v.rsplit(":", 1)[1] for v in visits} == {"kader", "bidan"}
