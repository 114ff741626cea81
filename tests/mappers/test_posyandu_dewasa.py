"""The Posyandu sheets after balita (remaja, produktif, lansia): each row an Encounter of its
life-cycle stage and its Observations, which meet the ILP profiles (or base R4 where none
applies); impossible rows are refused with row and column, and importing fasilitas, sasaran and
the sheets twice changes nothing."""

from __future__ import annotations

import json

import pytest

from mappers import mapper_for
from mappers.importing import build_bundles, map_file
from mappers.posyandu_dewasa import STAGES
from server.fhir.validation import Validator
from tests.conftest import ROOT
from tests.mappers.conftest import mapper, sample, write
from tests.mappers.test_import_api import import_file, one
from tests.validation.conftest import PROFILES_FOLDER, conformance_set

SHEETS = ("posyandu-remaja", "posyandu-produktif", "posyandu-lansia")
ILP = "https://fhir.ilp-gateway.id"
KODE = f"{ILP}/id/kode-fasilitas"
NIK = "https://fhir.kemkes.go.id/id/nik"
LOINC, SNOMED = "http://loinc.org", "http://snomed.info/sct"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
HEADER = (
    "tanggal,kode_posyandu,nik_kader,nama_kader,nik,tanggal_lahir,berat,tinggi,lingkar_perut,"
    "sistolik,diastolik,gula_darah,jenis_gula_darah,merokok,skrining_tbc,tbc_batuk,tbc_demam,"
    "tbc_berat_turun,tbc_keringat_malam\n"
)
GOOD = (
    "2026-11-10 10:05 WITA,posyandu-5260012001-1,5260014507880001,Baiq Nurhayati,"
    "5260010207930002,1993-07-02,72.5,1.68,92,134,86,126,puasa,ya,,ya,tidak,tidak,ya\n"
)
VISIT = "posyandu-5260012001-1:2026-11-10:produktif:5260010207930002"
AHMAD = {"reference": f"Patient?identifier={NIK}|5260010207930002"}
ENCOUNTER = {"reference": f"Encounter?identifier={ILP}/id/kunjungan-posyandu|{VISIT}"}
KADER = {"reference": f"Practitioner?identifier={NIK}|5260014507880001"}
WHEN = "2026-11-10T10:05:00+08:00"


@pytest.fixture(scope="module")
def validator():
    return Validator(conformance_set(PROFILES_FOLDER))


def versions(client, resource_type):
    bundle = client.get(f"/fhir/{resource_type}?_count=500").get_json()
    return {e["resource"]["id"]: e["resource"]["meta"]["versionId"] for e in bundle["entry"]}


def resources(name, path):
    mapped = map_file(mapper(name), path)
    assert mapped.errors == []
    return [e["resource"] for entries in mapped.rows.values() for e in entries]


def by_code(resources_):
    return {
        r["code"]["coding"][0]["code"]: r for r in resources_ if r["resourceType"] == "Observation"
    }


@pytest.mark.parametrize("name", SHEETS)
def test_registered_as_formats_of_one_mapper(name):
    sheet = mapper_for(name)
    assert sheet.name == name and sheet.schema_path.name == f"{name}.schema.json"


def test_the_three_schemas_have_the_same_columns_and_rules():
    schemas = [
        json.loads((ROOT / "mappers" / "schemas" / f"{name}.schema.json").read_text())
        for name in SHEETS
    ]
    for schema in schemas[1:]:
        for part in ("properties", "required", "allOf"):
            assert schema[part] == schemas[0][part], part


@pytest.mark.parametrize("extension", ["csv", "ndjson"])
@pytest.mark.parametrize("name", SHEETS)
def test_every_resource_meets_its_ilp_profile_or_base_r4(validator, name, extension):
    mapped = resources(name, sample(name, extension))
    assert [r["resourceType"] for r in mapped].count("Encounter") == 6
    for resource in mapped:
        issues = validator.validate(resource)
        assert [i for i in issues if i.severity in ("error", "fatal")] == [], resource
        if resource["resourceType"] == "Encounter":
            assert resource["meta"]["profile"] == [f"{ILP}/StructureDefinition/ilp-encounter"]
        elif resource["resourceType"] == "Observation":
            code = resource["code"]["coding"][0]["code"]
            # smoking status and the TB screen have no ILP profile: they claim none
            assert ("meta" in resource) == (code not in ("72166-2", "171126009"))


