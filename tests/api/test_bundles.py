"""Transactions on POST /fhir (http.html#transaction): order, links, conditions, atomicity.

Runs on SQLite and PostgreSQL.  The helpers at the top are shared with
test_bundles_batch.py and test_bundles_concurrency.py.
"""

from __future__ import annotations

import base64
import json
import uuid

from server.fhir.packages import R4_EXAMPLES, package_folder
from tests.conftest import PACKAGE_CACHE
from tests.helpers import FHIR_JSON, created_id, patient, post, put

NIK = "https://fhir.kemkes.go.id/id/nik"


def example(name):
    """An official R4 example (hl7.fhir.r4.examples 4.0.1) by file name."""
    return json.loads((package_folder(PACKAGE_CACHE, R4_EXAMPLES) / name).read_text())


def urn():
    return f"urn:uuid:{uuid.uuid4()}"


def entry(method, url, resource=None, full_url=None, **request):
    item = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        item["resource"] = resource
    if full_url is not None:
        item["fullUrl"] = full_url
    return item


def bundle(kind, *entries):
    result = {"resourceType": "Bundle", "type": kind}
    if entries:
        result["entry"] = list(entries)
    return result


def post_bundle(client, body, path="/fhir", **headers):
    return client.post(path, json=body, headers={"Content-Type": FHIR_JSON, **headers})


def observation(subject, code="29463-7", value=12.4, **extra):
    """A body-weight Observation (Posyandu's monthly weighing) about ``subject``."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": subject},
        "valueQuantity": {
            "value": value,
            "unit": "kg",
            "system": "http://unitsofmeasure.org",
            "code": "kg",
        },
        **extra,
    }


def statuses(response):
    return [e["response"]["status"] for e in response.get_json()["entry"]]


def issue(response, index=0):
    return response.get_json()["issue"][index]


def total(client, query):
    """How many resources a search finds (at most one page)."""
    return len(client.get(query).get_json().get("entry", []))


def version_count(client):
    """Versions stored on the whole server (system history), up to 1000."""
    return len(client.get("/fhir/_history?_count=1000").get_json().get("entry", []))


def read(client, reference):
    response = client.get(f"/fhir/{reference}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ids_of(response):
    """``Type/id`` of each response entry's location."""
    return [
        "/".join(e["response"]["location"].split("/")[-4:-2])
        if "location" in e["response"]
        else None
        for e in response.get_json()["entry"]
    ]


def posyandu_visit(nik="3201234567890001", observations=3):
    """A Posyandu visit as an EMR sends it: Patient, Encounter, weighings, linked by urn:uuid."""
    child, visit = urn(), urn()
    entries = [
        entry("POST", "Patient", patient(nik=nik), child, ifNoneExist=f"identifier={NIK}|{nik}"),
        entry(
            "POST",
            "Encounter",
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "subject": {"reference": child},
            },
            visit,
        ),
    ]
    for i in range(observations):
        weighing = observation(child, value=10 + i, encounter={"reference": visit})
        entries.append(entry("POST", "Observation", weighing, urn()))
    return bundle("transaction", *entries)


# -- the official example -----------------------------------------------------------------


def test_official_transaction_example_is_processed_in_order(client):
    """Bundle-bundle-transaction.json, less its $lookup and name-search entries."""
    example_bundle = example("Bundle-bundle-transaction.json")
    kept = [
        e
        for e in example_bundle["entry"]
        if "$" not in e["request"]["url"] and "name=" not in e["request"]["url"]
    ]
    example_bundle["entry"] = kept
    existing = put(client, "/fhir/Patient/123a", {**patient(), "id": "123a"})
    put(client, "/fhir/Patient/123a", {**patient(family="Chalmers"), "id": "123a"})
    assert existing.status_code == 201
    put(client, "/fhir/Patient/12334", {**patient(nik="77"), "id": "12334"})
    post(client, "/fhir/Patient", patient(nik="123456"))

    response = post_bundle(client, example_bundle)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["type"] == "transaction-response"
    assert [e["request"]["method"] for e in kept] == [
        "POST", "POST", "PUT", "PUT", "PUT", "DELETE", "DELETE", "GET"
    ]  # fmt: skip
    assert statuses(response) == [
        "201 Created",
        "201 Created",
        "201 Created",
        "201 Created",
        "200 OK",
        "204 No Content",
        "204 No Content",
        "200 OK",
    ]
    assert body["entry"][2]["response"]["location"].endswith("/Patient/123/_history/1")
    assert body["entry"][4]["response"]["etag"] == 'W/"3"'
    assert total(client, "/fhir/Patient?identifier=123456") == 0
    assert read(client, "Patient/123")["name"][0]["family"] == "Chalmers"


