"""Conditional create (If-None-Exist), conditional update and delete (http.html#cond-update)."""

from __future__ import annotations

from tests.helpers import created_id, patient, post, put

NIK = "https://fhir.kemkes.go.id/id/nik"


def test_if_none_exist_without_match_creates(client):
    response = post(client, "/fhir/Patient", patient(), **{"If-None-Exist": f"identifier={NIK}|1"})
    assert response.status_code == 201


def test_if_none_exist_with_one_match_returns_it_without_writing(client):
    rid = created_id(post(client, "/fhir/Patient", patient(nik="3201234567890001")))
    response = post(
        client,
        "/fhir/Patient",
        patient(nik="3201234567890001", family="Other"),
        **{"If-None-Exist": f"identifier={NIK}|3201234567890001"},
    )
    assert response.status_code == 200
    assert response.get_json()["id"] == rid
    assert response.get_json()["name"][0]["family"] == "Siti"
    bundle = client.get(f"/fhir/Patient?identifier={NIK}|3201234567890001").get_json()
    assert len(bundle["entry"]) == 1


def test_if_none_exist_accepts_a_full_query_url(client):
    rid = created_id(post(client, "/fhir/Patient", patient()))
    response = post(
        client,
        "/fhir/Patient",
        patient(),
        **{"If-None-Exist": f"Patient?identifier={NIK}|3201234567890001"},
    )
    assert response.status_code == 200 and response.get_json()["id"] == rid


def test_if_none_exist_with_two_matches_is_412(client):
    post(client, "/fhir/Patient", patient(nik="1111"))
    post(client, "/fhir/Patient", patient(nik="1111"))
    response = post(
        client, "/fhir/Patient", patient(nik="1111"), **{"If-None-Exist": "identifier=1111"}
    )
    assert response.status_code == 412
    assert response.get_json()["issue"][0]["code"] == "multiple-matches"


def test_if_none_exist_with_unknown_parameter_is_400_naming_it(client):
    response = post(client, "/fhir/Patient", patient(), **{"If-None-Exist": "shoe-size=42"})
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["shoe-size"]


def test_conditional_update_creates_when_nothing_matches(client):
    response = put(
        client, f"/fhir/Patient?identifier={NIK}|3201234567890009", patient(nik="3201234567890009")
    )
    assert response.status_code == 201


def test_conditional_update_updates_the_single_match(client):
    rid = created_id(post(client, "/fhir/Patient", patient()))
    response = put(
        client, f"/fhir/Patient?identifier={NIK}|3201234567890001", patient(family="Aminah")
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == rid and body["meta"]["versionId"] == "2"


def test_conditional_update_with_several_matches_is_412(client):
    post(client, "/fhir/Patient", patient(nik="2222"))
    post(client, "/fhir/Patient", patient(nik="2222"))
    response = put(client, "/fhir/Patient?identifier=2222", patient(nik="2222"))
    assert response.status_code == 412


def test_conditional_update_with_conflicting_body_id_is_400(client):
    created_id(post(client, "/fhir/Patient", patient()))
    response = put(
        client,
        f"/fhir/Patient?identifier={NIK}|3201234567890001",
        {**patient(), "id": "someone-else"},
    )
    assert response.status_code == 400


def test_conditional_update_without_criteria_is_400(client):
    response = put(client, "/fhir/Patient", patient())
    assert response.status_code == 400


def test_conditional_delete_removes_the_single_match(client):
    rid = created_id(post(client, "/fhir/Patient", patient()))
    response = client.delete(f"/fhir/Patient?identifier={NIK}|3201234567890001")
    assert response.status_code == 204
    assert client.get(f"/fhir/Patient/{rid}").status_code == 410


def test_conditional_delete_with_several_matches_is_412_and_deletes_nothing(client):
    first = created_id(post(client, "/fhir/Patient", patient(nik="3333")))
    post(client, "/fhir/Patient", patient(nik="3333"))
    response = client.delete("/fhir/Patient?identifier=3333")
    assert response.status_code == 412
    assert client.get(f"/fhir/Patient/{first}").status_code == 200


def test_search_by_id_and_identifier_forms(client):
    rid = created_id(post(client, "/fhir/Patient", patient(nik="4444")))
    other = created_id(
        post(
            client, "/fhir/Patient", {"resourceType": "Patient", "identifier": [{"value": "4444"}]}
        )
    )

    def ids(query):
        return sorted(e["resource"]["id"] for e in client.get(query).get_json()["entry"])

    assert ids(f"/fhir/Patient?_id={rid}") == [rid]
    assert ids("/fhir/Patient?identifier=4444") == sorted([rid, other])
    assert ids(f"/fhir/Patient?identifier={NIK}|4444") == [rid]
    assert ids("/fhir/Patient?identifier=|4444") == [other]
    assert ids(f"/fhir/Patient?identifier={NIK}|") == [rid]
    assert ids(f"/fhir/Patient?identifier=9999,{NIK}|4444") == [rid]


def test_very_long_identifier_is_stored_not_a_database_error(client):
    long_value = "9" * 400
    response = post(client, "/fhir/Patient", patient(nik=long_value))
    assert response.status_code == 201
    bundle = client.get(f"/fhir/Patient?identifier={long_value}").get_json()
    assert len(bundle["entry"]) == 1
