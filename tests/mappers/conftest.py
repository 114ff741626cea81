"""Sample files, a fixed 'today' and helpers for the mapper tests."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from mappers import FORMATS, mapper_for
from tests.conftest import ROOT

SAMPLES = ROOT / "mappers" / "samples"
TODAY = date(2026, 11, 23)


def mapper(name):
    return mapper_for(name, today=TODAY)


def sample(name, extension):
    return SAMPLES / f"{name}.{extension}"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(params=FORMATS)
def format_name(request):
    return request.param
