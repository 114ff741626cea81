"""History of instance, type and system (http.html#history)."""

from __future__ import annotations

from tests.helpers import created_id, patient, post, put


def test_instance_history_lists_versions_newest_first(client):
    rid = created_id(post(client, "/fhir/Patient", patient(family="A")))
    put(client, f"/fhir/Patient/{rid}", {**patient(family="B"), "id": rid})
    client.delete(f"/fhir/Patient/{rid}")
    bundle = client.get(f"/fhir/Patient/{rid}/_history").get_json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "history"
    assert bundle["total"] == 3
    entries = bundle["entry"]
    assert [e["request"]["method"] for e in entries] == ["DELETE", "PUT", "POST"]
    assert [e["response"]["etag"] for e in entries] == ['W/"3"', 'W/"2"', 'W/"1"']
    assert "resource" not in entries[0]
    assert entries[1]["resource"]["name"][0]["family"] == "B"
    assert entries[2]["request"]["url"] == "Patient"
    assert entries[1]["request"]["url"] == f"Patient/{rid}"
    assert entries[2]["fullUrl"] == f"http://testserver/fhir/Patient/{rid}"


def test_history_of_unknown_instance_is_404(client):
    assert client.get("/fhir/Patient/nobody/_history").status_code == 404


def test_type_and_system_history(client):
    created_id(post(client, "/fhir/Patient", patient()))
    post(client, "/fhir/Organization", {"resourceType": "Organization", "name": "Puskesmas A"})
    type_history = client.get("/fhir/Patient/_history").get_json()
    assert [e["resource"]["resourceType"] for e in type_history["entry"]] == ["Patient"]
    system = client.get("/fhir/_history").get_json()
    assert [e["resource"]["resourceType"] for e in system["entry"]] == ["Organization", "Patient"]


def test_history_pages_with_stable_next_links(client):
    rid = created_id(post(client, "/fhir/Patient", patient(family="v1")))
    for version in range(2, 6):
        put(client, f"/fhir/Patient/{rid}", {**patient(family=f"v{version}"), "id": rid})
    page = client.get(f"/fhir/Patient/{rid}/_history?_count=2").get_json()
    families = []
    while True:
        families += [e["resource"]["name"][0]["family"] for e in page["entry"]]
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not following:
            break
        # A write between pages must not shift what the next page holds.
        put(client, f"/fhir/Patient/{rid}", {**patient(family=f"late{len(families)}"), "id": rid})
        page = client.get(following[0].removeprefix("http://testserver")).get_json()
    assert families == ["v5", "v4", "v3", "v2", "v1"]


def test_history_since_filters_older_versions(client):
    rid = created_id(post(client, "/fhir/Patient", patient(family="old")))
    stamp = client.get(f"/fhir/Patient/{rid}").get_json()["meta"]["lastUpdated"]
    put(client, f"/fhir/Patient/{rid}", {**patient(family="new"), "id": rid})
    future = client.get("/fhir/_history?_since=2999-01-01T00:00:00Z").get_json()
    assert "entry" not in future
    since = client.get(f"/fhir/_history?_since={stamp.replace('+', '%2B')}").get_json()
    assert len(since["entry"]) == 2


def test_history_rejects_bad_parameters(client):
    assert client.get("/fhir/_history?_since=yesterday").status_code == 400
    assert client.get("/fhir/_history?_count=abc").status_code == 400


def test_history_count_and_cursor_beyond_ascii_digits_or_bigint(client):
    # Found by tests/fuzz: each of these was a 500 (int('²'), a 5,000-digit int(), an int
    # too large for the SQL parameter).
    post(client, "/fhir/Patient", patient())
    for query, name in [("_count=%C2%B2", "_count"), ("_cursor=%C2%B2", "_cursor")]:
        response = client.get(f"/fhir/_history?{query}")
        assert response.status_code == 400, query
        assert response.get_json()["issue"][0]["expression"] == [name], query
    assert client.get("/fhir/_history?_count=" + "9" * 5000).status_code == 200
    page = client.get("/fhir/_history?_cursor=99999999999999999999").get_json()
    assert len(page["entry"]) == 1
