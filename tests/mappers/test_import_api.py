"""Importing the sample registers as transactions into a server enforcing the ILP profiles:
a second import changes nothing, and a corrected row updates its resource in place."""

from __future__ import annotations

import threading

import pytest

from mappers import importing
from mappers.importing import build_bundles, map_file
from server import cli
from tests.helpers import FHIR_JSON
from tests.mappers.conftest import mapper, sample, write

KODE = "https://fhir.ilp-gateway.id/id/kode-fasilitas"
NIK = "https://fhir.kemkes.go.id/id/nik"


def import_file(client, name, path, batch_size=100):
    mapped = map_file(mapper(name), path)
    assert mapped.errors == []
    statuses = []
    for bundle in build_bundles(mapped, batch_size):
        response = client.post("/fhir", json=bundle, headers={"Content-Type": FHIR_JSON})
        assert response.status_code == 200, response.get_json()
        statuses += [e["response"]["status"] for e in response.get_json()["entry"]]
    return statuses


def versions(client, resource_type):
    bundle = client.get(f"/fhir/{resource_type}?_count=100").get_json()
    return {e["resource"]["id"]: e["resource"]["meta"]["versionId"] for e in bundle["entry"]}


def one(client, query):
    bundle = client.get(f"/fhir/{query}").get_json()
    assert bundle["total"] == 1 if "total" in bundle else len(bundle["entry"]) == 1
    return bundle["entry"][0]["resource"]


@pytest.mark.parametrize("batch_size", [100, 2])
def test_sample_registers_import_and_a_second_import_changes_nothing(ilp_client, batch_size):
    statuses = import_file(ilp_client, "fasilitas", sample("fasilitas", "csv"), batch_size)
    statuses += import_file(ilp_client, "sasaran", sample("sasaran", "csv"), batch_size)
    assert statuses == ["201 Created"] * 18
    before = {t: versions(ilp_client, t) for t in ("Organization", "Location", "Patient")}
    assert [len(v) for v in before.values()] == [6, 6, 6]

    import_file(ilp_client, "fasilitas", sample("fasilitas", "ndjson"), batch_size)
    import_file(ilp_client, "sasaran", sample("sasaran", "ndjson"), batch_size)
    assert {t: versions(ilp_client, t) for t in before} == before


def test_references_are_resolved_to_the_imported_resources(ilp_client):
    import_file(ilp_client, "fasilitas", sample("fasilitas", "csv"))
    import_file(ilp_client, "sasaran", sample("sasaran", "csv"))
    puskesmas = one(ilp_client, f"Organization?identifier={KODE}|pkm-526001")
    pustu = one(ilp_client, f"Organization?identifier={KODE}|pustu-5260012001")
    posyandu = one(ilp_client, f"Organization?identifier={KODE}|posyandu-5260012001-1")
    location = one(ilp_client, f"Location?identifier={KODE}|pustu-5260012001")
    assert pustu["partOf"] == {"reference": f"Organization/{puskesmas['id']}"}
    assert posyandu["partOf"] == {"reference": f"Organization/{pustu['id']}"}
    assert location["managingOrganization"] == {"reference": f"Organization/{pustu['id']}"}
    mother = one(ilp_client, f"Patient?identifier={NIK}|5260015403960001")
    babies = ilp_client.get(f"/fhir/Patient?mother=Patient/{mother['id']}").get_json()
    assert [e["resource"]["name"][0]["text"] for e in babies["entry"]] == ["Bayi Ny. Siti Aminah"]


def test_a_corrected_row_updates_its_resource_in_place(ilp_client, tmp_path):
    import_file(ilp_client, "sasaran", sample("sasaran", "csv"))
    import_file(ilp_client, "fasilitas", sample("fasilitas", "csv"))
    before = one(ilp_client, f"Patient?identifier={NIK}|5260010207930002")
    text = sample("sasaran", "csv").read_text().replace("081298765432", "081311112222")
    facilities = (
        sample("fasilitas", "csv")
        .read_text()
        .replace(
            'Posyandu Mawar Mekarsari,posyandu,pustu-5260012002,5260012002,"Dusun Lendang, Desa '
            'Mekarsari",-8.6452,116.4990,tidak',
            'Posyandu Mawar Mekarsari,posyandu,pustu-5260012002,5260012002,"Dusun Lendang, Desa '
            'Mekarsari",-8.6452,116.4990,ya',
        )
    )
    statuses = import_file(ilp_client, "sasaran", write(tmp_path, "sasaran.csv", text))
    import_file(ilp_client, "fasilitas", write(tmp_path, "fasilitas.csv", facilities))
    assert statuses == ["200 OK"] * 6
    after = one(ilp_client, f"Patient?identifier={NIK}|5260010207930002")
    assert after["id"] == before["id"]
    assert after["meta"]["versionId"] == "2"
    assert after["telecom"][0]["value"] == "081311112222"
    assert len(versions(ilp_client, "Patient")) == 6
    posyandu = one(ilp_client, f"Organization?identifier={KODE}|posyandu-5260012002-1")
    assert posyandu["active"] is True and posyandu["meta"]["versionId"] == "2"
    site = one(ilp_client, f"Location?identifier={KODE}|posyandu-5260012002-1")
    assert site["status"] == "active"


