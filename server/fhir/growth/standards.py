"""The LMS tables of the WHO Child Growth Standards, read from the files WHO's anthro package uses.

``tables/`` holds WHO's five tab-separated files unchanged (``tables/README.md`` names the source
and how they were checked): length/height-for-age, weight-for-age and BMI-for-age by day of age
0-1826, weight-for-length by 0.1 cm from 45 to 110 cm and weight-for-height by 0.1 cm from 65 to
120 cm, for sex 1 (male) and 2 (female). A length between two 0.1 cm rows gets L, M and S
interpolated linearly, as WHO anthro does (``R/z-score-weight-for-lenhei.R``). Reference: WHO
Multicentre Growth Reference Study Group (2006), *WHO Child Growth Standards: Methods and
development*, https://www.who.int/tools/child-growth-standards/standards
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Literal, NamedTuple

AgeTable = Literal["lenanthro", "weianthro", "bmianthro"]
LengthTable = Literal["wflanthro", "wfhanthro"]

DIRECTORY = Path(__file__).with_name("tables")
SEX_CODES = {"male": 1, "female": 2}


class Lms(NamedTuple):
    """One row of a table: Box-Cox power ``L``, median ``M``, coefficient of variation ``S``."""

    L: float
    M: float
    S: float


@cache
def _rows(name: str) -> dict[tuple[int, int], Lms]:
    """``(sex code, key) -> Lms``; the key is the day of age, or the length in tenths of a cm."""
    rows: dict[tuple[int, int], Lms] = {}
    lines = (DIRECTORY / f"{name}.txt").read_text(encoding="ascii").splitlines()
    by_length = lines[0].split("\t")[1] in ("length", "height")
    for line in lines[1:]:
        sex, key, power, median, cv = line.split("\t")[:5]
        index = round(float(key) * 10) if by_length else int(key)
        rows[int(sex), index] = Lms(float(power), float(median), float(cv))
    return rows


def by_age(table: AgeTable, sex: str, age_days: int) -> Lms | None:
    """The row for a day of age, or None outside the table; KeyError for an unknown sex."""
    return _rows(table).get((SEX_CODES[sex], age_days))


def by_length(table: LengthTable, sex: str, length_cm: float) -> Lms | None:
    """The row for a length or height, interpolated between 0.1 cm rows; None outside the table.

    Raises KeyError for an unknown sex.
    """
    rows = _rows(table)
    code = SEX_CODES[sex]
    # rounding first keeps 72.16 (721.5999...) and 110.0 on their tenths, as the arithmetic means
    tenths = round(length_cm * 10, 9)
    low = math.floor(tenths)
    lower = rows.get((code, low))
    fraction = tenths - low
    if lower is None or fraction == 0:
        return lower
    upper = rows.get((code, low + 1))
    if upper is None:
        return None
    return Lms(*(a + fraction * (b - a) for a, b in zip(lower, upper, strict=True)))