def test_official_transaction_example_if_match_mismatch_fails_whole_transaction(client):
    example_bundle = example("Bundle-bundle-transaction.json")
    example_bundle["entry"] = [e for e in example_bundle["entry"][:5]]
    put(client, "/fhir/Patient/123a", {**patient(), "id": "123a"})  # version 1, not 2
    before = version_count(client)

    response = post_bundle(client, example_bundle)

    assert response.status_code == 412
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert issue(response)["expression"] == ["Bundle.entry[4].request.ifMatch"]
    assert version_count(client) == before
    assert client.get("/fhir/Patient/123").status_code == 404


# -- links between entries ----------------------------------------------------------------


def test_urn_uuid_references_become_the_stored_ids(client):
    response = post_bundle(client, posyandu_visit())

    assert response.status_code == 200, response.get_json()
    assert statuses(response) == ["201 Created"] * 5
    patient_ref, encounter_ref, *observations = ids_of(response)
    for reference in observations:
        stored = read(client, reference)
        assert stored["subject"] == {"reference": patient_ref}
        assert stored["encounter"] == {"reference": encounter_ref}
    assert read(client, encounter_ref)["subject"] == {"reference": patient_ref}


def test_response_entries_carry_full_url_location_etag_and_last_modified(client):
    response = post_bundle(client, posyandu_visit(observations=1))
    for item in response.get_json()["entry"]:
        reference = "/".join(item["response"]["location"].split("/")[-4:-2])
        assert item["fullUrl"] == f"http://testserver/fhir/{reference}"
        assert item["response"]["etag"] == 'W/"1"'
        assert item["response"]["lastModified"].endswith("Z")
        assert item["resource"]["id"] == reference.split("/")[1]


def test_urn_oid_full_urls_are_resolved_too(client):
    oid = "urn:oid:1.2.360.1.1"
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "Observation", observation(oid)),
            entry("POST", "Patient", patient(), oid),
        ),
    )
    assert response.status_code == 200, response.get_json()
    observation_ref, patient_ref = ids_of(response)
    assert read(client, observation_ref)["subject"]["reference"] == patient_ref


def test_absolute_full_urls_resolve_relative_references_on_their_base(client):
    base = "http://emr.example.id/fhir"
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "Patient", patient(), f"{base}/Patient/local-1"),
            entry("POST", "Observation", observation("Patient/local-1"), f"{base}/Observation/o1"),
            entry("POST", "Observation", observation(f"{base}/Patient/local-1")),
        ),
    )
    assert response.status_code == 200, response.get_json()
    patient_ref, *observations = ids_of(response)
    assert patient_ref != "Patient/local-1"
    for reference in observations:
        assert read(client, reference)["subject"]["reference"] == patient_ref


def test_references_nested_anywhere_are_resolved(client):
    child = urn()
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": child},
        "code": {"text": "Stunting"},
        "evidence": [{"detail": [{"reference": child}]}],
        "extension": [
            {"url": "http://example.id/fhir/ext/about", "valueReference": {"reference": child}}
        ],
        "contained": [
            {
                "resourceType": "Observation",
                "id": "z",
                "status": "final",
                "code": {"text": "Height-for-age z-score"},
                "subject": {"reference": child},
            }
        ],
    }
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "Patient", patient(), child),
            entry("POST", "Condition", condition),
        ),
    )
    assert response.status_code == 200, response.get_json()
    patient_ref, condition_ref = ids_of(response)
    stored = read(client, condition_ref)
    assert stored["subject"]["reference"] == patient_ref
    assert stored["evidence"][0]["detail"][0]["reference"] == patient_ref
    assert stored["extension"][0]["valueReference"]["reference"] == patient_ref
    assert stored["contained"][0]["subject"]["reference"] == patient_ref


def test_uri_elements_and_narrative_links_are_resolved_but_not_canonicals(client):
    child = urn()
    observed = observation(
        child,
        text={
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><a href="{child}">anak</a></div>',
        },
        extension=[
            {"url": "http://example.id/fhir/ext/source", "valueUri": child},
            {"url": "http://example.id/fhir/ext/profile", "valueCanonical": child},
        ],
    )
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "Patient", patient(), child),
            entry("POST", "Observation", observed),
        ),
    )
    assert response.status_code == 200, response.get_json()
    patient_ref, observation_ref = ids_of(response)
    stored = read(client, observation_ref)
    absolute = f"http://testserver/fhir/{patient_ref}"
    assert f'href="{absolute}"' in stored["text"]["div"]
    assert stored["extension"][0]["valueUri"] == absolute
    assert stored["extension"][1]["valueCanonical"] == child