@pytest.fixture
def cli_to(ilp_client, monkeypatch):
    """``ilp import`` posting its Bundles to the test server."""
    posted = []

    def post(base_url, bundle, timeout=120.0):
        posted.append(base_url)
        response = ilp_client.post("/fhir", json=bundle, headers={"Content-Type": FHIR_JSON})
        if response.status_code != 200:
            raise importing.ImportFailed(f"{response.status_code}: {response.get_json()}")
        return response.get_json()

    monkeypatch.setattr(importing, "post_bundle", post)
    return posted


def test_cli_imports_both_registers_and_reports(cli_to, capsys):
    fasilitas, sasaran = sample("fasilitas", "csv"), sample("sasaran", "ndjson")
    assert cli.main(["import", "fasilitas", str(fasilitas), "--url", "http://x/fhir"]) == 0
    assert cli.main(["import", "sasaran", str(sasaran), "--url", "http://x/fhir"]) == 0
    out = capsys.readouterr().out
    assert "6 rows read, 6 mapped, 0 rejected; 12 entries in 1 Bundle(s); 12 created" in out
    assert "6 created, 0 updated or unchanged" in out
    assert cli.main(["import", "sasaran", str(sasaran), "--url", "http://x/fhir"]) == 0
    assert "0 created, 6 updated or unchanged" in capsys.readouterr().out
    assert cli_to == ["http://x/fhir"] * 3


def test_cli_lists_rejected_rows_imports_the_others_and_exits_non_zero(
    cli_to, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("ILP_BASE_URL", "http://example.test/fhir")
    text = sample("sasaran", "csv").read_text().replace("5260013112850005", "526001311285005")
    path = write(tmp_path, "sasaran.csv", text)
    assert cli.main(["import", "sasaran", str(path)]) == 1
    captured = capsys.readouterr()
    assert f"{path}: row 7, nik: '526001311285005' does not fit: NIK: 16 digits" in captured.err
    assert "5 mapped, 1 rejected" in captured.out and "5 created" in captured.out
    assert cli_to == ["http://example.test/fhir"]  # ILP_BASE_URL without --url


def test_cli_all_or_nothing_imports_nothing_when_a_row_is_rejected(cli_to, tmp_path, capsys):
    text = sample("sasaran", "csv").read_text().replace("5260012002", "52600120")
    path = write(tmp_path, "sasaran.csv", text)
    assert cli.main(["import", "sasaran", str(path), "--all-or-nothing"]) == 1
    assert "row 7, kode_desa:" in capsys.readouterr().err
    assert cli_to == []


def test_cli_dry_run_prints_the_bundle_and_posts_nothing(cli_to, capsys):
    assert cli.main(["import", "fasilitas", str(sample("fasilitas", "csv")), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert '"resourceType": "Bundle"' in captured.out and '"type": "transaction"' in captured.out
    assert "12 entries in 1 Bundle(s)" in captured.err
    assert cli_to == []


@pytest.fixture
def served(ilp_settings):
    """The ILP server on a loopback port, for the real HTTP client of ``ilp import``."""
    from werkzeug.serving import make_server

    from server import create_app

    application = create_app(ilp_settings)
    server = make_server("127.0.0.1", 0, application)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/fhir"
    server.shutdown()
    thread.join()
    server.server_close()
    application.extensions["ilp"].engine.dispose()


def test_post_bundle_sends_the_transaction_over_http_and_reports_refusals(served):
    (bundle,) = build_bundles(map_file(mapper("fasilitas"), sample("fasilitas", "csv")))
    answer = importing.post_bundle(served, bundle)
    assert importing.count_outcomes(answer) == {"created": 12}
    orphan = build_bundles(map_file(mapper("sasaran"), sample("sasaran", "csv")))[0]
    orphan["entry"] = orphan["entry"][-1:]  # the baby, whose mother is not stored
    with pytest.raises(importing.ImportFailed, match="^412 .*Patient"):
        importing.post_bundle(served, orphan)
    with pytest.raises(importing.ImportFailed, match="cannot reach"):
        importing.post_bundle("http://127.0.0.1:9/fhir", bundle, timeout=5)
