"""``ilp import FILE`` into the local database, in-process through the services (no server),
with the profile checks of the default settings: summaries, exit status and rejected rows."""

from __future__ import annotations

import re
import sys

import pytest

from mappers.importing import build_bundles, map_file
from server import cli, create_app
from tests.mappers.conftest import mapper, sample, write

REGISTERS = ("fasilitas", "sasaran", "posyandu-balita")  # in the order a district imports them


@pytest.fixture
def local(ilp_settings, monkeypatch):
    """``ilp`` configured for the test database, and a client to look at what it stored."""
    monkeypatch.setenv("ILP_DATABASE_URL", ilp_settings.database_url)
    monkeypatch.setenv("ILP_BASE_URL", ilp_settings.base_url)
    application = create_app(ilp_settings)
    yield application.test_client()
    application.extensions["ilp"].engine.dispose()


def counts(name, extension="csv"):
    """(rows, resources) the sample of ``name`` gives."""
    mapped = map_file(mapper(name), sample(name, extension))
    return len(mapped.rows), sum(len(b["entry"]) for b in build_bundles(mapped))


def stored(client, resource_type):
    return len(client.get(f"/fhir/{resource_type}?_count=200").get_json().get("entry", []))


def versions(client, resource_type):
    bundle = client.get(f"/fhir/{resource_type}?_count=200").get_json()
    return {e["resource"]["id"]: e["resource"]["meta"]["versionId"] for e in bundle["entry"]}


def test_samples_import_locally_and_a_second_import_leaves_everything_unchanged(local, capsys):
    for name in REGISTERS:
        path = sample(name, "csv")
        assert cli.main(["import", str(path)]) == 0, capsys.readouterr().err
        rows, resources = counts(name)
        assert capsys.readouterr().out == (
            f"{path} ({name}): {rows} rows read, 0 rejected, {rows} imported; "
            f"{resources} created, 0 updated, 0 unchanged\n"
        )
    types = ("Organization", "Location", "Patient", "Practitioner", "Encounter", "Observation")
    before = {t: versions(local, t) for t in types}
    for name in REGISTERS:
        path = sample(name, "ndjson")
        assert cli.main(["import", str(path), "--format", name]) == 0
        rows, resources = counts(name, "ndjson")
        assert capsys.readouterr().out == (
            f"{path} ({name}): {rows} rows read, 0 rejected, {rows} imported; "
            f"0 created, 0 updated, {resources} unchanged\n"
        )
    assert {t: versions(local, t) for t in types} == before


def test_a_corrected_row_is_counted_as_updated(local, tmp_path, capsys):
    assert cli.main(["import", str(sample("fasilitas", "csv"))]) == 0
    assert cli.main(["import", str(sample("sasaran", "csv"))]) == 0
    capsys.readouterr()
    text = sample("sasaran", "csv").read_text().replace("081298765432", "081311112222")
    assert cli.main(["import", str(write(tmp_path, "sasaran.csv", text))]) == 0
    rows, _ = counts("sasaran")
    assert f"0 created, 1 updated, {rows - 1} unchanged" in capsys.readouterr().out


def test_the_former_form_with_the_format_first_still_works(local, capsys):
    path = sample("fasilitas", "csv")
    assert cli.main(["import", "fasilitas", str(path)]) == 0
    assert f"{path} (fasilitas): 6 rows read" in capsys.readouterr().out


def test_rejected_rows_are_listed_the_others_imported_and_the_exit_status_is_1(
    local, tmp_path, capsys
):
    assert cli.main(["import", str(sample("fasilitas", "csv"))]) == 0
    text = sample("sasaran", "csv").read_text().replace("5260013112850005", "526001311285005")
    path = write(tmp_path, "sasaran.csv", text)
    capsys.readouterr()
    assert cli.main(["import", str(path)]) == 1
    captured = capsys.readouterr()
    assert f"{path}: row 7, nik: '526001311285005' does not fit: NIK: 16 digits" in captured.err
    rows, _ = counts("sasaran")
    assert f"{rows} rows read, 1 rejected, {rows - 1} imported" in captured.out
    assert stored(local, "Patient") == rows - 1


def test_a_row_the_server_refuses_is_left_out_and_named(local, tmp_path, capsys):
    # A baby whose mother is neither in the file nor stored: 412 on the baby's entry.
    text = sample("sasaran", "csv").read_text()
    text = text.replace(",5260015403960001,5260012001,", ",5260015403960099,5260012001,", 1)
    path = write(tmp_path, "sasaran.csv", text)
    assert cli.main(["import", str(sample("fasilitas", "csv"))]) == 0
    capsys.readouterr()
    assert cli.main(["import", str(path)]) == 1
    captured = capsys.readouterr()
    assert f"{path}: row 2, record: 412 Precondition Failed: Bundle.entry[" in captured.err
    assert "Patient?identifier=https://fhir.kemkes.go.id/id/nik|5260015403960099" in captured.err
    rows, _ = counts("sasaran")
    assert f"1 rejected, {rows - 1} imported; {rows - 1} created" in captured.out


