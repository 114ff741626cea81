"""Facility-bound access and SMART scopes: every rule of docs/security.md, refused as it says.

The district of ``conftest.py``: pkm-a (with Posyandu pos-a1 below it) and pkm-b under
kab-3201; pkm-c in another kabupaten.
"""

from __future__ import annotations

import pytest

from tests.security.conftest import bundle, encounter, observation, patient


def ids(response):
    assert response.status_code == 200, response.get_json()
    return sorted(e["resource"]["id"] for e in response.get_json().get("entry", []))


def total(district, client_id, query):
    response = district.client.get(f"/fhir/{query}", headers=district.as_(client_id))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["total"]


def forbidden(response):
    assert response.status_code == 403, response.get_json()
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "forbidden"
    return outcome["issue"][0]["diagnostics"]


def count_all(district):
    return total(district, "national", "Patient?_summary=count") + total(
        district, "national", "Observation?_summary=count"
    )


# -- reads -----------------------------------------------------------------------------------


def test_a_facility_reads_its_own_tree_and_nothing_else(district):
    c = district.client
    assert c.get("/fhir/Patient/pa", headers=district.as_("pkm-a")).status_code == 200
    assert c.get("/fhir/Patient/pa1", headers=district.as_("pkm-a")).status_code == 200  # below
    assert "not bound" in forbidden(c.get("/fhir/Patient/pb", headers=district.as_("pkm-a")))
    forbidden(c.get("/fhir/Patient/pa", headers=district.as_("pos-a1")))  # above: not visible
    assert c.get("/fhir/Patient/pa1", headers=district.as_("pos-a1")).status_code == 200
    forbidden(c.get("/fhir/Observation/ob", headers=district.as_("pkm-a")))
    forbidden(c.get("/fhir/Patient/pa/_history/1", headers=district.as_("pkm-b")))


def test_searches_and_counts_hold_only_visible_resources(district):
    c = district.client
    assert ids(c.get("/fhir/Patient", headers=district.as_("pkm-a"))) == ["pa", "pa1"]
    assert ids(c.get("/fhir/Patient", headers=district.as_("pkm-b"))) == ["pb"]
    assert ids(c.get("/fhir/Patient", headers=district.as_("pos-a1"))) == ["pa1"]
    assert ids(c.get("/fhir/Patient", headers=district.as_("national"))) == [
        "pa",
        "pa1",
        "pb",
        "pc",
    ]
    # counts do not leak what the page hides
    assert total(district, "pkm-b", "Patient?_summary=count") == 1
    assert total(district, "pkm-b", "Patient?_total=accurate&name=Ayu") == 0
    assert total(district, "pkm-a", "Observation?_total=accurate") == 1
    assert total(district, "pkm-a", "Organization?_total=accurate") == 2  # pkm-a, pos-a1


def test_a_region_client_sees_its_kabupaten(district):
    c = district.client
    assert ids(c.get("/fhir/Patient", headers=district.as_("kab-3201"))) == ["pa", "pa1", "pb"]
    forbidden(c.get("/fhir/Patient/pc", headers=district.as_("kab-3201")))
    # it holds read scopes only
    forbidden(
        c.post("/fhir/Patient", json=patient("x", "pkm-a", "X"), headers=district.as_("kab-3201"))
    )


def test_includes_never_bring_in_another_facilitys_resources(district):
    c, a = district.client, district.as_("pkm-a")
    # pkm-b records a weight of pkm-a's patient (its own Encounter makes it pkm-b's)
    nat = district.as_("national")
    assert (
        c.put("/fhir/Encounter/eb2", json=encounter("eb2", "pkm-b", "pa"), headers=nat).status_code
        == 201
    )
    assert (
        c.put(
            "/fhir/Observation/ob2", json=observation("ob2", "pa", "eb2"), headers=nat
        ).status_code
        == 201
    )
    # and pkm-a one of pkm-b's patient
    assert (
        c.put("/fhir/Observation/oa2", json=observation("oa2", "pb", "ea"), headers=nat).status_code
        == 201
    )

    found = ids(c.get("/fhir/Observation?_include=Observation:subject", headers=a))
    assert found == ["oa", "oa2", "pa"]  # pb, the subject of oa2, stays out
    found = ids(c.get("/fhir/Patient?_id=pa&_revinclude=Observation:subject", headers=a))
    assert found == ["oa", "pa"]  # ob2 belongs to pkm-b
    found = ids(c.get("/fhir/Observation?_include=*&_include:iterate=Encounter:subject", headers=a))
    assert "pb" not in found and "eb" not in found and "eb2" not in found


