"""A local resource as the upstream wants it: UTC times, upstream ids, the facility identifier."""

from __future__ import annotations

import copy

import pytest

from server.services.sync.prepare import facility_system, to_utc, upstream_body

ORG = "100026"
# what the caller resolves local references to: the upstream resource's reference
IDS = {
    ("Patient", "p1"): "P0001",
    ("Encounter", "e1"): "ENC-9",
    ("Practitioner", "n1"): "N10000001",
    ("Location", "posyandu-1"): "LOC-3",
    ("Organization", "pkm"): "ORG-2",
    ("Condition", "c1"): "COND-4",
}


def resolve_all(res_type, res_id):
    found = IDS.get((res_type, res_id))
    return f"{res_type}/{found}" if found else None


def prepare(resource, *, upstream_id=None, resolve=resolve_all):
    return upstream_body(resource, upstream_id=upstream_id, resolve=resolve, organization_id=ORG)


# times -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "utc"),
    [
        ("2024-03-05T08:15:00+07:00", "2024-03-05T01:15:00+00:00"),  # WIB
        ("2024-03-05T08:15:00+08:00", "2024-03-05T00:15:00+00:00"),  # WITA
        ("2024-03-05T08:15:00+09:00", "2024-03-04T23:15:00+00:00"),  # WIT, the day before
        ("2024-01-01T06:59:59+07:00", "2023-12-31T23:59:59+00:00"),  # the year before
        ("2024-03-05T08:15:00.125+07:00", "2024-03-05T01:15:00.125+00:00"),
        ("2024-03-05T08:15:00.000001+07:00", "2024-03-05T01:15:00.000001+00:00"),
        ("2024-03-05T08:15:00-03:00", "2024-03-05T11:15:00+00:00"),
    ],
)
def test_date_times_with_a_zone_go_in_utc(local, utc):
    assert to_utc(local) == utc


@pytest.mark.parametrize(
    "value",
    [
        "2024-03-05T01:15:00Z",
        "2024-03-05T01:15:00.5Z",
        "2024-03-05T01:15:00+00:00",
        "2024-03-05",
        "2024-03",
        "2024",
        "08:15:00",  # a time
        "Posyandu 2024-03-05T08:15:00+07:00",  # text that holds a time
        "3201234567890001",
    ],
)
def test_other_values_are_untouched(value):
    assert to_utc(value) == value


def test_every_date_time_in_the_body_goes_in_utc_and_dates_stay():
    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "period": {"start": "2024-03-05T08:15:00+07:00", "end": "2024-03-05T08:40:00.5+07:00"},
        "statusHistory": [
            {"status": "arrived", "period": {"start": "2024-03-05T08:10:00+08:00"}},
        ],
        "extension": [
            {"url": "http://example.org/x", "valueDateTime": "2024-03-05T09:00:00+09:00"}
        ],
    }
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "2023-01-31"}

    body, _ = prepare(encounter)
    patient_body, _ = prepare(patient)

    assert body["period"] == {
        "start": "2024-03-05T01:15:00+00:00",
        "end": "2024-03-05T01:40:00.5+00:00",
    }
    assert body["statusHistory"][0]["period"]["start"] == "2024-03-05T00:10:00+00:00"
    assert body["extension"][0]["valueDateTime"] == "2024-03-05T00:00:00+00:00"
    assert patient_body["birthDate"] == "2023-01-31"


def test_the_local_resource_is_not_changed():
    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "meta": {"versionId": "3", "lastUpdated": "2024-03-05T08:15:00+07:00"},
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2024-03-05T08:15:00+07:00"},
    }
    before = copy.deepcopy(encounter)

    prepare(encounter)

    assert encounter == before


# id, meta, identifier, partOf --------------------------------------------------------------------


def test_local_meta_is_dropped_and_profiles_kept():
    observation = {
        "resourceType": "Observation",
        "id": "o1",
        "meta": {
            "versionId": "4",
            "lastUpdated": "2024-03-05T08:15:00.123+07:00",
            "source": "#posyandu-app",
            "profile": ["https://fhir.ilp-gateway.id/StructureDefinition/ilp-obs-body-weight"],
        },
        "status": "final",
    }
    bare = {
        "resourceType": "Observation",
        "id": "o2",
        "meta": {"versionId": "1"},
        "status": "final",
    }

    body, _ = prepare(observation)
    bare_body, _ = prepare(bare)

    assert body["meta"] == {"profile": observation["meta"]["profile"]}
    assert "meta" not in bare_body


def test_a_create_carries_no_id_and_an_update_the_upstream_id():
    patient = {"resourceType": "Encounter", "id": "e1", "status": "finished"}

    created, _ = prepare(patient)
    updated, _ = prepare(patient, upstream_id="ENC-9")

    assert "id" not in created
    assert updated["id"] == "ENC-9"


def test_the_facility_identifier_is_added_once():
    system = facility_system("Encounter", ORG)
    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "identifier": [{"system": "https://example.org/visit", "value": "V-1"}],
        "status": "finished",
    }

    body, _ = prepare(encounter)
    again, _ = prepare({**body, "id": "e1"})

    assert system == "http://sys-ids.kemkes.go.id/encounter/100026"
    assert body["identifier"] == [
        {"system": "https://example.org/visit", "value": "V-1"},
        {"use": "official", "system": system, "value": "e1"},
    ]
    assert [i["system"] for i in again["identifier"]].count(system) == 1


