"""A SearchParameter stored on the server becomes searchable after ``ilp reindex``."""

from __future__ import annotations

import pytest

from server.cli import main
from server.services.reindex import reindex
from tests.helpers import patient, put

ADMIN = "https://fhir.kemkes.go.id/r4/StructureDefinition/administrativeCode"
RT = {
    "resourceType": "SearchParameter",
    "id": "address-rt",
    "url": "https://example.org/SearchParameter/address-rt",
    "name": "address_rt",
    "status": "active",
    "description": "RT (neighbourhood) of the address",
    "code": "address-rt",
    "base": ["Patient"],
    "type": "token",
    "expression": f"Patient.address.extension('{ADMIN}').extension('rt').value",
}


def _resident(res_id, rt):
    address = {"extension": [{"url": ADMIN, "extension": [{"url": "rt", "valueCode": rt}]}]}
    return patient(id=res_id, nik=res_id, address=[address])


def _search(client, query):
    return client.get(f"/fhir/{query}")


def _listed(client):
    rest = client.get("/fhir/metadata").json["rest"][0]
    patient_support = next(r for r in rest["resource"] if r["type"] == "Patient")
    return {p["name"] for p in patient_support["searchParam"]}


def test_stored_parameter_is_searchable_only_after_reindex(app):
    client = app.test_client()
    put(client, "/fhir/Patient/a", _resident("a", "003"))
    put(client, "/fhir/Patient/b", _resident("b", "004"))
    put(client, "/fhir/SearchParameter/address-rt", RT)
    assert _search(client, "Patient?address-rt=003").status_code == 400
    assert "address-rt" not in _listed(client)

    report = reindex(app.extensions["ilp"], settle_seconds=0)

    assert report.activated == ("address-rt",)
    assert report.resources == 2
    found = _search(client, "Patient?address-rt=003").json
    assert [e["resource"]["id"] for e in found["entry"]] == ["a"]
    assert "address-rt" in _listed(client)
    put(client, "/fhir/Patient/c", _resident("c", "003"))  # indexed on write from now on
    found = _search(client, "Patient?address-rt=003").json
    assert {e["resource"]["id"] for e in found["entry"]} == {"a", "c"}
    assert reindex(app.extensions["ilp"], settle_seconds=0).activated == ()


def test_interrupted_reindex_resumes_where_it_stopped(app):
    client = app.test_client()
    for index in range(5):
        put(client, f"/fhir/Patient/p{index}", _resident(f"p{index}", "007"))
    put(client, "/fhir/SearchParameter/address-rt", RT)
    seen = []

    def stop_after_two_batches(progress):
        seen.append(progress.done)
        if progress.done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reindex(
            app.extensions["ilp"], batch_size=2, settle_seconds=0, progress=stop_after_two_batches
        )
    assert _search(client, "Patient?address-rt=007").status_code == 400  # not active yet

    resumed = []
    report = reindex(app.extensions["ilp"], batch_size=2, settle_seconds=0, progress=resumed.append)
    assert resumed[0].done == 4  # it did not start over
    assert report.resources == 5
    assert len(_search(client, "Patient?address-rt=007").json["entry"]) == 5


def test_unusable_parameters_are_reported_not_activated(app):
    client = app.test_client()
    put(client, "/fhir/SearchParameter/near", {**RT, "id": "near", "code": "x", "type": "special"})
    report = reindex(app.extensions["ilp"], settle_seconds=0)
    assert report.activated == ()
    assert report.skipped == ("near: type 'special' cannot be indexed",)


def test_cli_reindex(app, settings, monkeypatch, capsys):
    client = app.test_client()
    put(client, "/fhir/Patient/a", _resident("a", "003"))
    put(client, "/fhir/SearchParameter/address-rt", RT)
    monkeypatch.setenv("ILP_DATABASE_URL", settings.database_url)
    assert main(["reindex", "--settle-seconds", "0"]) == 0
    out = capsys.readouterr()
    assert "reindexed 1 resources; active: address-rt" in out.out
    assert "1/1" in out.err


def test_ilp_village_parameter_is_built_in(client):
    village = {
        "extension": [{"url": ADMIN, "extension": [{"url": "village", "valueCode": "5260011001"}]}]
    }
    put(client, "/fhir/Patient/a", patient(id="a", address=[village]))
    found = _search(client, "Patient?address-village=5260011001").json
    assert [e["resource"]["id"] for e in found["entry"]] == ["a"]
