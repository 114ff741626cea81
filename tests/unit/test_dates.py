"""FHIR dates as exact UTC ranges: partial dates, precision, Indonesian time zones."""

from __future__ import annotations

from datetime import datetime

import pytest

from server.fhir.dates import MAX, DateFormatError, date_range


@pytest.mark.parametrize(
    "value, low, high",
    [
        ("2010", datetime(2010, 1, 1), datetime(2010, 12, 31, 23, 59, 59, 999999)),
        ("2024-02", datetime(2024, 2, 1), datetime(2024, 2, 29, 23, 59, 59, 999999)),
        ("2026-11-23", datetime(2026, 11, 23), datetime(2026, 11, 23, 23, 59, 59, 999999)),
        # WIB, WITA, WIT: the same wall-clock time is three different instants
        (
            "2026-11-23T08:00:00+07:00",
            datetime(2026, 11, 23, 1),
            datetime(2026, 11, 23, 1, 0, 0, 999999),
        ),
        (
            "2026-11-23T08:00:00+08:00",
            datetime(2026, 11, 23, 0),
            datetime(2026, 11, 23, 0, 0, 0, 999999),
        ),
        (
            "2026-11-23T08:00:00+09:00",
            datetime(2026, 11, 22, 23),
            datetime(2026, 11, 22, 23, 0, 0, 999999),
        ),
        (
            "2026-11-23T08:00+07:00",
            datetime(2026, 11, 23, 1),
            datetime(2026, 11, 23, 1, 0, 59, 999999),
        ),
        (
            "2026-11-23T08:00:00.5Z",
            datetime(2026, 11, 23, 8, 0, 0, 500000),
            datetime(2026, 11, 23, 8, 0, 0, 599999),
        ),
        ("9999", datetime(9999, 1, 1), MAX),
    ],
)
def test_ranges(value, low, high):
    assert date_range(value) == (low, high)


@pytest.mark.parametrize("value", ["2026-13", "2026-02-30", "yesterday", "2026-1-1", ""])
def test_invalid_dates_are_refused(value):
    with pytest.raises(DateFormatError):
        date_range(value)
