"""The demo district generator: determinism, valid resources, NIK, references, plausible values."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import date

import pytest

from server.demo import codes, growth
from server.demo.district import PRESETS, DemoSize, generate
from server.errors import InvalidResource
from server.services.validation import check_structure

SMALL = PRESETS["small"]
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


@pytest.fixture(scope="module")
def small():
    return list(generate(SMALL))


def of_type(resources, resource_type):
    return [r for r in resources if r["resourceType"] == resource_type]


def references(value):
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            yield value["reference"]
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def admin_codes(address):
    (extension,) = [e for e in address["extension"] if e["url"] == codes.ADMINISTRATIVE_CODE]
    return {part["url"]: part["valueCode"] for part in extension["extension"]}


def test_same_seed_gives_the_same_resources(small):
    assert list(generate(SMALL)) == small


def test_another_seed_gives_other_people_under_the_same_shape(small):
    other = list(generate(SMALL, seed=2))
    assert of_type(other, "Patient") != of_type(small, "Patient")
    assert [r["id"] for r in of_type(other, "Location")][:3] == [
        "kab-5260",
        "kec-526001",
        "pkm-526001",
    ]


def test_a_larger_district_keeps_the_smaller_ones_households():
    shape = dict(kecamatan=1, desa_per_kecamatan=2, months=2)
    smaller = {r["id"]: r for r in generate(DemoSize(households_per_desa=2, **shape))}
    larger = {r["id"]: r for r in generate(DemoSize(households_per_desa=3, **shape))}
    assert len(larger) > len(smaller)
    assert all(larger[i] == resource for i, resource in smaller.items())


def test_small_preset_is_a_small_district(small):
    counts = Counter(r["resourceType"] for r in small)
    assert 250 <= counts["Patient"] <= 350
    assert 2_000 <= counts["Observation"] <= 6_000
    assert counts["Encounter"] > counts["Patient"]
    assert len([r for r in of_type(small, "Location") if r["id"].startswith("desa-")]) == 6
    assert [r["id"] for r in of_type(small, "Organization") if r["id"].startswith("pkm-")] == [
        "pkm-526001",
        "pkm-526002",
    ]


def test_ids_are_valid_and_unique(small):
    keys = [(r["resourceType"], r["id"]) for r in small]
    assert len(set(keys)) == len(keys)
    assert all(FHIR_ID.fullmatch(r["id"]) for r in small)


def test_every_resource_passes_structural_validation(small):
    failures = []
    for resource in small:
        try:
            check_structure(resource)
        except InvalidResource as exc:
            failures.append((resource["id"], exc))
    assert failures == []


def test_references_point_to_resources_generated_before(small):
    seen = set()
    for resource in small:
        missing = [ref for ref in references(resource) if ref not in seen]
        assert missing == [], resource["id"]
        seen.add(f"{resource['resourceType']}/{resource['id']}")


def test_nik_encodes_kecamatan_birth_date_and_sex(small):
    niks = []
    for resource in of_type(small, "Patient") + of_type(small, "Practitioner"):
        (nik,) = [i["value"] for i in resource["identifier"] if i["system"] == codes.NIK] or [None]
        if nik is None:
            continue
        niks.append(nik)
        born = date.fromisoformat(resource["birthDate"])
        day = born.day + (40 if resource["gender"] == "female" else 0)
        assert re.fullmatch(r"\d{16}", nik)
        assert nik[6:12] == f"{day:02d}{born:%m%y}", resource["id"]
        assert nik[12:] != "0000"
        if resource["resourceType"] == "Patient":
            assert nik[:6] == admin_codes(resource["address"][0])["district"]
    assert len(set(niks)) == len(niks)
    assert len(niks) > 250


def test_unregistered_infants_carry_their_mothers_nik(small):
    patients = {r["id"]: r for r in of_type(small, "Patient")}
    infants = [p for p in patients.values() if p["identifier"][0]["system"] == codes.NIK_IBU]
    assert infants
    for infant in infants:
        mother = patients[infant["id"].rsplit("-", 1)[0] + "-ibu"]
        assert infant["identifier"][0]["value"] == mother["identifier"][0]["value"]
        assert date.fromisoformat(infant["birthDate"]) > date(2026, 8, 1)


def test_addresses_carry_kemendagri_codes_of_the_right_lengths(small):
    addresses = [a for r in small for a in r.get("address", []) if isinstance(a, dict)]
    addresses += [r["address"] for r in of_type(small, "Location")]
    for address in addresses:
        found = admin_codes(address)
        assert found["province"] == "52"
        assert re.fullmatch(r"52\d{2}", found["city"])
        if "district" in found:
            assert re.fullmatch(found["city"] + r"\d{2}", found["district"])
        if "village" in found:
            assert re.fullmatch(found["district"] + r"[12]\d{3}", found["village"])


def test_encounters_have_class_subject_provider_and_local_times(small):
    encounters = of_type(small, "Encounter")
    assert {e["class"]["code"] for e in encounters} == {"AMB", "HH"}
    for encounter in encounters:
        assert encounter["subject"]["reference"].startswith("Patient/")
        assert encounter["serviceProvider"]["reference"].startswith("Organization/")
        assert encounter["period"]["start"].endswith("+08:00")  # NTB is WITA
        assert ("location" in encounter) == (encounter["class"]["code"] == "AMB")


def test_observations_are_coded_measurements_of_their_encounters_patient(small):
    subjects = {e["id"]: e["subject"] for e in of_type(small, "Encounter")}
    loinc = Counter()
    for observation in of_type(small, "Observation"):
        loinc[_code(observation)] += 1
        encounter = observation["encounter"]["reference"].removeprefix("Encounter/")
        assert observation["subject"] == subjects[encounter]
        assert observation["effectiveDateTime"].endswith("+08:00")
        category = observation["category"][0]["coding"][0]["code"]
        assert category == ("laboratory" if _code(observation) == "718-7" else "vital-signs")
        quantities = [observation.get("valueQuantity")] + [
            c["valueQuantity"] for c in observation.get("component", [])
        ]
        for quantity in filter(None, quantities):
            assert quantity["system"] == "http://unitsofmeasure.org"
    assert set(loinc) == {"29463-7", "8302-2", "9843-4", "56072-2", "85354-9", "718-7"}


def _code(observation):
    return observation["code"]["coding"][0]["code"]


def test_about_a_fifth_of_the_children_are_stunted(small):
    patients = {f"Patient/{p['id']}": p for p in of_type(small, "Patient")}
    latest = {}
    for observation in of_type(small, "Observation"):
        if _code(observation) == "8302-2":
            latest[observation["subject"]["reference"]] = observation
    z_scores = []
    for subject, observation in latest.items():
        patient = patients[subject]
        age = date.fromisoformat(observation["effectiveDateTime"][:10]) - date.fromisoformat(
            patient["birthDate"]
        )
        value = observation["valueQuantity"]["value"]
        z_scores.append(growth.height_z(patient["gender"], age.days, value))
    assert len(z_scores) > 100
    assert 0.12 <= sum(z < -2 for z in z_scores) / len(z_scores) <= 0.30


def test_the_growth_model_stunts_about_20_percent():
    rng = random.Random(7)
    children = [growth.draw_child(rng) for _ in range(20_000)]
    assert 0.19 <= sum(c.stunted for c in children) / len(children) <= 0.21


def test_measurements_are_plausible_for_age():
    rng = random.Random(3)
    median_child = growth.ChildGrowth(0, 0, 0, 0)
    newborn = growth.child_measures(median_child, "female", 0, rng)
    four_years = growth.child_measures(median_child, "male", 4 * 365, rng)
    assert 2.8 <= newborn["29463-7"] <= 3.6 and 48 <= newborn["8302-2"] <= 50.5
    assert "56072-2" not in newborn  # arm circumference from 6 months
    assert 15 <= four_years["29463-7"] <= 18 and 101 <= four_years["8302-2"] <= 105


def test_an_observation_target_is_reached_and_not_overshot_by_more_than_a_household():
    size = DemoSize(
        kecamatan=1, desa_per_kecamatan=2, households_per_desa=0, months=3, observations=400
    )
    observations = sum(r["resourceType"] == "Observation" for r in generate(size))
    assert 400 <= observations < 460


def test_a_district_needs_a_kecamatan_and_a_desa():
    with pytest.raises(ValueError):
        DemoSize(kecamatan=0, desa_per_kecamatan=1, households_per_desa=1, months=1)
