"""Searches over the official R4 examples give what a FHIR user expects, on both databases.

Expected ids were read off the example files of hl7.fhir.r4.examples 4.0.1 (e.g.
Observation/example is a body weight of 185 [lb_av]); each query runs on SQLite
and on PostgreSQL against the same expectation, so both give identical results.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

QUERIES = [
    # token: system|code, code alone, :text on display words, :not
    ("Observation?code=http://loinc.org|29463-7", {"example"}),
    ("Observation?code=29463-7", {"example"}),
    ("Observation?code:text=weight", {"example"}),
    ("Patient?gender=male&birthdate=lt1940", {"glossy", "xcda"}),
    # quantity with prefixes, system and code, or a unit alone
    ("Observation?value-quantity=185|http://unitsofmeasure.org|[lb_av]", {"example"}),
    ("Observation?value-quantity=gt70|http://unitsofmeasure.org|kg", set()),
    ("Observation?value-quantity=ap185||lbs", {"example"}),
    # dates: partial dates are ranges
    ("Patient?birthdate=1974-12-25", {"example", "ch-example"}),
    ("Patient?birthdate=lt1950", {"f001", "glossy", "xcda"}),
    # strings: case and accents folded, prefix match; :exact
    ("Patient?name=peter", {"example"}),
    ("Patient?family=CHALM", {"example"}),
    ("Patient?name:exact=Peter", {"example"}),
    ("Patient?name:exact=peter", set()),
    # reference, chained, reverse chained
    ("Encounter?_has:Observation:encounter:code=http://loinc.org|29463-7", {"example"}),
    ("Patient?_has:Observation:patient:code=http://loinc.org|29463-7", {"example"}),
    ("Encounter?subject:Patient.name=peter&status=in-progress", {"example", "emerg"}),
    ("Encounter?subject:Patient.name=peter&status=finished", {"home"}),
    # composite: the pair must come from one component
    (
        "Observation?component-code-value-quantity=http://loinc.org|8480-6$gt100",
        {"blood-pressure", "blood-pressure-dar"},
    ),
    ("Observation?component-code-value-quantity=http://loinc.org|8462-4$gt100", set()),
    # :missing
    ("Patient?gender:missing=true", {"ihe-pcd"}),
]


def _ids(client, query, **headers):
    response = client.get("/fhir/" + query.replace("+", quote("+")), headers=headers)
    assert response.status_code == 200, response.json
    return {e["resource"]["id"] for e in response.json.get("entry", ())}


@pytest.mark.parametrize("query, expected", QUERIES, ids=[q for q, _ in QUERIES])
def test_search_over_official_examples(examples_client, query, expected):
    assert _ids(examples_client, query + "&_count=100") == expected


def test_summary_count_and_accurate_total_agree(examples_client):
    counted = examples_client.get("/fhir/Patient?_summary=count").json
    assert "entry" not in counted
    page = examples_client.get("/fhir/Patient?_total=accurate&_count=500").json
    assert counted["total"] == page["total"] == len(page["entry"]) > 20


def test_include_adds_each_referenced_patient_once(examples_client):
    bundle = examples_client.get("/fhir/Encounter?_id=example,home&_include=Encounter:subject").json
    modes = sorted((e["search"]["mode"], e["resource"]["resourceType"]) for e in bundle["entry"])
    assert modes == [("include", "Patient"), ("match", "Encounter"), ("match", "Encounter")]


def test_revinclude_iterate_follows_to_second_level(examples_client):
    bundle = examples_client.get(
        "/fhir/Patient?_id=example&_revinclude=Encounter:subject"
        "&_revinclude:iterate=Observation:encounter"
    ).json
    included = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]}
    assert ("Observation", "example") in included  # via Encounter/example
    assert ("Encounter", "example") in included


def test_sort_by_family_then_paging_visits_every_patient_once(examples_client):
    url = "/fhir/Patient?_sort=family,-birthdate&_count=5"
    seen, families = [], []
    while url:
        bundle = examples_client.get(url.replace("http://testserver", "")).json
        seen += [e["resource"]["id"] for e in bundle.get("entry", ())]
        families += [
            (e["resource"].get("name") or [{}])[0].get("family") for e in bundle.get("entry", ())
        ]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    total = examples_client.get("/fhir/Patient?_summary=count").json["total"]
    assert len(seen) == len(set(seen)) == total
    present = [f.lower() for f in families if f]
    assert present == sorted(present)  # patients without a family come last
    assert families[-1] is None


def test_summary_true_keeps_summary_elements_and_marks_subsetted(examples_client):
    bundle = examples_client.get("/fhir/Patient?_id=example&_summary=true").json
    patient = bundle["entry"][0]["resource"]
    assert "name" in patient and "contact" not in patient
    assert any(tag["code"] == "SUBSETTED" for tag in patient["meta"]["tag"])


def test_elements_keeps_only_the_named_elements(examples_client):
    bundle = examples_client.get("/fhir/Patient?_id=example&_elements=birthDate").json
    patient = bundle["entry"][0]["resource"]
    assert set(patient) == {"resourceType", "id", "meta", "birthDate", "_birthDate"}