@pytest.mark.parametrize(
    ("name", "stage", "klaster", "person"),
    [("posyandu-remaja", "usia-sekolah-remaja", "2", "5260011204100006"),
     ("posyandu-produktif", "dewasa", "3", "5260010207930002"),
     ("posyandu-lansia", "lansia", "3", "5260014101500004")],
)  # fmt: skip
def test_each_sheet_gives_its_stage_and_klaster(name, stage, klaster, person):
    encounter = next(r for r in resources(name, sample(name, "csv")) if "period" in r)
    assert encounter["type"][0]["coding"][0]["code"] == stage
    assert encounter["serviceType"]["coding"][0]["code"] == klaster
    assert encounter["class"]["code"] == "FLD"
    assert encounter["subject"] == {"reference": f"Patient?identifier={NIK}|{person}"}
    assert encounter["identifier"][0]["value"].split(":")[2:] == [name[9:], person]


def test_a_row_gives_the_kader_the_visit_and_an_observation_per_value(tmp_path):
    (kader, encounter, *observations) = resources(
        "posyandu-produktif", write(tmp_path, "s.csv", HEADER + GOOD)
    )
    assert kader == {
        "resourceType": "Practitioner",
        "identifier": [{"use": "official", "system": NIK, "value": "5260014507880001"}],
        "active": True,
        "name": [{"use": "official", "text": "Baiq Nurhayati"}],
    }
    assert encounter == {
        "resourceType": "Encounter",
        "meta": {"profile": [f"{ILP}/StructureDefinition/ilp-encounter"]},
        "identifier": [{"system": f"{ILP}/id/kunjungan-posyandu", "value": VISIT}],
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "FLD",
            "display": "field",
        },
        "type": [
            {
                "coding": [
                    {
                        "system": f"{ILP}/CodeSystem/ilp-siklus-hidup",
                        "code": "dewasa",
                        "display": "Usia dewasa",
                    }
                ]
            },
            {"text": "Kunjungan Posyandu"},
        ],
        "serviceType": {
            "coding": [
                {
                    "system": f"{ILP}/CodeSystem/ilp-klaster",
                    "code": "3",
                    "display": "Klaster 3: Usia Dewasa dan Lansia",
                }
            ]
        },
        "subject": AHMAD,
        "participant": [{"type": encounter["participant"][0]["type"], "individual": KADER}],
        "period": {"start": WHEN, "end": WHEN},
        "location": [
            {"location": {"reference": f"Location?identifier={KODE}|posyandu-5260012001-1"}}
        ],
        "serviceProvider": {"reference": f"Organization?identifier={KODE}|posyandu-5260012001-1"},
    }
    observations = by_code(observations)
    assert list(observations) == [
        "29463-7", "8302-2", "8280-0", "8480-6", "8462-4", "2339-0", "72166-2", "171126009",
    ]  # fmt: skip
    for observation in observations.values():
        assert observation["subject"] == AHMAD and observation["encounter"] == ENCOUNTER
        assert observation["performer"] == [KADER] and observation["effectiveDateTime"] == WHEN
    values = {
        c: o["valueQuantity"]["value"] for c, o in observations.items() if "valueQuantity" in o
    }
    assert values == {
        "29463-7": 72.5, "8302-2": 168.0, "8280-0": 92.0, "8480-6": 134.0, "8462-4": 86.0,
        "2339-0": 126.0,
    }  # fmt: skip
    assert observations["8302-2"]["code"]["coding"][1]["code"] == "8308-9"  # standing
    assert observations["8480-6"]["meta"]["profile"] == [
        f"{ILP}/StructureDefinition/ilp-obs-bp-systolic"
    ]
    assert observations["2339-0"]["identifier"] == [
        {"system": f"{ILP}/id/pengukuran-posyandu", "value": f"{VISIT}:2339-0"}
    ]
    assert observations["2339-0"]["category"][0]["coding"][0]["code"] == "laboratory"
    assert observations["2339-0"]["code"] == {
        "coding": [
            {"system": LOINC, "code": "2339-0", "display": "Glucose [Mass/volume] in Blood"},
            {
                "system": LOINC,
                "code": "1556-0",
                "display": "Fasting glucose [Mass/volume] in Capillary blood",
            },
        ],
        "text": "Gula darah puasa (GDP)",
    }
    assert observations["2339-0"]["valueQuantity"] == {
        "value": 126.0, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL",
    }  # fmt: skip


