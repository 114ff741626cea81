"""Importing the sample registers as transactions into a server enforcing the ILP profiles:
a second import changes nothing (and the transaction-response says so), a corrected row
updates its resource in place, and ``ilp import --url`` does the same over HTTP."""

from __future__ import annotations

import threading

import pytest

from mappers import importing, remote
from mappers.importing import build_bundles, map_file
from server import cli
from server.fhir.storage_codes import SYSTEM
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
    assert statuses == ["201 Created"] * 19
    before = {t: versions(ilp_client, t) for t in ("Organization", "Location", "Patient")}
    assert [len(v) for v in before.values()] == [6, 6, 7]

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
    assert statuses == ["200 OK"] * 7
    after = one(ilp_client, f"Patient?identifier={NIK}|5260010207930002")
    assert after["id"] == before["id"]
    assert after["meta"]["versionId"] == "2"
    assert after["telecom"][0]["value"] == "081311112222"
    assert len(versions(ilp_client, "Patient")) == 7
    posyandu = one(ilp_client, f"Organization?identifier={KODE}|posyandu-5260012002-1")
    assert posyandu["active"] is True and posyandu["meta"]["versionId"] == "2"
    site = one(ilp_client, f"Location?identifier={KODE}|posyandu-5260012002-1")
    assert site["status"] == "active"


def transaction(client, name, path):
    (bundle,) = build_bundles(map_file(mapper(name), path))
    response = client.post("/fhir", json=bundle, headers={"Content-Type": FHIR_JSON})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["entry"]


def storage_codes(entry):
    outcome = entry["response"].get("outcome", {"issue": []})
    return [
        coding["code"]
        for issue in outcome["issue"]
        for coding in issue.get("details", {}).get("coding", [])
        if coding["system"] == SYSTEM
    ]


def test_a_write_that_changes_nothing_says_so_in_the_transaction_response(ilp_client, tmp_path):
    transaction(ilp_client, "fasilitas", sample("fasilitas", "csv"))
    first = transaction(ilp_client, "sasaran", sample("sasaran", "csv"))
    assert [storage_codes(e) for e in first] == [[]] * len(first)
    text = sample("sasaran", "csv").read_text().replace("081298765432", "081311112222")
    again = transaction(ilp_client, "sasaran", write(tmp_path, "sasaran.csv", text))
    changed = [e for e in again if not storage_codes(e)]
    assert [e["response"]["etag"] for e in changed] == ['W/"2"']
    unchanged = [e for e in again if storage_codes(e)]
    assert len(unchanged) == len(again) - 1
    for entry in unchanged:
        assert entry["response"]["status"] == "200 OK"
        assert storage_codes(entry) == ["SUCCESSFUL_UPDATE_WITH_CONDITIONAL_MATCH_NO_CHANGE"]
        (issue,) = entry["response"]["outcome"]["issue"]
        assert issue["severity"] == "information" and issue["code"] == "informational"
        assert "kept as it was" in issue["diagnostics"]
    assert importing.count_outcomes({"entry": again}) == {
        "updated": 1, "unchanged": len(again) - 1
    }  # fmt: skip


def test_an_if_none_exist_match_is_reported_as_unchanged(client):
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": NIK, "value": "5260015403960001"}],
        "name": [{"text": "Siti Aminah"}], "gender": "female", "birthDate": "1996-03-14",
    }  # fmt: skip
    entry = {
        "resource": patient,
        "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={NIK}|"
                    "5260015403960001"},
    }  # fmt: skip
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    headers = {"Content-Type": FHIR_JSON, "Prefer": "return=minimal"}
    responses = [client.post("/fhir", json=bundle, headers=headers) for _ in range(2)]
    entries = [r.get_json()["entry"][0] for r in responses]
    assert [storage_codes(e) for e in entries] == [[], ["SUCCESSFUL_CREATE_WITH_CONDITIONAL_MATCH"]]
    assert importing.count_outcomes(responses[1].get_json()) == {"unchanged": 1}


@pytest.fixture
def served(ilp_settings):
    """The ILP server on a loopback port, for the real HTTP client of ``ilp import --url``."""
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


def test_cli_imports_to_a_remote_server_and_a_second_import_is_unchanged(served, capsys):
    fasilitas, sasaran = sample("fasilitas", "csv"), sample("sasaran", "ndjson")
    rows = len(map_file(mapper("sasaran"), sasaran).rows)
    assert cli.main(["import", str(fasilitas), "--url", served]) == 0
    assert cli.main(["import", str(sasaran), "--format", "sasaran", "--url", served]) == 0
    out = capsys.readouterr().out
    assert f"{fasilitas} (fasilitas): 6 rows read, 0 rejected, 6 imported; 12 created" in out
    assert f"{sasaran} (sasaran): {rows} rows read, 0 rejected, {rows} imported" in out
    assert cli.main(["import", "sasaran", str(sasaran), "--url", served]) == 0
    assert f"0 created, 0 updated, {rows} unchanged" in capsys.readouterr().out


def test_cli_to_a_remote_server_leaves_out_a_refused_row_and_imports_the_others(
    served, tmp_path, capsys
):
    # The baby's mother is neither in the file nor on the server: 412 for that row only.
    text = (
        sample("sasaran", "csv")
        .read_text()
        .replace(",5260015403960001,5260012001,", ",5260015403960099,5260012001,", 1)
    )
    path = write(tmp_path, "sasaran.csv", text)
    rows = len(map_file(mapper("sasaran"), path).rows)
    assert cli.main(["import", str(path), "--url", served]) == 1
    captured = capsys.readouterr()
    assert f"{path}: row 2, record: 412 Precondition Failed: Bundle.entry[" in captured.err
    assert "5260015403960099" in captured.err
    assert f"{rows} rows read, 1 rejected, {rows - 1} imported" in captured.out


def test_cli_reports_an_unreachable_server_and_exits_non_zero(capsys):
    url = "http://127.0.0.1:9/fhir"
    assert cli.main(["import", str(sample("fasilitas", "csv")), "--url", url]) == 1
    captured = capsys.readouterr()
    assert f"ilp: the import stopped: cannot reach {url}" in captured.err
    assert "6 rows read, 0 rejected, 0 imported" in captured.out


def test_post_bundle_sends_the_transaction_over_http_and_reports_refusals(served):
    (bundle,) = build_bundles(map_file(mapper("fasilitas"), sample("fasilitas", "csv")))
    answer = remote.post_bundle(served, bundle)
    assert importing.count_outcomes(answer) == {"created": 12}
    assert importing.count_outcomes(remote.post_bundle(served, bundle)) == {"unchanged": 12}
    orphan = build_bundles(map_file(mapper("sasaran"), sample("sasaran", "csv")))[0]
    orphan["entry"] = orphan["entry"][-1:]  # the baby, whose mother is not stored
    with pytest.raises(importing.BundleRefused, match="^412 .*Patient") as refused:
        remote.post_bundle(served, orphan)
    assert refused.value.entry == 0
    with pytest.raises(importing.ImportFailed, match="cannot reach"):
        remote.post_bundle("http://127.0.0.1:9/fhir", bundle, timeout=5)


def test_an_answer_that_is_not_a_transaction_response_fails_the_import_cleanly():
    """A proxy's HTML page, or a connection cut mid-answer: ImportFailed, not a traceback."""
    import http.server

    class NotFhir(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the http.server name)
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>captive portal</html>")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFhir)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/fhir"
    with pytest.raises(importing.ImportFailed, match="no transaction-response from"):
        remote.post_bundle(url, {"resourceType": "Bundle", "type": "transaction", "entry": []})
    thread.join(5)
    server.server_close()
