"""Batches on POST /fhir, Bundles of other types on POST /fhir/Bundle, and the limits.

Runs on SQLite and PostgreSQL (http.html#transaction, bundle.html).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from server import create_app
from tests.api.test_bundles import (
    NIK,
    bundle,
    entry,
    example,
    ids_of,
    issue,
    observation,
    post_bundle,
    read,
    statuses,
    total,
    urn,
)
from tests.helpers import FHIR_JSON, created_id, patient, post, put

# -- batch ----------------------------------------------------------------------------------


def test_one_bad_batch_entry_does_not_stop_the_others(client):
    response = post_bundle(
        client,
        bundle(
            "batch",
            entry("POST", "Patient", patient(nik="1")),
            entry("POST", "Patient", {**patient(nik="2"), "birthDate": "2020-13-01"}),
            entry("GET", "Patient/nope"),
            entry("POST", "Patient", patient(nik="3")),
        ),
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["type"] == "batch-response"
    assert statuses(response) == ["201 Created", "400 Bad Request", "404 Not Found", "201 Created"]
    failed = body["entry"][1]["response"]["outcome"]["issue"][0]
    assert failed["expression"] == ["Bundle.entry[1].resource.birthDate"]
    assert body["entry"][2]["response"]["outcome"]["issue"][0]["code"] == "not-found"
    assert total(client, f"/fhir/Patient?identifier={NIK}|1,{NIK}|2,{NIK}|3") == 2


def test_a_failing_write_in_a_batch_rolls_back_only_its_own_entry(client):
    rid = created_id(post(client, "/fhir/Patient", patient()))
    response = post_bundle(
        client,
        bundle(
            "batch",
            entry("PUT", f"Patient/{rid}", {**patient(family="A"), "id": rid}, ifMatch='W/"9"'),
            entry("PUT", f"Patient/{rid}", {**patient(family="B"), "id": rid}, ifMatch='W/"1"'),
        ),
    )
    assert statuses(response) == ["412 Precondition Failed", "200 OK"]
    assert read(client, f"Patient/{rid}")["name"][0]["family"] == "B"


def test_batch_does_not_link_entries(client):
    child = urn()
    response = post_bundle(
        client,
        bundle(
            "batch",
            entry("POST", "Patient", patient(), child),
            entry("POST", "Observation", observation(child)),
            entry("POST", "Observation", observation(f"Patient?identifier={NIK}|1")),
            entry("POST", "Observation", observation("Patient/elsewhere")),
        ),
    )
    assert statuses(response) == [
        "201 Created",
        "400 Bad Request",
        "400 Bad Request",
        "201 Created",
    ]
    outcomes = [e["response"].get("outcome") for e in response.get_json()["entry"]]
    assert outcomes[1]["issue"][0]["expression"] == ["Bundle.entry[1].resource.subject.reference"]
    assert "transaction" in outcomes[2]["issue"][0]["diagnostics"]


def test_batch_honours_if_none_exist_per_entry(client):
    rid = created_id(post(client, "/fhir/Patient", patient(nik="7")))
    query = f"identifier={NIK}|7"
    response = post_bundle(
        client,
        bundle(
            "batch",
            entry("POST", "Patient", patient(nik="7"), ifNoneExist=query),
            entry("POST", "Patient", patient(nik="8"), ifNoneExist=f"identifier={NIK}|8"),
        ),
    )
    assert statuses(response) == ["200 OK", "201 Created"]
    assert ids_of(response)[0] == f"Patient/{rid}"


def test_official_batch_request_example_answers_every_entry(client):
    """Bundle-bundle-request-simplesummary.json: four GETs about Patient/example."""
    put(client, "/fhir/Patient/example", {**patient(), "id": "example"})
    response = post_bundle(client, example("Bundle-bundle-request-simplesummary.json"))
    assert response.status_code == 200
    got = statuses(response)
    assert len(got) == 4
    assert got[0] == "200 OK"
    assert response.get_json()["entry"][0]["resource"]["id"] == "example"
    # MedicationStatement is not a type this server holds.
    assert got[2] == "404 Not Found"
    # Condition and Observation searches answer as far as search supports their parameters.
    assert got[1] in ("200 OK", "400 Bad Request") and got[3] in ("200 OK", "400 Bad Request")


def test_official_batch_response_shape_matches_ours(client):
    theirs = example("Bundle-bundle-response-simplesummary.json")
    put(client, "/fhir/Patient/example", {**patient(), "id": "example"})
    ours = post_bundle(client, bundle("batch", entry("GET", "/Patient/example"))).get_json()
    assert ours["type"] == theirs["type"] == "batch-response"
    assert set(ours["entry"][0]) <= {"fullUrl", "resource", "response"}
    assert set(ours["entry"][0]["response"]) == {"status", "etag", "lastModified"}
    assert theirs["entry"][0]["response"]["status"].startswith("200")


def test_batch_entry_errors_in_the_envelope_stay_with_their_entry(client):
    response = post_bundle(
        client,
        bundle(
            "batch",
            entry("POST", "Patient", patient()),
            {"request": {"method": "GET"}},
            {"resource": patient()},
        ),
    )
    assert response.status_code == 200
    assert statuses(response) == ["201 Created", "400 Bad Request", "400 Bad Request"]
    third = response.get_json()["entry"][2]["response"]["outcome"]["issue"][0]
    assert third["expression"] == ["Bundle.entry[2].request"]


def test_batch_history_metadata_and_vread_entries(client):
    rid = created_id(post(client, "/fhir/Patient", patient()))
    response = post_bundle(
        client,
        bundle(
            "batch",
            entry("GET", "metadata"),
            entry("GET", f"Patient/{rid}/_history"),
            entry("GET", f"Patient/{rid}/_history/1"),
            entry("HEAD", f"Patient/{rid}"),
        ),
    )
    assert statuses(response) == ["200 OK"] * 4
    entries = response.get_json()["entry"]
    assert entries[0]["resource"]["resourceType"] == "CapabilityStatement"
    assert entries[1]["resource"]["type"] == "history"
    assert entries[2]["resource"]["meta"]["versionId"] == "1"
    assert "resource" not in entries[3] and entries[3]["response"]["etag"] == 'W/"1"'


# -- other Bundle types -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Bundle-father.json",  # document
        "Bundle-bundle-references.json",  # collection
        "Bundle-10bb101f-a121-4264-a920-67be9cb82c74.json",  # message
        "Bundle-bundle-example.json",  # searchset
    ],
)
def test_other_bundle_types_are_stored_on_bundle_not_processed(client, name):
    official = example(name)
    refused = post_bundle(client, official)
    assert refused.status_code == 400
    assert issue(refused)["expression"] == ["Bundle.type"]
    stored = post(client, "/fhir/Bundle", official)
    assert stored.status_code == 201, stored.get_json()
    assert read(client, f"Bundle/{created_id(stored)}")["type"] == official["type"]
    assert total(client, "/fhir/Patient") == 0 and total(client, "/fhir/Observation") == 0


def test_a_transaction_posted_to_bundle_is_stored_as_is(client):
    official = example("Bundle-bundle-transaction.json")
    stored = post(client, "/fhir/Bundle", official)
    assert stored.status_code == 201
    assert total(client, "/fhir/Patient") == 0


# -- limits ---------------------------------------------------------------------------------


@pytest.fixture
def limited_client(settings):
    app = create_app(
        replace(settings, max_bundle_entries=3, max_bundle_bytes=4000, max_bundle_depth=12)
    )
    yield app.test_client()
    app.extensions["ilp"].engine.dispose()


def test_too_many_entries_is_413(limited_client):
    entries = [entry("POST", "Patient", patient(nik=str(i))) for i in range(4)]
    response = post_bundle(limited_client, bundle("transaction", *entries))
    assert response.status_code == 413
    assert issue(response)["code"] == "too-costly"
    assert issue(response)["expression"] == ["Bundle.entry"]
    assert "ILP_MAX_BUNDLE_ENTRIES" in issue(response)["diagnostics"]


def test_too_many_bytes_is_413(limited_client):
    big = patient(family="x" * 5000)
    response = post_bundle(limited_client, bundle("batch", entry("POST", "Patient", big)))
    assert response.status_code == 413
    assert "ILP_MAX_BUNDLE_BYTES" in issue(response)["diagnostics"]


def test_too_deep_is_400(limited_client):
    nested: dict = {"url": "http://example.id/ext", "valueString": "x"}
    for _ in range(8):
        nested = {"url": "http://example.id/ext", "extension": [nested]}
    deep = {**patient(), "extension": [nested]}
    response = post_bundle(limited_client, bundle("transaction", entry("POST", "Patient", deep)))
    assert response.status_code == 400
    assert issue(response)["expression"] == ["Bundle"]
    assert "ILP_MAX_BUNDLE_DEPTH" in issue(response)["diagnostics"]
    shallow = post_bundle(
        limited_client, bundle("transaction", entry("POST", "Patient", patient()))
    )
    assert shallow.status_code == 200


def test_body_limit_of_the_server_applies_to_bundles_too(settings):
    app = create_app(replace(settings, max_body_bytes=200))
    response = post_bundle(
        app.test_client(), bundle("batch", entry("POST", "Patient", patient(family="x" * 300)))
    )
    app.extensions["ilp"].engine.dispose()
    assert response.status_code == 413
    assert response.headers["Content-Type"].startswith(FHIR_JSON)