def test_circular_references_between_creates_are_resolved(client):
    encounter_urn, condition_urn = urn(), urn()
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "AMB"},
        "diagnosis": [{"condition": {"reference": condition_urn}}],
    }
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": encounter_urn},
    }
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "Encounter", encounter, encounter_urn),
            entry("POST", "Condition", condition, condition_urn),
        ),
    )
    assert response.status_code == 200, response.get_json()
    encounter_ref, condition_ref = ids_of(response)
    assert read(client, encounter_ref)["diagnosis"][0]["condition"]["reference"] == condition_ref
    assert read(client, condition_ref)["encounter"]["reference"] == encounter_ref


def test_reference_to_an_unknown_urn_fails_naming_the_element(client):
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "Patient", patient(), urn()),
            entry("POST", "Observation", observation(urn())),
        ),
    )
    assert response.status_code == 400
    assert issue(response)["code"] == "invalid"
    assert issue(response)["expression"] == ["Bundle.entry[1].resource.subject.reference"]
    assert total(client, "/fhir/Patient") == 0


def test_duplicate_full_urls_are_rejected(client):
    same = urn()
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "Patient", patient(), same),
            entry("POST", "Patient", patient(nik="2"), same),
        ),
    )
    assert response.status_code == 400
    assert issue(response)["expression"] == ["Bundle.entry[1].fullUrl"]
    assert total(client, "/fhir/Patient") == 0


# -- conditional references and conditional interactions ---------------------------------


def test_conditional_reference_resolves_to_the_single_match(client):
    rid = created_id(post(client, "/fhir/Patient", patient(nik="3201000000000001")))
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "Observation", observation(f"Patient?identifier={NIK}|3201000000000001")),
        ),
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{rid}"


def test_conditional_reference_without_match_fails_with_412_naming_the_entry(client):
    post(client, "/fhir/Patient", patient(nik="1"))
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "Patient", patient(nik="2")),
            entry("POST", "Observation", observation(f"Patient?identifier={NIK}|9")),
        ),
    )
    assert response.status_code == 412
    assert issue(response)["expression"] == ["Bundle.entry[1].resource.subject.reference"]
    assert "Bundle.entry[1]" in issue(response)["diagnostics"]
    assert total(client, f"/fhir/Patient?identifier={NIK}|2") == 0


def test_conditional_reference_with_several_matches_fails_with_412(client):
    post(client, "/fhir/Patient", patient(nik="5"))
    post(client, "/fhir/Patient", patient(nik="5"))
    response = post_bundle(
        client,
        bundle("transaction", entry("POST", "Observation", observation("Patient?identifier=5"))),
    )
    assert response.status_code == 412
    assert issue(response)["code"] == "multiple-matches"
    assert issue(response)["expression"] == ["Bundle.entry[0].resource.subject.reference"]


def test_conditional_reference_to_a_conditional_create_in_the_same_transaction(client):
    query = f"identifier={NIK}|3201000000000002"
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "Observation", observation(f"Patient?{query}")),
            entry("POST", "Patient", patient(nik="3201000000000002"), ifNoneExist=query),
        ),
    )
    assert response.status_code == 200, response.get_json()
    observation_ref, patient_ref = ids_of(response)
    assert read(client, observation_ref)["subject"]["reference"] == patient_ref


def test_if_none_exist_with_a_match_links_entries_to_the_existing_resource(client):
    rid = created_id(post(client, "/fhir/Patient", patient()))
    response = post_bundle(client, posyandu_visit())
    assert response.status_code == 200, response.get_json()
    assert statuses(response)[0] == "200 OK"
    _, encounter_ref, *observations = ids_of(response)
    assert read(client, encounter_ref)["subject"]["reference"] == f"Patient/{rid}"
    assert total(client, f"/fhir/Patient?identifier={NIK}|3201234567890001") == 1


def test_conditional_update_and_delete_in_a_transaction(client):
    kept = created_id(post(client, "/fhir/Patient", patient(nik="10")))
    gone = created_id(post(client, "/fhir/Patient", patient(nik="11")))
    new_child = urn()
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("PUT", f"Patient?identifier={NIK}|10", patient(nik="10", family="Updated")),
            entry("PUT", f"Patient?identifier={NIK}|12", patient(nik="12"), new_child),
            entry("DELETE", f"Patient?identifier={NIK}|11"),
            entry("POST", "Observation", observation(new_child)),
        ),
    )
    assert response.status_code == 200, response.get_json()
    assert statuses(response) == ["200 OK", "201 Created", "204 No Content", "201 Created"]
    refs = ids_of(response)
    assert refs[0] == f"Patient/{kept}"
    assert read(client, refs[0])["name"][0]["family"] == "Updated"
    assert read(client, refs[3])["subject"]["reference"] == refs[1]
    assert client.get(f"/fhir/Patient/{gone}").status_code == 410


