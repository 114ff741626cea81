"""Reading CSV, JSON and NDJSON into records typed as the format's JSON Schema says."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from mappers.base import RecordError
from mappers.reading import check_record, read_records
from tests.mappers.conftest import write

SCHEMA = {
    "properties": {
        "lintang": {"type": "number"},
        "aktif": {"type": "boolean"},
        "jumlah": {"type": "integer"},
        "tanggal_lahir": {"type": "string", "format": "date"},
        "nik": {"type": "string"},
    }
}


def test_csv_cells_are_converted_to_the_schema_types_and_empty_cells_left_out(tmp_path):
    path = write(
        tmp_path,
        "a.csv",
        "nik,lintang,aktif,jumlah,tanggal_lahir\n"
        "0012,-8.5,ya,3,20/10/2026\n"
        '0013,"-8,25",tidak,,2024-01-31\n',
    )
    rows = list(read_records(path, SCHEMA))
    assert rows == [
        (2, {"nik": "0012", "lintang": -8.5, "aktif": True, "jumlah": 3,
             "tanggal_lahir": "2026-10-20"}),
        (3, {"nik": "0013", "lintang": -8.25, "aktif": False, "tanggal_lahir": "2024-01-31"}),
    ]  # fmt: skip


def test_semicolon_csv_and_header_case_and_spaces_are_accepted(tmp_path):
    path = write(tmp_path, "a.csv", "\ufeffNIK ; Lintang\n5260 ; -8,5\n")
    assert list(read_records(path, SCHEMA)) == [(2, {"nik": "5260", "lintang": -8.5})]


def test_a_value_that_does_not_convert_is_left_for_the_schema_to_reject(tmp_path):
    path = write(tmp_path, "a.csv", "lintang,tanggal_lahir\nutara,31/02/2024\n")
    assert list(read_records(path, SCHEMA)) == [
        (2, {"lintang": "utara", "tanggal_lahir": "31/02/2024"})
    ]


def test_ndjson_rows_are_numbered_by_line_and_blank_lines_skipped(tmp_path):
    path = write(tmp_path, "a.ndjson", '{"nik": "1"}\n\n{"nik": "2", "aktif": null}\n')
    assert list(read_records(path, SCHEMA)) == [(1, {"nik": "1"}), (3, {"nik": "2"})]


def test_json_array_rows_are_numbered_from_one(tmp_path):
    path = write(tmp_path, "a.json", '[{"nik": "1"}, {"nik": "2", "aktif": "ya"}]')
    assert list(read_records(path, SCHEMA)) == [(1, {"nik": "1"}), (2, {"nik": "2", "aktif": True})]


@pytest.mark.parametrize(
    ("name", "text"), [("a.json", '{"nik": "1"}'), ("a.xlsx", "")]
)  # fmt: skip
def test_a_file_that_cannot_be_read_at_all_is_one_error(tmp_path, name, text):
    with pytest.raises(RecordError) as caught:
        list(read_records(write(tmp_path, name, text), SCHEMA))
    assert caught.value.row == 0


@pytest.mark.parametrize(
    ("name", "text", "bad"),
    [("a.ndjson", '{"nik": "1"}\n{nik\n{"nik": "3"}\n', "not JSON"),
     ("a.ndjson", '{"nik": "1"}\n[1]\n{"nik": "3"}\n', "a record must be a JSON object"),
     ("a.json", '[{"nik": "1"}, 7, {"nik": "3"}]', "a record must be a JSON object"),
     ("a.csv", "nik\n1\n2,x\n3\n", "more cells than header columns")],
)  # fmt: skip
def test_an_unreadable_row_is_its_error_and_reading_goes_on(tmp_path, name, text, bad):
    rows = list(read_records(write(tmp_path, name, text), SCHEMA))
    assert [(row, record) for row, record in rows if isinstance(record, dict)] == [
        (rows[0][0], {"nik": "1"}), (rows[2][0], {"nik": "3"})
    ]  # fmt: skip
    error = rows[1][1]
    assert isinstance(error, RecordError) and bad in error.message and error.row == rows[1][0]


def test_each_missing_dependent_column_is_named_with_the_column_that_needs_it():
    validator = Draft202012Validator({"dependentRequired": {"a": ["b"], "c": ["d", "e"]}})
    errors = check_record(validator, 3, {"a": 1, "c": 2, "e": 3})
    assert [str(e) for e in errors] == [
        "row 3, b: is required with a",
        "row 3, d: is required with c",
    ]
