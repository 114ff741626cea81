"""The format of a register, told from its columns (and rows, when formats share columns),
using nothing but each format's JSON Schema and mapper."""

from __future__ import annotations

import json

import pytest

from mappers import FORMATS
from mappers.guess import FormatUnknown, fit_of, guess_file_format, guess_format
from mappers.reading import KINDS, columns_of
from tests.mappers.conftest import SAMPLES, sample, write

SAMPLE_FILES = sorted(p for p in SAMPLES.iterdir() if p.suffix in KINDS)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_every_sample_is_recognised(path):
    # The remaja, produktif and lansia sheets share their columns: their rows' ages decide.
    assert path.stem in FORMATS
    assert guess_file_format(path.read_text(), KINDS[path.suffix]) == path.stem


def test_a_json_array_is_recognised_by_the_keys_of_its_records(tmp_path):
    records = [json.loads(line) for line in sample("sasaran", "ndjson").read_text().splitlines()]
    path = write(tmp_path, "sasaran.json", json.dumps(records))
    assert columns_of(path.read_text(), "json")[:3] == ["no_kk", "nama", "jenis_kelamin"]
    assert guess_file_format(path.read_text(), "json") == "sasaran"


def test_csv_columns_are_read_as_the_records_name_them():
    text = "\ufeffKode ; Nama ;JENIS; kode_desa\npkm;Puskesmas;puskesmas;5260011001\n"
    assert columns_of(text, "csv") == ["kode", "nama", "jenis", "kode_desa"]
    assert guess_file_format(text, "csv") == "fasilitas"


def test_a_header_fitting_no_format_says_what_each_format_lacks_and_does_not_know():
    with pytest.raises(FormatUnknown) as caught:
        guess_format(["nik", "nama", "berat"])
    message = str(caught.value)
    assert message.startswith("the columns (nik, nama, berat) fit no format: [fasilitas: lacks ")
    assert "[sasaran: lacks jenis_kelamin, tanggal_lahir, kode_desa; does not know berat]" in (
        message
    )
    assert [fit.name for fit in caught.value.fits] == list(FORMATS)


def test_required_alternatives_count_as_one_missing_column():
    fit = fit_of("sasaran", ["nama", "jenis_kelamin", "tanggal_lahir", "kode_desa"])
    assert fit.missing == ("nik or nik_ibu",) and fit.unknown == ()
    assert fit_of(
        "sasaran", ["nama", "jenis_kelamin", "tanggal_lahir", "kode_desa", "nik_ibu"]
    ).fits


def test_formats_with_the_same_columns_are_told_apart_by_their_rows():
    path = sample("posyandu-lansia", "csv")
    with pytest.raises(FormatUnknown, match="fit several formats: posyandu-remaja, "):
        guess_format(columns_of(path.read_text(), "csv"))
    assert guess_file_format(path.read_text(), "csv") == "posyandu-lansia"


def test_a_format_is_never_chosen_when_two_fit_alike():
    with pytest.raises(FormatUnknown, match=r"fit several formats: sasaran, sasaran; name one"):
        guess_format(
            ["nama", "jenis_kelamin", "tanggal_lahir", "kode_desa", "nik"], ["sasaran"] * 2
        )


def test_an_empty_file_cannot_be_recognised():
    from mappers.base import RecordError

    with pytest.raises(RecordError, match="no header row or records"):
        guess_file_format("", "csv")