def test_if_match_on_put_and_delete(client):
    rid = created_id(post(client, "/fhir/Patient", patient()))
    ok = post_bundle(
        client,
        bundle(
            "transaction",
            entry("PUT", f"Patient/{rid}", {**patient(family="B"), "id": rid}, ifMatch='W/"1"'),
        ),
    )
    assert ok.status_code == 200 and ok.get_json()["entry"][0]["response"]["etag"] == 'W/"2"'
    stale = post_bundle(
        client, bundle("transaction", entry("DELETE", f"Patient/{rid}", ifMatch='W/"1"'))
    )
    assert stale.status_code == 412
    assert issue(stale)["expression"] == ["Bundle.entry[0].request.ifMatch"]
    assert client.get(f"/fhir/Patient/{rid}").status_code == 200


def test_if_match_beyond_ascii_digits_or_integer_is_not_a_fault(client):
    # Found by tests/fuzz: 'W/"²"' passed str.isdigit() and failed in int() (a 500).
    rid = created_id(post(client, "/fhir/Patient", patient()))
    superscript = post_bundle(
        client, bundle("transaction", entry("DELETE", f"Patient/{rid}", ifMatch='W/"\u00b2"'))
    )
    assert superscript.status_code == 400
    assert issue(superscript)["expression"] == ["Bundle.entry[0].request.ifMatch"]
    huge = post_bundle(
        client,
        bundle(
            "transaction", entry("DELETE", f"Patient/{rid}", ifMatch='W/"99999999999999999999"')
        ),
    )
    assert huge.status_code == 412
    assert client.get(f"/fhir/Patient/{rid}").status_code == 200


def test_if_none_match_on_get_answers_304_and_star_on_put_refuses_existing(client):
    rid = created_id(post(client, "/fhir/Patient", patient()))
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("GET", f"Patient/{rid}", ifNoneMatch='W/"1"'),
            entry("GET", f"Patient/{rid}", ifNoneMatch='W/"0"'),
        ),
    )
    assert statuses(response) == ["304 Not Modified", "200 OK"]
    assert "resource" not in response.get_json()["entry"][0]
    refused = post_bundle(
        client,
        bundle(
            "transaction",
            entry("PUT", f"Patient/{rid}", {**patient(), "id": rid}, ifNoneMatch="*"),
        ),
    )
    assert refused.status_code == 412
    assert issue(refused)["expression"] == ["Bundle.entry[0].request.ifNoneMatch"]


# -- order and atomicity --------------------------------------------------------------------


def test_processing_order_is_delete_post_put_get_and_response_order_is_request_order(client):
    put(client, "/fhir/Patient/old", {**patient(), "id": "old"})
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("GET", "Patient/p1"),
            entry("PUT", "Patient/p1", {**patient(nik="20"), "id": "p1"}),
            entry("GET", f"Patient?identifier={NIK}|21"),
            entry("POST", "Patient", patient(nik="21")),
            entry("DELETE", "Patient/old"),
            entry("GET", "Patient?_id=old"),
        ),
    )
    assert response.status_code == 200, response.get_json()
    assert statuses(response) == [
        "200 OK", "201 Created", "200 OK", "201 Created", "204 No Content", "200 OK"
    ]  # fmt: skip
    entries = response.get_json()["entry"]
    assert entries[0]["resource"]["id"] == "p1"  # the GET ran after the PUT
    assert len(entries[2]["resource"]["entry"]) == 1  # the search ran after the POST
    assert "entry" not in entries[5]["resource"]  # and after the DELETE


def test_failure_of_a_middle_entry_leaves_the_database_unchanged(client):
    rid = created_id(post(client, "/fhir/Patient", patient(nik="30")))
    before = version_count(client)
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "Patient", patient(nik="31")),
            entry("PUT", f"Patient/{rid}", {**patient(nik="30"), "id": rid}, ifMatch='W/"7"'),
            entry("DELETE", f"Patient/{rid}"),
            entry("POST", "Observation", observation(f"Patient/{rid}")),
        ),
    )
    assert response.status_code in (400, 412)
    assert version_count(client) == before
    assert total(client, f"/fhir/Patient?identifier={NIK}|31") == 0
    assert read(client, f"Patient/{rid}")["meta"]["versionId"] == "1"