def test_smoking_status_and_the_tb_screen_are_coded_answers(tmp_path):
    observations = by_code(resources("posyandu-produktif", write(tmp_path, "s.csv", HEADER + GOOD)))
    smoking, tb = observations["72166-2"], observations["171126009"]
    assert smoking == {
        "resourceType": "Observation",
        "identifier": [{"system": f"{ILP}/id/skrining-posyandu", "value": f"{VISIT}:72166-2"}],
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": CATEGORY, "code": "social-history", "display": "Social History"}
                ]
            }
        ],
        "code": {
            "coding": [{"system": LOINC, "code": "72166-2", "display": "Tobacco smoking status"}],
            "text": "Status merokok",
        },
        "subject": AHMAD,
        "encounter": ENCOUNTER,
        "effectiveDateTime": WHEN,
        "performer": [KADER],
        "valueCodeableConcept": {
            "coding": [{"system": SNOMED, "code": "77176002", "display": "Smoker"}],
            "text": "Merokok",
        },
    }
    assert tb["identifier"][0]["value"] == f"{VISIT}:171126009"
    assert tb["category"][0]["coding"][0]["code"] == "survey"
    assert tb["code"]["coding"] == [
        {"system": SNOMED, "code": "171126009", "display": "Tuberculosis screening"}
    ]
    assert tb["valueCodeableConcept"] == {
        "coding": [{"system": SNOMED, "code": "10828004", "display": "Positive"}],
        "text": "Terduga TBC",
    }
    assert [(c["code"]["coding"][0]["code"], c["valueBoolean"]) for c in tb["component"]] == [
        ("49727002", True), ("386661006", False), ("89362005", False), ("42984000", True),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("cells", "smoking", "result", "components"),
    [(",tidak,,tidak,tidak,tidak,tidak", "266919005", "260385009", 4),
     (",berhenti,negatif,,,,", "8517006", "260385009", 0),
     (",,positif,,,,", None, "10828004", 0),
     (",,,,,,", None, None, 0)],
)  # fmt: skip
def test_screening_answers(tmp_path, cells, smoking, result, components):
    row = GOOD.replace(",ya,,ya,tidak,tidak,ya", cells)
    observations = by_code(resources("posyandu-produktif", write(tmp_path, "s.csv", HEADER + row)))
    assert ("72166-2" in observations) == bool(smoking)
    if smoking:
        assert observations["72166-2"]["valueCodeableConcept"]["coding"][0]["code"] == smoking
    assert ("171126009" in observations) == bool(result)
    if result:
        tb = observations["171126009"]
        assert tb["valueCodeableConcept"]["coding"][0]["code"] == result
        assert len(tb.get("component", [])) == components


def test_random_glucose_is_2339_0_alone(tmp_path):
    row = GOOD.replace(",puasa,", ",sewaktu,")
    glucose = by_code(resources("posyandu-produktif", write(tmp_path, "s.csv", HEADER + row)))
    assert [c["code"] for c in glucose["2339-0"]["code"]["coding"]] == ["2339-0"]
    assert glucose["2339-0"]["code"]["text"] == "Gula darah sewaktu (GDS)"


def test_csv_and_ndjson_cells_give_the_same_values(tmp_path):
    ndjson = write(tmp_path, "s.ndjson", json.dumps(
        {"tanggal": "2026-11-10 10:05 WITA", "kode_posyandu": "posyandu-5260012001-1",
         "nik_kader": "5260014507880001", "nama_kader": "Baiq Nurhayati",
         "nik": "5260010207930002", "tanggal_lahir": "1993-07-02", "berat": 72.5, "tinggi": 168,
         "lingkar_perut": 92, "sistolik": 134, "diastolik": 86, "gula_darah": 126,
         "jenis_gula_darah": "puasa", "merokok": "ya", "tbc_batuk": True, "tbc_demam": False,
         "tbc_berat_turun": False, "tbc_keringat_malam": True}) + "\n")  # fmt: skip
    csv = write(tmp_path, "s.csv", HEADER + GOOD.replace("72.5", '"72,5"'))
    assert build_bundles(map_file(mapper("posyandu-produktif"), csv)) == build_bundles(
        map_file(mapper("posyandu-produktif"), ndjson)
    )


ADULT, SCHOOL, OLDER = "an adult", "a school-age child or adolescent", "an older person"


