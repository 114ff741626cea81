"""``POST /fhir/$import-records``: a register file mapped and stored server-side, answered with
an OperationOutcome (an issue per rejected row, the summary, and the counts in an extension)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from mappers.importing import ImportFailed, build_bundles, import_mapped, map_file
from server import create_app
from server.services.operations.import_records import SUMMARY_EXTENSION
from tests.mappers.conftest import mapper, sample

CSV, NDJSON, JSON = "text/csv", "application/x-ndjson", "application/json"
URL = "/fhir/$import-records"


def post_file(client, text, media_type, query=""):
    return client.post(f"{URL}{query}", data=text.encode(), headers={"Content-Type": media_type})


def summary(outcome):
    """The counts of the summary extension, by name."""
    (extension,) = [e for e in outcome["extension"] if e["url"] == SUMMARY_EXTENSION]
    return {e["url"]: e.get("valueUnsignedInt", e.get("valueCode")) for e in extension["extension"]}


def counts(name, extension="csv"):
    mapped = map_file(mapper(name), sample(name, extension))
    return len(mapped.rows), sum(len(b["entry"]) for b in build_bundles(mapped))


def stored(client, resource_type):
    return len(client.get(f"/fhir/{resource_type}?_count=200").get_json().get("entry", []))


def test_a_csv_file_is_imported_and_a_second_time_changes_nothing(ilp_client):
    rows, resources = counts("fasilitas")
    text = sample("fasilitas", "csv").read_text()
    response = post_file(ilp_client, text, CSV, "?format=fasilitas")
    assert response.status_code == 200
    outcome = response.get_json()
    OperationOutcome.model_validate(outcome)
    assert summary(outcome) == {
        "format": "fasilitas", "rowsRead": rows, "rowsRejected": 0, "rowsImported": rows,
        "created": resources, "updated": 0, "unchanged": 0,
    }  # fmt: skip
    assert outcome["issue"] == [
        {
            "severity": "information",
            "code": "informational",
            "diagnostics": f"fasilitas: {rows} rows read, 0 rejected, {rows} imported; "
            f"{resources} created, 0 updated, 0 unchanged",
        }
    ]
    again = post_file(ilp_client, text, CSV).get_json()  # the format guessed this time
    assert summary(again) | {"unchanged": 0} == summary(outcome) | {"created": 0}
    assert summary(again)["unchanged"] == resources


def test_an_ndjson_file_with_a_guessed_format(ilp_client):
    post_file(ilp_client, sample("fasilitas", "csv").read_text(), CSV)
    response = post_file(ilp_client, sample("sasaran", "ndjson").read_text(), NDJSON)
    assert response.status_code == 200, response.get_json()
    rows, resources = counts("sasaran", "ndjson")
    assert summary(response.get_json()) == {
        "format": "sasaran", "rowsRead": rows, "rowsRejected": 0, "rowsImported": rows,
        "created": resources, "updated": 0, "unchanged": 0,
    }  # fmt: skip
    assert stored(ilp_client, "Patient") == rows


def test_a_json_array_of_records(ilp_client):
    records = [json.loads(line) for line in sample("fasilitas", "ndjson").read_text().splitlines()]
    response = post_file(ilp_client, json.dumps(records), "application/fhir+json")
    assert response.status_code == 200
    assert summary(response.get_json())["created"] == counts("fasilitas")[1]


def test_rejected_rows_are_issues_with_their_row_and_column_and_the_others_are_stored(
    ilp_client,
):
    text = sample("sasaran", "csv").read_text().replace("5260013112850005", "526001311285005")
    response = post_file(ilp_client, text, CSV, "?format=sasaran")
    assert response.status_code == 200
    outcome = response.get_json()
    OperationOutcome.model_validate(outcome)
    error, information = outcome["issue"]
    assert error == {
        "severity": "error",
        "code": "value",
        "diagnostics": "row 7, nik: '526001311285005' does not fit: NIK: 16 digits",
        "location": ["row 7"],
        "expression": ["nik"],
    }
    rows = counts("sasaran")[0]
    assert information["diagnostics"].startswith(f"sasaran: {rows} rows read, 1 rejected")
    assert summary(outcome)["rowsRejected"] == 1
    assert summary(outcome)["rowsImported"] == stored(ilp_client, "Patient") == rows - 1


def test_a_missing_column_value_is_a_required_issue(ilp_client):
    text = "kode,nama,jenis,kode_desa\npkm-1,,puskesmas,5260011001\n"
    outcome = post_file(ilp_client, text, CSV, "?format=fasilitas").get_json()
    assert outcome["issue"][0] | {"diagnostics": ""} == {
        "severity": "error", "code": "required", "diagnostics": "",
        "location": ["row 2"], "expression": ["nama"],
    }  # fmt: skip


def test_a_row_the_server_refuses_is_reported_with_the_servers_reason(ilp_client):
    text = sample("sasaran", "csv").read_text()
    text = text.replace(",5260015403960001,5260012001,", ",5260015403960099,5260012001,", 1)
    response = post_file(ilp_client, text, CSV)
    assert response.status_code == 200
    refused = response.get_json()["issue"][0]
    assert refused["location"] == ["row 2"] and "expression" not in refused
    assert refused["code"] == "conflict"  # the server's issue code for the 412
    assert refused["diagnostics"].startswith("row 2, record: 412 Precondition Failed: ")
    assert "5260015403960099 matches no resource" in refused["diagnostics"]


def test_all_or_nothing_stores_nothing_and_answers_422(ilp_client):
    text = sample("sasaran", "csv").read_text().replace("5260013112850005", "526001311285005")
    response = post_file(ilp_client, text, CSV, "?format=sasaran&allOrNothing=true")
    assert response.status_code == 422
    outcome = response.get_json()
    assert outcome["issue"][0]["location"] == ["row 7"]
    assert summary(outcome)["rowsImported"] == 0 and summary(outcome)["created"] == 0
    assert stored(ilp_client, "Patient") == 0


def test_all_or_nothing_with_every_row_valid_imports_them_all(ilp_client):
    text = sample("fasilitas", "csv").read_text()
    response = post_file(ilp_client, text, CSV, "?allOrNothing=true")
    assert response.status_code == 200
    assert summary(response.get_json())["rowsImported"] == counts("fasilitas")[0]


@pytest.mark.parametrize(
    ("query", "expression", "message"),
    [
        ("?format=puskesmas", "format", "Unknown format 'puskesmas'; the formats are fasilitas,"),
        ("?format=sasaran&format=fasilitas", "format", "The parameter format is given twice"),
        ("?allOrNothing=ya", "allOrNothing", "allOrNothing must be true or false, got 'ya'"),
        ("?all-or-nothing=true", "all-or-nothing", "$import-records takes the parameters"),
    ],
)
def test_bad_parameters_answer_400_naming_them(ilp_client, query, expression, message):
    response = post_file(ilp_client, sample("fasilitas", "csv").read_text(), CSV, query)
    assert response.status_code == 400
    (issue,) = response.get_json()["issue"]
    assert issue["code"] == "invalid" and issue["expression"] == [expression]
    assert issue["diagnostics"].startswith(message)


def test_columns_that_fit_no_format_answer_400_with_what_each_lacks(ilp_client):
    response = post_file(ilp_client, "nama,berat\nSiti,12\n", CSV)
    assert response.status_code == 400
    (issue,) = response.get_json()["issue"]
    assert issue["expression"] == ["format"]
    assert issue["diagnostics"].startswith("Cannot tell the format: the columns (nama, berat)")
    assert "[fasilitas: lacks kode, jenis, kode_desa; does not know berat]" in issue["diagnostics"]


@pytest.mark.parametrize(
    ("body", "media_type", "status", "message"),
    [
        (b"", CSV, 400, "The body must hold the register file"),
        (b"kode,nama\n\xff\n", CSV, 400, "The file must be UTF-8 text"),
        (b'{"kode": "x"}', JSON, 400, "The file cannot be read: a JSON file must hold an array"),
        (b"<xml/>", "application/xml", 415, "Content-Type application/xml is not a register"),
    ],
)
def test_unreadable_bodies_are_refused(ilp_client, body, media_type, status, message):
    response = ilp_client.post(URL, data=body, headers={"Content-Type": media_type})
    assert response.status_code == status
    assert response.get_json()["issue"][0]["diagnostics"].startswith(message)


def test_a_file_beyond_the_body_limit_answers_413(ilp_settings):
    application = create_app(dataclasses.replace(ilp_settings, max_body_bytes=200))
    try:
        text = sample("fasilitas", "csv").read_text()
        response = post_file(application.test_client(), text, CSV)
        assert response.status_code == 413
        assert response.get_json()["issue"][0]["code"] == "too-costly"
    finally:
        application.extensions["ilp"].engine.dispose()


def test_the_capability_statement_lists_the_operation(ilp_client):
    rest = ilp_client.get("/fhir/metadata").get_json()["rest"][0]
    assert rest["operation"] == [
        {
            "name": "import-records",
            "definition": "https://fhir.ilp-gateway.id/OperationDefinition/import-records",
        }
    ]


def test_transactions_are_cut_to_the_entries_a_server_takes():
    """A visit row gives up to a dozen entries: 100 rows could pass ILP_MAX_BUNDLE_ENTRIES."""
    mapped = map_file(mapper("posyandu-balita"), sample("posyandu-balita", "csv"))
    sizes = []

    def send(bundle):
        sizes.append(len(bundle["entry"]))
        return {"entry": [{"response": {"status": "201 Created"}} for _ in bundle["entry"]]}

    result = import_mapped(mapped, send, batch_size=100, max_entries=10)
    assert result.imported == len(mapped.rows) and not result.stopped
    assert len(sizes) > 1 and max(sizes) <= 10


def test_a_transaction_refused_as_a_whole_stops_the_import_with_its_summary():
    mapped = map_file(mapper("fasilitas"), sample("fasilitas", "csv"))
    calls = []

    def send(bundle):
        calls.append(bundle)
        if len(calls) == 2:
            raise ImportFailed("413 Payload Too Large: at most 1000 entries")
        return {"entry": [{"response": {"status": "201 Created"}} for _ in bundle["entry"]]}

    result = import_mapped(mapped, send, batch_size=2)
    assert result.imported == 2 and result.stopped == "413 Payload Too Large: at most 1000 entries"
    assert result.describe().startswith(f"{len(mapped.rows)} rows read, 0 rejected, 2 imported")