def test_all_or_nothing_imports_nothing_when_a_row_is_rejected(local, tmp_path, capsys):
    text = sample("sasaran", "csv").read_text().replace("5260012002", "52600120")
    path = write(tmp_path, "sasaran.csv", text)
    assert cli.main(["import", str(path), "--all-or-nothing"]) == 1
    captured = capsys.readouterr()
    assert "row 7, kode_desa:" in captured.err
    rows, _ = counts("sasaran")
    assert f"{rows} rows read, 1 rejected, 0 imported; 0 created" in captured.out
    assert stored(local, "Patient") == 0


def test_all_or_nothing_stores_nothing_when_the_server_refuses_a_row(local, tmp_path, capsys):
    text = sample("sasaran", "csv").read_text()
    text = text.replace(",5260015403960001,5260012001,", ",5260015403960099,5260012001,", 1)
    path = write(tmp_path, "sasaran.csv", text)
    assert cli.main(["import", str(sample("fasilitas", "csv"))]) == 0
    assert cli.main(["import", str(path), "--all-or-nothing"]) == 1
    assert "1 rejected, 0 imported" in capsys.readouterr().out
    assert stored(local, "Patient") == 0


def test_a_header_that_fits_no_format_exits_2_and_says_what_each_lacks(local, tmp_path, capsys):
    path = write(tmp_path, "daftar.csv", "nama,berat\nSiti,12\n")
    assert cli.main(["import", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"ilp: {path}: cannot tell the format: the columns (nama, berat) fit no format" in err
    assert "[sasaran: lacks jenis_kelamin, tanggal_lahir, kode_desa, nik or nik_ibu; " in err
    assert "does not know berat]" in err and err.rstrip().endswith("give --format")


def test_a_header_that_fits_several_formats_exits_2_naming_them(local, tmp_path, capsys):
    # The adult Posyandu sheets share their columns; rows without a date of birth fit all.
    lines = sample("posyandu-lansia", "csv").read_text().splitlines()
    header = lines[0].split(",")
    born = header.index("tanggal_lahir")
    rows = [line.split(",") for line in lines[1:2]]
    for row in rows:
        row[born] = ""
    text = "\n".join(",".join(cells) for cells in [header, *rows]) + "\n"
    path = write(tmp_path, "posyandu.csv", text)
    assert cli.main(["import", str(path)]) == 2
    err = capsys.readouterr().err
    assert "fit several formats: posyandu-remaja, posyandu-produktif, posyandu-lansia" in err


def test_an_unknown_format_or_two_formats_are_usage_errors(local, capsys):
    path = str(sample("fasilitas", "csv"))
    assert cli.main(["import", "puskesmas", path]) == 2
    assert "unknown format 'puskesmas'" in capsys.readouterr().err
    assert cli.main(["import", "fasilitas", path, "--format", "fasilitas"]) == 2
    with pytest.raises(SystemExit) as exited:
        cli.main(["import", path, "--format", "puskesmas"])
    assert exited.value.code == 2


def test_an_unmigrated_database_is_named_instead_of_failing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ILP_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    assert cli.main(["import", str(sample("fasilitas", "csv"))]) == 2
    assert "run `ilp db upgrade` first" in capsys.readouterr().err


def test_dry_run_prints_the_bundles_and_stores_nothing(local, capsys):
    assert cli.main(["import", str(sample("fasilitas", "csv")), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert '"resourceType": "Bundle"' in captured.out and '"type": "transaction"' in captured.out
    assert "6 rows read, 6 mapped, 0 rejected; 12 entries in 1 Bundle(s)" in captured.err
    assert stored(local, "Organization") == 0


def test_a_terminal_gets_a_progress_bar_on_stderr(local, monkeypatch, capsys):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    path = sample("fasilitas", "csv")
    assert cli.main(["import", str(path), "--batch-size", "4"]) == 0
    err = capsys.readouterr().err
    assert err == (
        f"\rfasilitas.csv (fasilitas) [{'#' * 20}{'.' * 10}] 4/6 rows"
        f"\rfasilitas.csv (fasilitas) [{'#' * 30}] 6/6 rows\n"
    )


def test_demo_export_with_import_stores_the_district_through_the_mappers(local, tmp_path, capsys):
    district = str(tmp_path / "district")  # a third of the small preset
    assert cli.main(["demo", "export", district, "--observations", "1000", "--import"]) == 0
    out = capsys.readouterr().out
    rows = {
        m[2]: int(m[1].replace(",", "")) for m in re.finditer(r": ([\d,]+) rows \((\S+)\)", out)
    }
    assert len(rows) == 8 and all(rows.values())  # every format, with rows
    assert out.count(" 0 rejected, ") == 8  # no row refused
    visits = sum(n for name, n in rows.items() if name not in ("fasilitas", "sasaran"))
    total = {t: local.get(f"/fhir/{t}?_summary=count").get_json()["total"]
             for t in ("Patient", "Encounter")}  # fmt: skip
    assert total == {"Patient": rows["sasaran"], "Encounter": visits}