@pytest.mark.parametrize(
    ("name", "change", "field", "message"),
    [("posyandu-produktif", (",72.5,", ",350,"), "berat",
      f"350 (350 kg) is impossible for {ADULT}: expected 20-300 kg"),
     ("posyandu-remaja", (",72.5,", ",250,"), "berat",
      f"250 (250 kg) is impossible for {SCHOOL}: expected 10-200 kg"),
     ("posyandu-lansia", (",72.5,", ",12,"), "berat",
      f"12 (12 kg) is impossible for {OLDER}: expected 20-300 kg"),
     ("posyandu-produktif", (",1.68,", ",2.5,"), "tinggi",
      f"2.5 (250 cm) is impossible for {ADULT}: expected 90-230 cm"),
     ("posyandu-produktif", (",92,", ",20,"), "lingkar_perut",
      f"20 (20 cm) is impossible for {ADULT}: expected 35-250 cm"),
     ("posyandu-produktif", (",134,", ",340,"), "sistolik",
      f"340 (340 mm[Hg]) is impossible for {ADULT}: expected 50-300 mm[Hg]"),
     ("posyandu-produktif", (",86,", ",140,"), "diastolik",
      "140 mm[Hg] is not below sistolik 134 mm[Hg]: are the columns swapped?"),
     ("posyandu-produktif", (",86,", ",,"), "diastolik", "is required with sistolik"),
     ("posyandu-produktif", (",126,", ",6.9,"), "gula_darah",
      f"6.9 (6.9 mg/dL) is impossible for {ADULT}: expected 20-600 mg/dL"),
     ("posyandu-produktif", (",puasa,", ",,"), "jenis_gula_darah",
      "is required with gula_darah"),
     ("posyandu-produktif", (",puasa,", ",acak,"), "jenis_gula_darah",
      "'acak' is not one of ['sewaktu', 'puasa']"),
     ("posyandu-produktif", (",ya,,", ",kadang,,"), "merokok",
      "'kadang' is not one of ['ya', 'berhenti', 'tidak']"),
     ("posyandu-produktif", (",,ya,tidak,tidak,ya", ",negatif,ya,tidak,tidak,ya"), "skrining_tbc",
      "negatif, but tbc_batuk is ya (any symptom is positif)"),
     ("posyandu-produktif", (",,ya,tidak,tidak,ya", ",positif,tidak,tidak,tidak,tidak"),
      "skrining_tbc", "positif, but every tbc_ symptom is tidak"),
     ("posyandu-produktif", (",ya,tidak,tidak,ya", ",ya,tidak,,ya"), "tbc_berat_turun",
      "is required with tbc_batuk: give all four tbc_ symptoms or none"),
     ("posyandu-produktif", (",72.5,1.68,92,134,86,126,puasa,ya,,ya,tidak,tidak,ya", "," * 13),
      "berat", "give at least one measure (berat, tinggi, lingkar_perut, sistolik, gula_darah) "
      "or screening (merokok, skrining_tbc or the tbc_ symptoms)"),
     ("posyandu-remaja", (",1993-07-02,", ",1993-07-02,"), "tanggal_lahir",
      "the person is 33 years old at the visit: the posyandu-remaja sheet is for ages 7-17"),
     ("posyandu-lansia", (",1993-07-02,", ",1993-07-02,"), "tanggal_lahir",
      "the person is 33 years old at the visit: the posyandu-lansia sheet is for ages 60 and "
      "over"),
     ("posyandu-produktif", (",1993-07-02,", ",2026-11-11,"), "tanggal_lahir",
      "2026-11-11 is after the visit (2026-11-10)"),
     ("posyandu-produktif", ("2026-11-10 10:05 WITA", "2026-11-24"), "tanggal",
      "2026-11-24 is in the future"),
     ("posyandu-produktif", (",5260010207930002,", ",5260010207930000,"), "nik",
      "5260010207930000: digits 13-16 (serial) must not be 0000"),
     ("posyandu-produktif", (",5260010207930002,", ",,"), "nik", "is required")],
)  # fmt: skip
def test_impossible_values_are_rejected_with_row_and_field(tmp_path, name, change, field, message):
    # the birth date only where it is the subject: it ties the row to the produktif ages
    row = GOOD if field == "tanggal_lahir" else GOOD.replace("1993-07-02", "")
    bad = row.replace(*change)
    good = GOOD.replace("2026-11-10", "2026-10-13").replace("1993-07-02", "")
    path = write(tmp_path, "sheet.csv", HEADER + good + bad)
    mapped = map_file(mapper(name), path)
    assert list(mapped.rows) == [2]  # the good row still maps
    assert [(e.row, e.field, e.message) for e in mapped.errors] == [(3, field, message)]