def test_chained_search_and_has_do_not_look_into_other_facilities(district):
    c, a = district.client, district.as_("pkm-a")
    nat = district.as_("national")
    c.put("/fhir/Observation/oa2", json=observation("oa2", "pb", "ea"), headers=nat)
    # oa2 is pkm-a's but its subject is pkm-b's Budi: the chain must not see Budi's name
    assert total(district, "pkm-a", "Observation?subject:Patient.name=Budi&_total=accurate") == 0
    assert total(district, "national", "Observation?subject:Patient.name=Budi&_total=accurate") == 2
    # _has: pkm-b's Observation ob points at pb; pkm-a sees neither
    assert (
        total(district, "pkm-a", "Patient?_has:Observation:subject:code=29463-7&_total=accurate")
        == 1
    )
    assert ids(c.get("/fhir/Patient?_has:Observation:subject:code=29463-7", headers=a)) == ["pa"]


def test_history_of_a_type_or_the_system_holds_only_visible_resources(district):
    c = district.client
    entries = c.get("/fhir/Patient/_history", headers=district.as_("pkm-b")).get_json()["entry"]
    assert {e["resource"]["id"] for e in entries} == {"pb"}
    entries = c.get("/fhir/_history?_count=100", headers=district.as_("pos-a1")).get_json()["entry"]
    # pos-a1's own Organization and Patient (and its own clients' AuditEvents: none yet)
    assert {(e["resource"]["resourceType"], e["resource"]["id"]) for e in entries} == {
        ("Organization", "pos-a1"),
        ("Patient", "pa1"),
    }


def test_validate_of_a_stored_resource_is_a_read(district):
    c = district.client
    forbidden(c.post("/fhir/Patient/pb/$validate", headers=district.as_("pkm-a")))
    assert c.post("/fhir/Patient/pa/$validate", headers=district.as_("pkm-a")).status_code == 200


# -- writes ----------------------------------------------------------------------------------


def test_cross_facility_writes_are_refused_and_change_nothing(district):
    c, a = district.client, district.as_("pkm-a")
    before = count_all(district)
    forbidden(c.put("/fhir/Patient/pb", json=patient("pb", "pkm-a", "Mine"), headers=a))
    forbidden(c.post("/fhir/Patient", json=patient("n1", "pkm-b", "New"), headers=a))
    forbidden(c.delete("/fhir/Patient/pb", headers=a))
    patch = [{"op": "replace", "path": "/name/0/family", "value": "X"}]
    forbidden(
        c.patch(
            "/fhir/Patient/pb",
            json=patch,
            headers={**a, "Content-Type": "application/json-patch+json"},
        )
    )
    # an Observation hung on pkm-b's Encounter is pkm-b's
    forbidden(c.post("/fhir/Observation", json=observation("o9", "pa", "eb"), headers=a))
    # a Posyandu cannot write for the Puskesmas above it
    forbidden(
        c.post("/fhir/Patient", json=patient("n2", "pkm-a", "Up"), headers=district.as_("pos-a1"))
    )
    # a new Organization must hang below one the client may see
    forbidden(
        c.post("/fhir/Organization", json={"resourceType": "Organization", "name": "X"}, headers=a)
    )
    assert count_all(district) == before
    assert (
        c.get("/fhir/Patient/pb", headers=district.as_("national")).get_json()["name"][0]["family"]
        == "Budi"
    )


def test_writes_inside_the_tree_work_and_unnamed_resources_become_the_clients(district):
    c, a = district.client, district.as_("pkm-a")
    assert (
        c.post("/fhir/Patient", json=patient("n1", "pos-a1", "Posyandu"), headers=a).status_code
        == 201
    )
    new_org = {"resourceType": "Organization", "name": "Posyandu 2"}
    new_org["partOf"] = {"reference": "Organization/pkm-a"}
    assert c.post("/fhir/Organization", json=new_org, headers=a).status_code == 201
    bare = {"resourceType": "Patient", "name": [{"family": "Tanpa"}]}
    created = c.post("/fhir/Patient", json=bare, headers=a)
    assert created.status_code == 201
    new_id = created.get_json()["id"]
    assert c.get(f"/fhir/Patient/{new_id}", headers=a).status_code == 200
    forbidden(c.get(f"/fhir/Patient/{new_id}", headers=district.as_("pkm-b")))
    assert total(district, "pkm-a", "Patient?_summary=count") == 4  # pa, pa1, n1 and the bare one


def test_a_transaction_may_add_a_posyandu_and_its_people(district):
    posyandu = {"resourceType": "Organization", "id": "pos-a2", "name": "Posyandu Mawar"}
    posyandu["partOf"] = {"reference": "Organization/pkm-a"}
    body = bundle("transaction", posyandu, patient("p2", "pos-a2", "Mawar"))
    response = district.client.post("/fhir", json=body, headers=district.as_("pkm-a"))
    assert response.status_code == 200, response.get_json()
    assert ids(district.client.get("/fhir/Patient", headers=district.as_("pkm-a"))) == [
        "p2",
        "pa",
        "pa1",
    ]