def test_a_resource_without_identifiers_gets_one():
    body, _ = prepare({"resourceType": "Observation", "id": "obs-1", "status": "final"})

    assert body["identifier"] == [
        {
            "use": "official",
            "system": f"http://sys-ids.kemkes.go.id/observation/{ORG}",
            "value": "obs-1",
        }
    ]


def test_satusehat_names_of_identifier_systems():
    assert facility_system("AllergyIntolerance", ORG).endswith("/allergy/100026")
    assert facility_system("EpisodeOfCare", ORG).endswith("/episode-of-care/100026")
    assert facility_system("Location", ORG).endswith("/location/100026")


def test_an_organization_without_part_of_becomes_part_of_the_upstream_organization():
    posyandu = {"resourceType": "Organization", "id": "posy-1", "name": "Posyandu Mawar"}
    ward = {
        "resourceType": "Organization",
        "id": "ward",
        "partOf": {"reference": "Organization/pkm"},
    }

    body, _ = prepare(posyandu)
    ward_body, _ = prepare(ward)

    assert body["partOf"] == {"reference": f"Organization/{ORG}"}
    assert ward_body["partOf"] == {"reference": "Organization/ORG-2"}


# references ----------------------------------------------------------------------------------


def test_references_are_rewritten_to_upstream_ids_everywhere():
    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "subject": {"reference": "Patient/p1", "display": "Siti"},
        "participant": [
            {"individual": {"reference": "Practitioner/n1"}},
            {"individual": {"reference": "Practitioner/n1/_history/2"}},
        ],
        "location": [{"location": {"reference": "Location/posyandu-1"}}],
        "serviceProvider": {"reference": "Organization/pkm"},
        "extension": [
            {"url": "http://example.org/ref", "valueReference": {"reference": "Patient/p1"}}
        ],
    }

    body, left_out = prepare(encounter)

    assert left_out == []
    assert body["subject"] == {"reference": "Patient/P0001", "display": "Siti"}
    assert [p["individual"]["reference"] for p in body["participant"]] == [
        "Practitioner/N10000001",
        "Practitioner/N10000001",
    ]
    assert body["location"][0]["location"]["reference"] == "Location/LOC-3"
    assert body["serviceProvider"]["reference"] == "Organization/ORG-2"
    assert body["extension"][0]["valueReference"]["reference"] == "Patient/P0001"


def test_references_that_are_not_local_are_kept():
    observation = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "subject": {"reference": "https://other.example.org/fhir/Patient/9"},
        "focus": [{"reference": "urn:uuid:7f0a8c5e-7d35-4c6c-9b52-2b9b3f6b1a10"}],
        "hasMember": [{"identifier": {"system": "http://example.org", "value": "x"}}],
        "performer": [{"reference": "#nakes"}],
        "contained": [{"resourceType": "Practitioner", "id": "nakes", "name": [{"text": "Bidan"}]}],
    }
    calls = []

    body, left_out = prepare(observation, resolve=lambda t, i: calls.append((t, i)))

    assert calls == [] and left_out == []
    for key in ("subject", "focus", "hasMember", "performer"):
        assert body[key] == observation[key]


def test_references_inside_contained_resources_are_rewritten():
    medication_request = {
        "resourceType": "MedicationRequest",
        "id": "mr1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationReference": {"reference": "#med"},
        "contained": [
            {
                "resourceType": "Medication",
                "id": "med",
                "manufacturer": {"reference": "Organization/pkm"},
            },
        ],
    }

    body, _ = prepare(medication_request)

    assert body["contained"][0]["manufacturer"]["reference"] == "Organization/ORG-2"
    assert body["contained"][0]["id"] == "med"
    assert body["medicationReference"] == {"reference": "#med"}


def test_a_cycle_is_left_out_with_the_list_item_and_reported():
    # Encounter.diagnosis names a Condition whose encounter is this Encounter: the Condition
    # has no upstream id yet, so its diagnosis item goes later; the other item stays.
    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "subject": {"reference": "Patient/p1"},
        "diagnosis": [
            {"condition": {"reference": "Condition/new"}, "rank": 1},
            {"condition": {"reference": "Condition/c1"}, "rank": 2},
        ],
    }

    body, left_out = prepare(encounter)

    assert left_out == [("Condition", "new")]
    assert body["diagnosis"] == [{"condition": {"reference": "Condition/COND-4"}, "rank": 2}]
    assert body["subject"] == {"reference": "Patient/P0001"}


def test_a_list_left_empty_and_a_top_level_reference_are_left_out():
    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "subject": {"reference": "Patient/p1"},
        "diagnosis": [{"condition": {"reference": "Condition/new"}}],
    }
    condition = {
        "resourceType": "Condition",
        "id": "new",
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/unsent"},
    }

    body, left_out = prepare(encounter)
    condition_body, condition_left_out = prepare(condition)

    assert "diagnosis" not in body and left_out == [("Condition", "new")]
    assert "encounter" not in condition_body and condition_left_out == [("Encounter", "unsent")]
    assert condition_body["subject"] == {"reference": "Patient/P0001"}
