"""Sample files, a fixed 'today' and helpers for the mapper tests."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from mappers import FORMATS
from mappers.fasilitas import FasilitasMapper
from mappers.posyandu_balita import PosyanduBalitaMapper
from mappers.sasaran import SasaranMapper
from tests.conftest import ROOT

SAMPLES = ROOT / "mappers" / "samples"
TODAY = date(2026, 11, 23)


def mapper(name):
    if name == "posyandu-balita":
        return PosyanduBalitaMapper(today=TODAY)
    return FasilitasMapper() if name == "fasilitas" else SasaranMapper(today=TODAY)


def sample(name, extension):
    return SAMPLES / f"{name}.{extension}"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(params=FORMATS)
def format_name(request):
    return request.param
