"""Search behaviour an integrator relies on, on SQLite and PostgreSQL (fresh database each)."""

from __future__ import annotations

import threading
from urllib.parse import quote

import pytest

from server.storage.search import store
from tests.helpers import created_id, patient, post, put

NIK = "https://fhir.kemkes.go.id/id/nik"


def _ids(client, query, **headers):
    response = client.get("/fhir/" + query, headers=headers)
    assert response.status_code == 200, response.json
    return {e["resource"]["id"] for e in response.json.get("entry", ())}


def _observation(client, subject, when, kg=12.5):
    return created_id(
        post(
            client,
            "/fhir/Observation",
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                "subject": {"reference": f"Patient/{subject}"},
                "effectiveDateTime": when,
                "valueQuantity": {
                    "value": kg,
                    "unit": "kg",
                    "system": "http://unitsofmeasure.org",
                    "code": "kg",
                },
            },
        )
    )


def test_dates_with_indonesian_offsets_compare_as_instants(client):
    put(client, "/fhir/Patient/p", patient(id="p"))
    wib = _observation(client, "p", "2026-11-23T08:00:00+07:00")  # 01:00 UTC
    wit = _observation(client, "p", "2026-11-23T09:30:00+09:00")  # 00:30 UTC
    assert _ids(client, "Observation?date=ge2026-11-23T01:00:00Z") == {wib}
    assert _ids(client, "Observation?date=lt2026-11-23T08:00:00" + quote("+07:00")) == {wit}
    assert _ids(client, "Observation?date=2026-11-23") == {wib, wit}
    assert _ids(client, "Observation?date=2026-11-22") == set()


def test_string_search_folds_case_and_accents(client):
    put(client, "/fhir/Patient/a", patient(id="a", family="Siti Nurhaliza"))
    put(client, "/fhir/Patient/b", patient(id="b", nik="3201234567890002", family="Séno"))
    assert _ids(client, "Patient?family=siti") == {"a"}
    assert _ids(client, "Patient?family=SENO") == {"b"}
    assert _ids(client, "Patient?family:contains=halI") == {"a"}
    assert _ids(client, "Patient?family:exact=Séno") == {"b"}


def test_identifier_and_or_lists(client):
    put(client, "/fhir/Patient/a", patient(id="a", nik="1"))
    put(client, "/fhir/Patient/b", patient(id="b", nik="2"))
    assert _ids(client, f"Patient?identifier={NIK}|1,{NIK}|2") == {"a", "b"}
    assert _ids(client, f"Patient?identifier={NIK}|1&identifier={NIK}|2") == set()


def test_in_modifier_uses_a_value_set_held_by_the_server(client):
    put(client, "/fhir/Patient/p", patient(id="p"))
    weight = _observation(client, "p", "2026-01-01")
    put(
        client,
        "/fhir/ValueSet/anthropometry",
        {
            "resourceType": "ValueSet",
            "id": "anthropometry",
            "url": "https://fhir.ilp-gateway.id/ValueSet/anthropometry",
            "status": "active",
            "compose": {
                "include": [
                    {
                        "system": "http://loinc.org",
                        "concept": [{"code": "29463-7"}, {"code": "8302-2"}],
                    }
                ]
            },
        },
    )
    url = "https://fhir.ilp-gateway.id/ValueSet/anthropometry"
    assert _ids(client, f"Observation?code:in={url}") == {weight}
    assert _ids(client, f"Observation?code:not-in={url}") == set()
    unknown = client.get("/fhir/Observation?code:in=https://nowhere/ValueSet/x")
    assert unknown.status_code == 400


def test_unknown_parameter_is_400_unless_lenient(client):
    strict = client.get("/fhir/Patient?nonsense=1")
    assert strict.status_code == 400
    assert strict.json["issue"][0]["expression"] == ["nonsense"]
    lenient = client.get(
        "/fhir/Patient?nonsense=1&family=x", headers={"Prefer": "handling=lenient"}
    )
    assert lenient.status_code == 200
    assert "nonsense" not in lenient.json["link"][0]["url"]
    assert "family=x" in lenient.json["link"][0]["url"]


def test_malformed_values_name_the_parameter(client):
    for query, name in [
        ("Patient?birthdate=2026-13-01", "birthdate"),
        ("Observation?value-quantity=abc", "value-quantity"),
        ("Patient?_count=-1", "_count"),
        ("Patient?_sort=nonsense", "_sort"),
        ("Patient?gender:missing=maybe", "gender:missing"),
        # found by tests/fuzz, each a 500: a float overflow, a 10**99999999999 never finishing,
        # int('²') after str.isdigit() said yes
        ("Observation?value-quantity=1e999", "value-quantity"),
        ("Observation?value-quantity=gt0e400", "value-quantity"),
        ("Encounter?length=1e99999999999", "length"),
        ("Patient?_count=%C2%B2", "_count"),
    ]:
        response = client.get("/fhir/" + query)
        assert response.status_code == 400, query
        assert response.json["issue"][0]["expression"] == [name], query


def test_huge_count_is_capped_not_a_fault(client):
    # found by tests/fuzz: int() refuses more than 4,300 digits (a 500)
    response = client.get("/fhir/Patient?_count=" + "9" * 5000)
    assert response.status_code == 200
    assert "_count=" in response.get_json()["link"][0]["url"]


def test_nul_in_a_search_value_is_refused_by_name(client):
    # found by tests/fuzz: PostgreSQL text cannot hold U+0000 (a 500)
    for query in ("Patient?name=%00", "Patient?identifier=a%00b", "Patient?_id=%00"):
        response = client.get("/fhir/" + query)
        assert response.status_code == 400, query
        assert response.get_json()["issue"][0]["expression"][0] in ("name", "identifier", "_id")
    assert client.delete("/fhir/Patient?name=%00").status_code == 400