def test_ages_fit_each_stage(tmp_path):
    # The bounds of the ILP siklus hidup CodeSystem: 7-17, 18-59, 60 and over.
    for name, born, fits in [
        ("posyandu-remaja", "2019-11-10", True), ("posyandu-remaja", "2019-11-11", False),
        ("posyandu-remaja", "2008-11-11", True), ("posyandu-remaja", "2008-11-10", False),
        ("posyandu-produktif", "2008-11-10", True), ("posyandu-produktif", "2008-11-11", False),
        ("posyandu-produktif", "1966-11-11", True), ("posyandu-lansia", "1966-11-10", True),
        ("posyandu-lansia", "1966-11-11", False),
    ]:  # fmt: skip
        row = GOOD.replace("1993-07-02", born)
        errors = map_file(mapper(name), write(tmp_path, "s.csv", HEADER + row)).errors
        assert (errors == []) == fits, (name, born)
    assert [stage.ages for stage in STAGES.values()] == [
        "ages 7-17", "ages 18-59", "ages 60 and over",
    ]  # fmt: skip


def test_the_same_person_twice_on_one_day_is_rejected_and_the_kader_written_once(tmp_path):
    other = GOOD.replace("5260010207930002,1993-07-02", "5260013112850005,")
    path = write(tmp_path, "s.csv", HEADER + GOOD + other + GOOD.replace(",92,", ",93,"))
    mapped = map_file(mapper("posyandu-produktif"), path)
    assert [str(e) for e in mapped.errors] == ["row 4, record: same record as row 2"]
    (bundle,) = build_bundles(mapped)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Practitioner") == 1 and kinds.count("Encounter") == 2
    methods = {e["resource"]["resourceType"]: e["request"]["method"] for e in bundle["entry"]}
    assert methods == {"Practitioner": "POST", "Encounter": "PUT", "Observation": "PUT"}


@pytest.mark.parametrize("batch_size", [100, 4])
def test_fasilitas_sasaran_then_the_sheets_import_and_a_second_import_changes_nothing(
    ilp_client, batch_size
):
    import_file(ilp_client, "fasilitas", sample("fasilitas", "csv"))
    import_file(ilp_client, "sasaran", sample("sasaran", "csv"))
    statuses = []
    for name in SHEETS:
        statuses += import_file(ilp_client, name, sample(name, "csv"), batch_size)
    kinds = ("Practitioner", "Encounter", "Observation")
    before = {t: versions(ilp_client, t) for t in kinds}
    assert [len(v) for v in before.values()] == [2, 18, 109]
    assert statuses.count("201 Created") == 2 + 18 + 109

    for name in SHEETS:
        import_file(ilp_client, name, sample(name, "ndjson"), batch_size)
    assert {t: versions(ilp_client, t) for t in kinds} == before

    inaq = one(ilp_client, f"Patient?identifier={NIK}|5260014101500004")
    posyandu = one(ilp_client, f"Organization?identifier={KODE}|posyandu-5260012001-1")
    visits = ilp_client.get(
        f"/fhir/Encounter?subject=Patient/{inaq['id']}&siklus-hidup=lansia&_count=50"
    ).get_json()
    assert len(visits["entry"]) == 6
    assert visits["entry"][0]["resource"]["serviceProvider"] == {
        "reference": f"Organization/{posyandu['id']}"
    }
    screens = ilp_client.get(
        f"/fhir/Observation?subject=Patient/{inaq['id']}&code={SNOMED}|171126009"
    ).get_json()
    assert sorted(e["resource"]["valueCodeableConcept"]["text"] for e in screens["entry"]) == [
        "Bukan terduga TBC"
    ] * 3 + ["Terduga TBC"]


def test_a_corrected_row_updates_its_observation_in_place(ilp_client, tmp_path):
    import_file(ilp_client, "fasilitas", sample("fasilitas", "csv"))
    import_file(ilp_client, "sasaran", sample("sasaran", "csv"))
    import_file(ilp_client, "posyandu-produktif", sample("posyandu-produktif", "csv"))
    query = (
        f"Observation?identifier={ILP}/id/pengukuran-posyandu|"
        "posyandu-5260012001-1:2026-08-11:produktif:5260010207930002:8480-6"
    )
    before = one(ilp_client, query)
    text = sample("posyandu-produktif", "csv").read_text().replace(",134,86,", ",143,86,")
    statuses = import_file(ilp_client, "posyandu-produktif", write(tmp_path, "s.csv", text))
    assert "201 Created" not in statuses
    after = one(ilp_client, query)
    assert after["id"] == before["id"] and after["meta"]["versionId"] == "2"
    assert (before["valueQuantity"]["value"], after["valueQuantity"]["value"]) == (134, 143)
    assert len(versions(ilp_client, "Observation")) == 38