def test_failure_after_writes_rolls_back_everything(client):
    before = version_count(client)
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "Patient", patient(nik="40")),
            entry("POST", "Observation", observation("Patient/p9")),
            entry("PUT", "Patient/p9", {**patient(nik="41"), "id": "p9"}, ifMatch='W/"1"'),
            entry("POST", "Patient", patient(nik="42")),
        ),
    )
    assert response.status_code == 412
    assert issue(response)["expression"] == ["Bundle.entry[2].request.ifMatch"]
    assert version_count(client) == before


def test_invalid_resource_names_its_entry_and_element(client):
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "Patient", patient()),
            entry("POST", "Patient", {**patient(nik="2"), "gender": 7}),
        ),
    )
    assert response.status_code == 400
    assert issue(response)["code"] in ("structure", "value")
    assert issue(response)["expression"] == ["Bundle.entry[1].resource.gender"]
    assert total(client, "/fhir/Patient") == 0


def test_a_resource_changed_twice_fails_the_transaction(client):
    put(client, "/fhir/Patient/p1", {**patient(), "id": "p1"})
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("PUT", "Patient/p1", {**patient(family="X"), "id": "p1"}),
            entry("DELETE", "Patient/p1"),
        ),
    )
    assert response.status_code == 400
    assert issue(response)["expression"] == ["Bundle.entry[0].request.url"]
    assert read(client, "Patient/p1")["meta"]["versionId"] == "1"


def test_patch_entry_with_a_json_patch_binary(client):
    rid = created_id(post(client, "/fhir/Patient", patient()))
    operations = [{"op": "replace", "path": "/name/0/family", "value": "Rahayu"}]
    binary = {
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64.b64encode(json.dumps(operations).encode()).decode(),
    }
    response = post_bundle(
        client, bundle("transaction", entry("PATCH", f"Patient/{rid}", binary, ifMatch='W/"1"'))
    )
    assert response.status_code == 200, response.get_json()
    assert read(client, f"Patient/{rid}")["name"][0]["family"] == "Rahayu"


def test_read_of_a_missing_resource_fails_the_transaction(client):
    response = post_bundle(
        client,
        bundle("transaction", entry("POST", "Patient", patient()), entry("GET", "Patient/nope")),
    )
    assert response.status_code == 404
    assert issue(response)["expression"] == ["Bundle.entry[1].request.url"]
    assert total(client, "/fhir/Patient") == 0


def test_unsupported_interactions_fail_naming_the_entry(client):
    operation = post_bundle(
        client, bundle("transaction", entry("POST", "Patient/$validate", patient()))
    )
    assert operation.status_code == 400
    assert issue(operation)["expression"] == ["Bundle.entry[0].request.url"]
    unknown_type = post_bundle(client, bundle("transaction", entry("GET", "Medication/m1")))
    assert unknown_type.status_code == 404
    bad_method = post_bundle(client, bundle("transaction", entry("FETCH", "Patient/1")))
    assert bad_method.status_code == 400
    assert issue(bad_method)["expression"] == ["Bundle.entry[0].request.method"]


def test_entry_without_request_is_rejected(client):
    response = post_bundle(client, bundle("transaction", {"resource": patient()}))
    assert response.status_code == 400
    assert issue(response)["expression"] == ["Bundle.entry[0].request"]


# -- the HTTP surface -----------------------------------------------------------------------


def test_empty_transaction_answers_an_empty_response(client):
    response = post_bundle(client, bundle("transaction"))
    assert response.status_code == 200
    assert response.get_json()["type"] == "transaction-response"
    assert "entry" not in response.get_json()


def test_prefer_return_minimal_leaves_out_written_resources(client):
    response = post_bundle(client, posyandu_visit(observations=1), Prefer="return=minimal")
    assert response.status_code == 200
    for item in response.get_json()["entry"]:
        assert "resource" not in item and item["response"]["location"]
    outcome = post_bundle(
        client, posyandu_visit(nik="9", observations=0), Prefer="return=OperationOutcome"
    )
    assert outcome.get_json()["entry"][0]["response"]["outcome"]["resourceType"] == (
        "OperationOutcome"
    )


def test_trailing_slash_base_and_content_type(client):
    assert post_bundle(client, bundle("transaction"), path="/fhir/").status_code == 200
    wrong = client.post("/fhir", data=b"{}", headers={"Content-Type": "text/plain"})
    assert wrong.status_code == 415
    response = client.post("/fhir", data=b"not json", headers={"Content-Type": FHIR_JSON})
    assert response.status_code == 400
    patient_body = post_bundle(client, patient())
    assert patient_body.status_code == 400