def test_post_search_equals_get(client):
    put(client, "/fhir/Patient/a", patient(id="a", family="Ayu"))
    response = client.post(
        "/fhir/Patient/_search",
        data="family=ayu",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert {e["resource"]["id"] for e in response.json["entry"]} == {"a"}


def test_next_links_survive_writes_between_pages(client):
    for index in range(6):
        put(client, f"/fhir/Patient/p{index}", patient(id=f"p{index}", nik=str(index)))
    first = client.get("/fhir/Patient?_count=3").json
    page_one = [e["resource"]["id"] for e in first["entry"]]
    client.delete(f"/fhir/Patient/{page_one[0]}")  # a row before the cursor goes away
    put(client, "/fhir/Patient/a0", patient(id="a0", nik="x"))  # and one sorts before it
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = client.get(next_url.replace("http://testserver", "")).json
    assert [e["resource"]["id"] for e in second["entry"]] == ["p3", "p4", "p5"]


def test_deleted_resources_are_not_found(client):
    put(client, "/fhir/Patient/a", patient(id="a", family="Gone"))
    client.delete("/fhir/Patient/a")
    assert _ids(client, "Patient?family=gone") == set()


def test_concurrent_conditional_creates_make_exactly_one(app):
    barrier = threading.Barrier(20)
    statuses = []

    def create():
        client = app.test_client()
        barrier.wait()
        response = post(
            client,
            "/fhir/Patient",
            patient(nik="race"),
            **{"If-None-Exist": f"identifier={NIK}|race"},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=create) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 19 + [201]
    assert _ids(app.test_client(), f"Patient?identifier={NIK}|race").__len__() == 1


def test_sort_by_date_descending_and_total(client):
    put(client, "/fhir/Patient/p", patient(id="p"))
    old = _observation(client, "p", "2025-01-01")
    new = _observation(client, "p", "2026-06-01")
    bundle = client.get("/fhir/Observation?_sort=-date&_total=accurate").json
    assert [e["resource"]["id"] for e in bundle["entry"]] == [new, old]
    assert bundle["total"] == 2


def test_bounded_date_range_and_single_condition_count(client):
    put(client, "/fhir/Patient/p", patient(id="p"))
    inside = _observation(client, "p", "2026-11-03")
    _observation(client, "p", "2026-10-30")
    _observation(client, "p", "2026-11-09")
    week = "Observation?date=ge2026-11-01&date=lt2026-11-08"
    assert _ids(client, week) == {inside}
    counted = client.get("/fhir/Observation?code=http://loinc.org|29463-7&_summary=count").json
    assert counted["total"] == 3
    client.delete(f"/fhir/Observation/{inside}")
    counted = client.get("/fhir/Observation?code=http://loinc.org|29463-7&_summary=count").json
    assert counted["total"] == 2


def test_sort_by_id_descending_pages_backwards(client):
    for name in ("a", "b", "c"):
        put(client, f"/fhir/Patient/{name}", patient(id=name, nik=name))
    first = client.get("/fhir/Patient?_sort=-_id&_count=2").json
    assert [e["resource"]["id"] for e in first["entry"]] == ["c", "b"]
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = client.get(next_url.replace("http://testserver", "")).json
    assert [e["resource"]["id"] for e in second["entry"]] == ["a"]


@pytest.mark.parametrize("ids_max", [1000, 1, 0], ids=["listed", "some-listed", "subqueries"])
def test_has_and_chains_read_first_as_lists_or_kept_as_subqueries(client, monkeypatch, ids_max):
    """Small nested sets become id lists (store.NESTED_IDS_MAX), larger ones stay subqueries:
    the same results either way, without deleted sources."""
    monkeypatch.setattr(store, "NESTED_IDS_MAX", ids_max)
    for org in ("o1", "o2"):
        put(client, f"/fhir/Organization/{org}", {"resourceType": "Organization", "id": org})
    for name, org in (("a", "o1"), ("b", "o1"), ("c", "o2")):
        managed = {"managingOrganization": {"reference": f"Organization/{org}"}}
        put(client, f"/fhir/Patient/{name}", patient(id=name, nik=name, **managed))
    _observation(client, "a", "2026-01-01", kg=9.5)
    _observation(client, "a", "2026-02-01", kg=10.5)
    _observation(client, "b", "2026-01-01", kg=30)
    gone = _observation(client, "b", "2026-02-01", kg=8)
    c_obs = {_observation(client, "c", day, kg=11) for day in ("2026-01-01", "2026-02-01")}
    client.delete(f"/fhir/Observation/{gone}")
    light = "_has:Observation:subject:value-quantity=lt20"
    assert _ids(client, f"Patient?{light}") == {"a", "c"}
    assert _ids(client, f"Patient?organization=Organization/o1&{light}") == {"a"}
    assert _ids(client, "Patient?_has:Observation:subject:value-quantity=lt1") == set()
    assert client.get(f"/fhir/Patient?{light}&_summary=count").json["total"] == 2
    nested = "Organization?_has:Patient:organization:_has:Observation:subject:value-quantity"
    assert _ids(client, f"{nested}=lt20") == {"o1", "o2"}
    assert _ids(client, f"{nested}=gt20") == {"o1"}
    assert _ids(client, "Observation?subject:Patient.organization=Organization/o2") == c_obs
    has_chain = "Patient?_has:Observation:subject:subject:Patient.identifier=c"
    assert _ids(client, has_chain) == {"c"}
