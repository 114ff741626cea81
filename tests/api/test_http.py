"""HTTP behaviour: formats, _pretty, gzip, Prefer, media types, routing errors, faults."""

from __future__ import annotations

import gzip

import pytest

from server.errors import FhirError
from tests.helpers import created_id, patient, post


@pytest.mark.parametrize(
    "accept, expected",
    [
        ("application/fhir+json", "application/fhir+json"),
        ("application/json", "application/json"),
        ("application/fhir+json; fhirVersion=4.0", "application/fhir+json"),
        ("text/html, */*;q=0.1", "application/fhir+json"),
        ("application/fhir+xml;q=0.9, application/json", "application/json"),
    ],
)
def test_accept_negotiates_json(client, accept, expected):
    response = client.get("/fhir/metadata", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.content_type == f"{expected}; charset=utf-8"


@pytest.mark.parametrize("accept", ["application/fhir+xml", "application/xml", "text/html"])
def test_non_json_accept_is_406_operation_outcome(client, accept):
    response = client.get("/fhir/metadata", headers={"Accept": accept})
    assert response.status_code == 406
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_format_parameter_overrides_accept(client):
    assert client.get("/fhir/metadata?_format=xml").status_code == 406
    response = client.get("/fhir/metadata?_format=json", headers={"Accept": "application/xml"})
    assert response.status_code == 200


def test_unacceptable_format_writes_nothing(client):
    response = post(client, "/fhir/Patient", patient(), Accept="application/fhir+xml")
    assert response.status_code == 406
    assert "entry" not in client.get("/fhir/Patient/_history").get_json()


def test_pretty_indents_output(client):
    assert b"\n  " in client.get("/fhir/metadata?_pretty=true").data
    assert b"\n" not in client.get("/fhir/metadata").data


def test_gzip_when_accepted(client):
    response = client.get("/fhir/metadata", headers={"Accept-Encoding": "gzip, deflate"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.data).startswith(b'{"resourceType":"CapabilityStatement"')
    assert "Content-Encoding" not in client.get("/fhir/metadata").headers


def test_gzip_refused_with_zero_quality(client):
    response = client.get("/fhir/metadata", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in response.headers


def test_empty_responses_have_no_content_type(client):
    response = client.delete("/fhir/Patient/nobody")
    assert response.status_code == 204
    assert "Content-Type" not in response.headers


def test_prefer_return_minimal_gives_no_body(client):
    response = post(client, "/fhir/Patient", patient(), Prefer="return=minimal")
    assert response.status_code == 201
    assert response.data == b""
    assert response.headers["Location"]


def test_prefer_return_operation_outcome(client):
    response = post(client, "/fhir/Patient", patient(), Prefer="return=OperationOutcome")
    assert response.status_code == 201
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "information"


def test_write_with_wrong_content_type_is_415(client):
    response = client.post(
        "/fhir/Patient",
        data=b"name=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert response.get_json()["issue"][0]["code"] == "not-supported"


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "JSON object"),
    ],
)
def test_malformed_body_is_400(client, body, fragment):
    response = client.post(
        "/fhir/Patient", data=body, headers={"Content-Type": "application/fhir+json"}
    )
    assert response.status_code == 400
    assert fragment in response.get_json()["issue"][0]["diagnostics"]


def test_body_type_must_match_url(client):
    response = post(client, "/fhir/Patient", {"resourceType": "Observation"})
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["resourceType"]


def test_unknown_route_and_wrong_method_are_operation_outcomes(client):
    response = client.get("/fhir/Patient/1/_history/1/extra")
    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"
    response = client.post("/fhir/Patient/123")
    assert response.status_code == 405
    assert "Allow" in response.headers


def test_too_large_body_is_413(settings):
    from dataclasses import replace

    from server import create_app

    app = create_app(replace(settings, max_body_bytes=100))
    response = post(app.test_client(), "/fhir/Patient", patient(family="x" * 200))
    assert response.status_code == 413
    assert response.get_json()["issue"][0]["code"] == "too-costly"
    app.extensions["ilp"].engine.dispose()


def test_internal_error_hides_exception_text(app, monkeypatch):
    from server.services import resources

    def broken(*_args, **_kwargs):
        raise RuntimeError("secret connection string postgres://user:pw@db")

    monkeypatch.setattr(resources, "read", broken)
    response = app.test_client().get("/fhir/Patient/1")
    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert "secret" not in text
    issue = response.get_json()["issue"][0]
    assert issue["code"] == "exception" and "reference" in issue["diagnostics"]


def test_fhir_errors_carry_status_headers(client):
    rid = created_id(post(client, "/fhir/Patient", patient()))
    client.delete(f"/fhir/Patient/{rid}")
    gone = client.get(f"/fhir/Patient/{rid}")
    assert gone.status_code == 410 and gone.headers["ETag"] == 'W/"2"'
    assert issubclass(type(FhirError("x")), Exception)
