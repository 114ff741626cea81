"""JSON Patch (RFC 6902) on resources (http.html#patch)."""

from __future__ import annotations

from tests.helpers import created_id, patient, post

JSON_PATCH = "application/json-patch+json"


def _patch(client, path, operations, **headers):
    return client.patch(path, json=operations, headers={"Content-Type": JSON_PATCH, **headers})


def test_patch_applies_and_creates_a_version(client):
    rid = created_id(post(client, "/fhir/Patient", patient()))
    response = _patch(
        client,
        f"/fhir/Patient/{rid}",
        [
            {"op": "replace", "path": "/name/0/family", "value": "Aminah"},
            {"op": "add", "path": "/birthDate", "value": "2021-03-04"},
        ],
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["name"][0]["family"] == "Aminah" and body["birthDate"] == "2021-03-04"
    assert body["meta"]["versionId"] == "2" and response.headers["ETag"] == 'W/"2"'


def test_patch_making_resource_invalid_is_rejected_with_path(client):
    rid = created_id(post(client, "/fhir/Patient", patient()))
    response = _patch(
        client, f"/fhir/Patient/{rid}", [{"op": "add", "path": "/birthDate", "value": "31-12-2020"}]
    )
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["Patient.birthDate"]
    assert client.get(f"/fhir/Patient/{rid}").get_json()["meta"]["versionId"] == "1"


def test_patch_that_does_not_apply_is_422(client):
    rid = created_id(post(client, "/fhir/Patient", patient()))
    response = _patch(
        client,
        f"/fhir/Patient/{rid}",
        [{"op": "test", "path": "/name/0/family", "value": "Nobody"}],
    )
    assert response.status_code == 422


def test_patch_cannot_change_the_id(client):
    rid = created_id(post(client, "/fhir/Patient", patient()))
    response = _patch(
        client, f"/fhir/Patient/{rid}", [{"op": "replace", "path": "/id", "value": "x"}]
    )
    assert response.status_code == 422


def test_patch_honours_if_match(client):
    rid = created_id(post(client, "/fhir/Patient", patient()))
    ops = [{"op": "replace", "path": "/name/0/family", "value": "B"}]
    assert _patch(client, f"/fhir/Patient/{rid}", ops, **{"If-Match": 'W/"9"'}).status_code == 412
    assert _patch(client, f"/fhir/Patient/{rid}", ops, **{"If-Match": 'W/"1"'}).status_code == 200


def test_patch_with_fhir_json_body_is_415(client):
    rid = created_id(post(client, "/fhir/Patient", patient()))
    response = client.patch(
        f"/fhir/Patient/{rid}",
        json={"resourceType": "Parameters"},
        headers={"Content-Type": "application/fhir+json"},
    )
    assert response.status_code == 415


def test_patch_of_unknown_resource_is_404(client):
    response = _patch(client, "/fhir/Patient/nope", [{"op": "remove", "path": "/name"}])
    assert response.status_code == 404


def test_patch_replacing_the_whole_resource_is_422(client):
    # Found by tests/fuzz: an operation on the root path "" left a list, and the id check
    # called .get on it (a 500).
    rid = created_id(post(client, "/fhir/Patient", patient()))
    for operations in (
        [{"op": "copy", "from": "/name", "path": ""}],
        [{"op": "replace", "path": "", "value": []}],
    ):
        response = _patch(client, f"/fhir/Patient/{rid}", operations)
        assert response.status_code == 422
        assert response.get_json()["issue"][0]["expression"] == ["Patient"]
    assert client.get(f"/fhir/Patient/{rid}").get_json()["meta"]["versionId"] == "1"