def test_a_transaction_with_one_foreign_entry_is_refused_whole(district):
    c, a = district.client, district.as_("pkm-a")
    before = count_all(district)
    body = bundle("transaction", patient("t1", "pkm-a", "Own"), patient("pb", "pkm-a", "Taken"))
    response = c.post("/fhir", json=body, headers=a)
    forbidden(response)
    assert "Bundle.entry[1]" in str(response.get_json())
    assert count_all(district) == before
    body["type"] = "batch"
    response = c.post("/fhir", json=body, headers=a)
    assert response.status_code == 200
    statuses = [e["response"]["status"] for e in response.get_json()["entry"]]
    assert statuses[0].startswith("201") and statuses[1].startswith("403")


def test_reads_inside_a_batch_are_checked_too(district):
    c, a = district.client, district.as_("pkm-a")
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Patient/pb"}},
            {"request": {"method": "GET", "url": "Patient?_total=accurate"}},
        ],
    }
    entries = c.post("/fhir", json=bundle, headers=a).get_json()["entry"]
    assert entries[0]["response"]["status"].startswith("403")
    assert entries[1]["resource"]["total"] == 2


def test_conditional_interactions_only_match_visible_resources(district):
    c, b = district.client, district.as_("pkm-b")
    nik = patient("pa", "pkm-a", "Ayu")["identifier"][0]
    query = f"identifier={nik['system']}|{nik['value']}"
    # pkm-b cannot learn that pkm-a holds this NIK: its conditional create makes its own
    response = c.post(
        "/fhir/Patient", json=patient("x", "pkm-b", "Ayu"), headers={**b, "If-None-Exist": query}
    )
    assert response.status_code == 201
    assert c.delete(f"/fhir/Patient?{query}", headers=district.as_("reader-a")).status_code == 403
    assert c.get("/fhir/Patient/pa", headers=district.as_("national")).status_code == 200


# -- scopes ----------------------------------------------------------------------------------


def test_scopes_are_checked_per_interaction(district):
    c = district.client
    reader, writer = district.as_("reader-a"), district.as_("writer-a")
    assert c.get("/fhir/Patient/pa", headers=reader).status_code == 200
    assert c.get("/fhir/Patient?name=Ayu", headers=reader).status_code == 200
    assert "create on Patient" in forbidden(
        c.post("/fhir/Patient", json=patient("z", "pkm-a", "Z"), headers=reader)
    )
    forbidden(c.get("/fhir/Observation", headers=reader))
    forbidden(c.get("/fhir/Patient?_revinclude=Observation:subject", headers=reader))
    forbidden(c.get("/fhir/Observation/oa", headers=writer))  # v1 write: c, u, d only
    assert (
        c.post("/fhir/Observation", json=observation("w1", "pa", "ea"), headers=writer).status_code
        == 201
    )
    forbidden(c.delete("/fhir/Patient/pa", headers=writer))
    # transaction entries are checked one by one
    body = bundle("transaction", observation("w2", "pa", "ea"), patient("w3", "pkm-a", "W"))
    forbidden(c.post("/fhir", json=body, headers=writer))


def test_a_token_carries_only_the_scopes_asked_for_within_the_clients(district):
    from tests.security.conftest import bearer, token_response

    c = district.client
    narrowed = bearer(c, "pkm-a", district.secrets["pkm-a"], "system/Patient.rs")
    headers = {**narrowed, "Content-Type": "application/fhir+json"}
    assert c.get("/fhir/Patient/pa", headers=headers).status_code == 200
    forbidden(c.get("/fhir/Observation/oa", headers=headers))
    # a reader cannot ask for more than it holds
    response = token_response(c, "reader-a", district.secrets["reader-a"], "system/Observation.rs")
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_scope"
    response = token_response(c, "reader-a", district.secrets["reader-a"], "system/*.read")
    assert response.get_json()["scope"] == "system/Patient.rs"


# -- operators -------------------------------------------------------------------------------


def test_sync_status_is_for_unbound_clients(district):
    c = district.client
    assert c.get("/admin/sync").status_code == 401
    forbidden(c.get("/admin/sync", headers=district.as_("pkm-a")))
    assert c.get("/admin/sync", headers=district.as_("national")).status_code == 200


@pytest.mark.parametrize("path", ["/fhir/metadata", "/fhir/.well-known/smart-configuration"])
def test_discovery_needs_no_token(district, path):
    assert district.client.get(path).status_code == 200
