"""WHO 2006 Child Growth Standards z-scores against WHO's tables and WHO software output.

Reference values come from three WHO sources: rows of WHO anthro's tables
(github.com/WorldHealthOrganization/anthro, data-raw/growthstandards), the -3/-2/0/+2/+3 SD
columns of WHO's published expanded z-score tables (whose z-scores are those numbers by
definition), and z-scores computed by WHO software: the anthro package's own tests
(tests/testthat/test-zscores.R) and the igrowup R macro's output for WHO's example survey
(MySurvey_z_st.csv, measures as stored there).
"""

from __future__ import annotations

import hashlib
import math
from datetime import date, timedelta

import pytest

from server.fhir.growth import Lms, lms_z, restricted_z, sd_value, standards, z_scores

BIRTH = date(2021, 3, 1)


def _z(sex, days, **measures):
    return z_scores(sex, BIRTH, BIRTH + timedelta(days=days), **measures)


# -- the tables -----------------------------------------------------------------------------

TABLE_SHA256 = {  # LF line endings; tables/README.md says how they were checked against WHO's
    "lenanthro": "8ff0d70c7000697f4fe4138dfb81e2818655f9d2bd4fbcdeb37e2bf0ca56cb52",
    "weianthro": "6c139f44d50b23c0290f7f21878ae561d6ee3eecf978a3b6549029f9cba9a318",
    "bmianthro": "f7cf8d0db5d969453bd7bd83ff7db69c9a5e4addf89b8ee1582b6b9b1a360058",
    "wflanthro": "c171d462cc3b48acb6c0fb9ed115b3ada69931ccc457af01a12009bf055cc0b1",
    "wfhanthro": "743311d0ab73d90245ca437c7d98d3fac26cf681e61e8e96d0b645226182428c",
}


def test_table_files_are_the_checked_copies_of_whos():
    for name, digest in TABLE_SHA256.items():
        data = (standards.DIRECTORY / f"{name}.txt").read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name


@pytest.mark.parametrize(
    "table, sex, key, lms",
    [  # rows as they stand in WHO anthro's data-raw/growthstandards/*.txt
        ("lenanthro", "male", 0, (1, 49.8842, 0.03795)),
        ("lenanthro", "male", 730, (1, 87.8018, 0.03479)),
        ("lenanthro", "male", 731, (1, 87.1303, 0.03508)),
        ("lenanthro", "female", 1826, (1, 109.4189, 0.04346)),
        ("weianthro", "female", 1826, (-0.3518, 18.2179, 0.14821)),
        ("bmianthro", "male", 730, (-0.6473, 15.7356, 0.07771)),
        ("bmianthro", "male", 731, (-0.6187, 16.0189, 0.07785)),
        ("bmianthro", "female", 1826, (-0.5684, 15.2747, 0.09789)),
        ("wflanthro", "male", 45.0, (-0.3521, 2.441, 0.09182)),
        ("wflanthro", "male", 93.3, (-0.3521, 13.4937, 0.08028)),
        ("wflanthro", "female", 110.0, (-0.3833, 18.3324, 0.09401)),
        ("wfhanthro", "female", 115.3, (-0.3833, 20.791, 0.09638)),
        ("wfhanthro", "female", 120.0, (-0.3833, 22.8173, 0.09828)),
    ],
)
def test_table_rows_are_whos(table, sex, key, lms):
    if table.startswith("wf"):
        assert standards.by_length(table, sex, key) == lms
    else:
        assert standards.by_age(table, sex, key) == lms


@pytest.mark.parametrize("sex", ["male", "female"])
def test_tables_cover_whos_ranges(sex):
    for table in ("lenanthro", "weianthro", "bmianthro"):
        assert standards.by_age(table, sex, 0) and standards.by_age(table, sex, 1826)
        assert standards.by_age(table, sex, 1827) is None
    for table, low, high in (("wflanthro", 45.0, 110.0), ("wfhanthro", 65.0, 120.0)):
        assert standards.by_length(table, sex, low) and standards.by_length(table, sex, high)
        assert standards.by_length(table, sex, low - 0.1) is None
        assert standards.by_length(table, sex, high + 0.05) is None


def test_lengths_between_tenths_are_interpolated():
    low = standards.by_length("wflanthro", "male", 80.3)
    high = standards.by_length("wflanthro", "male", 80.4)
    middle = standards.by_length("wflanthro", "male", 80.35)
    assert low and high and middle
    for a, b, m in zip(low, high, middle, strict=True):
        assert m == pytest.approx((a + b) / 2)
    between = _z("male", 300, weight_kg=10.5, length_cm=80.35, measured_lying=True).wflh
    assert between == pytest.approx(restricted_z(10.5, middle))
    at_low = _z("male", 300, weight_kg=10.5, length_cm=80.3, measured_lying=True).wflh
    at_high = _z("male", 300, weight_kg=10.5, length_cm=80.4, measured_lying=True).wflh
    assert at_high < between < at_low


# -- published SD values: their z-scores are -3, -2, 0, 2, 3 by definition -------------------

SD_COLUMNS = (-3, -2, 0, 2, 3)


@pytest.mark.parametrize(
    "indicator, sex, key, values",
    [  # WHO expanded z-score tables: SD3neg, SD2neg, SD0, SD2, SD3
        ("wfa", "male", 0, (2.08, 2.459, 3.346, 4.419, 5.031)),
        ("wfa", "male", 365, (6.926, 7.741, 9.646, 11.983, 13.341)),
        ("wfa", "male", 731, (8.634, 9.675, 12.155, 15.281, 17.139)),
        ("wfa", "female", 0, (2.033, 2.395, 3.232, 4.23, 4.793)),
        ("wfa", "female", 730, (8.064, 9.033, 11.474, 14.841, 17.008)),
        ("wfa", "female", 1826, (12.053, 13.742, 18.218, 24.914, 29.545)),
        ("lhfa", "male", 0, (44.205, 46.098, 49.884, 53.67, 55.564)),
        ("lhfa", "male", 730, (78.638, 81.693, 87.802, 93.911, 96.966)),
        ("lhfa", "male", 1826, (96.058, 100.692, 109.959, 119.227, 123.86)),
        ("lhfa", "female", 365, (66.281, 68.856, 74.005, 79.154, 81.729)),
        ("lhfa", "female", 731, (76.049, 79.276, 85.73, 92.184, 95.411)),
        ("wfl", "male", 45.0, (1.877, 2.043, 2.441, 2.951, 3.261)),
        ("wfl", "male", 80.3, (8.272, 8.938, 10.503, 12.464, 13.632)),
        ("wfl", "male", 110.0, (14.211, 15.414, 18.269, 21.888, 24.066)),
        ("wfl", "female", 67.3, (5.858, 6.369, 7.594, 9.171, 10.132)),
        ("wfh", "male", 95.5, (11.241, 12.121, 14.181, 16.745, 18.265)),
        ("wfh", "female", 65.0, (5.583, 6.071, 7.24, 8.746, 9.664)),
        ("wfh", "female", 120.0, (17.256, 18.878, 22.817, 27.991, 31.199)),
    ],
)
def test_published_sd_values_have_their_z_scores(indicator, sex, key, values):
    for expected, value in zip(SD_COLUMNS, values, strict=True):
        if indicator == "wfa":
            z = _z(sex, key, weight_kg=value).wfa
        elif indicator == "lhfa":  # WHO's table is by recumbent length below 731 days
            z = _z(sex, key, length_cm=value, measured_lying=key < 731).lhfa
        elif indicator == "wfl":
            z = _z(sex, 300, weight_kg=value, length_cm=key, measured_lying=True).wflh
        else:
            z = _z(sex, 1000, weight_kg=value, length_cm=key, measured_lying=False).wflh
        assert z is not None and round(z, 2) == expected, (value, z)


# -- z-scores computed by WHO software ------------------------------------------------------


@pytest.mark.parametrize(
    "sex, days, length, lying, clenhei, zlen, flagged",
    [  # WHO anthro, tests/testthat/test-zscores.R
        ("male", 987, 72.86, True, 72.16, -6.09, True),
        ("male", 244, 60.0, False, 60.0, -4.81, False),  # 8 months standing: position ignored
        ("male", 274, 60.0, False, 60.7, -5.02, False),  # 9 months standing: +0.7 cm
        ("female", 731, 77.5, None, 77.5, -2.55, False),  # 24 months: the height table
    ],
)
def test_matches_who_anthro_tests(sex, days, length, lying, clenhei, zlen, flagged):
    result = _z(sex, days, length_cm=length, measured_lying=lying)
    assert result.length_cm == pytest.approx(clenhei)
    assert result.rounded()["lhfa"] == zlen
    assert ("lhfa" in result.flagged) is flagged
    assert result.standing_under_9_months is (days == 244)


# igrowup R output for WHO's example survey: id, GENDER (1 male, 2 female), age.days, WEIGHT,
# HEIGHT, measure, oedema, clenhei, zlen, zwei, zwfl, zbmi (None where igrowup gives none)
IGROWUP_MYSURVEY = [
    (54, 2, 0, 4.19999980926514, 51.9000015258789, "l", False, 51.9, 1.48, 1.94, 1.17, 1.68),
    (145, 1, 0, 4.5, 52.4000015258789, "l", True, 52.4, 1.33, None, None, None),
    (112, 2, 90, 4.5, 60.4000015258789, "l", False, 60.4, 0.34, -2.02, -3.26, -3.01),
    (214, 1, 194, 11.8999996185303, 73.1999969482422, "l", False, 73.2, 2.32, 3.68, 3.06, 2.93),
    (60, 1, 269, 6.30000019073486, 64.8000030517578, "l", False, 64.8, -3.11, -3.08, -1.7, -1.71),
    (109, 2, 719, 15.1000003814697, 97.8000030517578, "h", False, 98.5, 3.87, 2.18, 0.36, 0.11),
    (51, 1, 748, 12.5, None, None, False, None, None, 0.16, None, None),
    (7, 1, 868, 12.8999996185303, 85.9000015258789, "l", False, 85.2, -1.69, -0.08, 1.16, 1.43),
    (46, 2, 1302, 14.3999996185303, 99.5, "l", False, 98.8, -0.18, -0.36, -0.37, -0.42),
    (73, 2, 1716, 27.5, 110.400001525879, "l", False, 109.7, 0.48, 2.85, 4.05, 3.87),
    (29, 1, 1720, 23.2000007629395, 117.599998474121, "h", False, 117.6, 2.12, 1.97, 0.86, 1.1),
    (138, 2, 1803, 18.7999992370605, None, None, False, None, None, 0.26, None, None),
    (25, 1, 1805, 20.1000003814697, 107.099998474121, "l", False, 106.4, -0.69, 0.72, 1.71, 1.7),
]


@pytest.mark.parametrize("case", IGROWUP_MYSURVEY, ids=[f"id{c[0]}" for c in IGROWUP_MYSURVEY])
def test_matches_who_igrowup_output(case):
    _, gender, days, weight, height, measure, oedema, clenhei, *expected = case
    sex = "male" if gender == 1 else "female"
    lying = None if measure is None else measure == "l"
    result = _z(sex, days, weight_kg=weight, length_cm=height, measured_lying=lying, oedema=oedema)
    assert list(result.rounded().values()) == expected
    if clenhei is not None:
        assert result.length_cm == pytest.approx(clenhei, abs=1e-5)


# -- the edge rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "days, lying, adjustment",
    [
        (274, False, 0.7),  # standing height under 731 days: +0.7 cm
        (730, False, 0.7),
        (730, True, 0.0),
        (731, True, -0.7),  # recumbent length from 731 days: -0.7 cm
        (1826, True, -0.7),
        (731, False, 0.0),
        (500, None, 0.0),  # position not recorded: as measured
        (1000, None, 0.0),
        (273, False, 0.0),  # standing under 9 months is implausible: used as given
    ],
)
def test_length_height_switch(days, lying, adjustment):
    result = _z("female", days, weight_kg=10.0, length_cm=80.0, measured_lying=lying)
    assert result.length_cm == pytest.approx(80.0 + adjustment)
    same = _z("female", days, weight_kg=10.0, length_cm=80.0 + adjustment, measured_lying=None)
    assert result.as_dict() == pytest.approx(same.as_dict())
    assert result.bmi == pytest.approx(10.0 / ((80.0 + adjustment) / 100) ** 2)


def test_weight_for_length_below_731_days_and_for_height_from_731():
    assert _z("male", 730, weight_kg=10.0, length_cm=80.0).wflh_table == "wfl"
    assert _z("male", 731, weight_kg=10.0, length_cm=80.0).wflh_table == "wfh"
    # each table's range holds, even where the other table would have a row
    assert _z("male", 730, weight_kg=20.0, length_cm=112.0).wflh is None
    assert _z("male", 731, weight_kg=7.0, length_cm=64.0).wflh is None


@pytest.mark.parametrize(
    "days, length, lying, computed",
    [
        (300, 45.0, True, True),
        (300, 44.9, True, False),
        (300, 110.0, True, True),
        (300, 110.05, True, False),
        (300, 109.3, False, True),  # + 0.7 cm = 110.0, inside
        (1000, 65.0, False, True),
        (1000, 64.9, False, False),
        (1000, 120.0, False, True),
        (1000, 120.1, False, False),
        (1000, 65.7, True, True),  # - 0.7 cm = 65.0, inside
    ],
)
def test_weight_for_length_height_range(days, length, lying, computed):
    result = _z("female", days, weight_kg=10.0, length_cm=length, measured_lying=lying)
    assert (result.wflh is not None) is computed


def test_restricted_computation_beyond_3_sd_hand_computed():
    lms = Lms(0.3487, 3.3464, 0.14602)  # weight-for-age, boys, day 0
    sd2, sd3 = (3.3464 * (1 + 0.3487 * 0.14602 * k) ** (1 / 0.3487) for k in (2, 3))
    sd2neg, sd3neg = (3.3464 * (1 + 0.3487 * 0.14602 * k) ** (1 / 0.3487) for k in (-2, -3))
    assert (sd3neg, sd2neg, sd2, sd3) == pytest.approx((2.0803, 2.4593, 4.4194, 5.0306), abs=1e-4)
    # 5.5 kg: 3 + (5.5 - SD3) / (SD3 - SD2) = 3.7678; the plain LMS formula would say 3.7153
    assert 3 + (5.5 - sd3) / (sd3 - sd2) == pytest.approx(3.76783, abs=1e-5)
    assert restricted_z(5.5, lms) == pytest.approx(3.76783, abs=1e-5)
    assert lms_z(5.5, lms) == pytest.approx(3.71526, abs=1e-5)
    # 1.8 kg: -3 + (1.8 - SD3neg) / (SD2neg - SD3neg) = -3.7396; plain LMS -3.8189
    assert restricted_z(1.8, lms) == pytest.approx(-3.73959, abs=1e-5)
    assert lms_z(1.8, lms) == pytest.approx(-3.81892, abs=1e-5)
    assert _z("male", 0, weight_kg=5.5).wfa == pytest.approx(3.76783, abs=1e-5)
    assert _z("male", 0, weight_kg=1.8).wfa == pytest.approx(-3.73959, abs=1e-5)
    # within +/-3 SD both computations agree
    assert restricted_z(4.0, lms) == lms_z(4.0, lms)


def test_restricted_computation_applies_to_every_weight_based_indicator():
    result = _z("male", 300, weight_kg=14.0, length_cm=70.0, measured_lying=True)
    for indicator, table, y in (
        ("wfa", standards.by_age("weianthro", "male", 300), 14.0),
        ("bfa", standards.by_age("bmianthro", "male", 300), 14.0 / 0.7**2),
        ("wflh", standards.by_length("wflanthro", "male", 70.0), 14.0),
    ):
        assert table is not None and lms_z(y, table) > 3
        assert result.as_dict()[indicator] == pytest.approx(restricted_z(y, table))
        assert restricted_z(y, table) != pytest.approx(lms_z(y, table))


def test_age_boundaries():
    first_day = _z("male", 0, weight_kg=3.3, length_cm=50.0, measured_lying=True)
    assert None not in first_day.as_dict().values()
    last_day = _z("male", 1826, weight_kg=18.0, length_cm=110.0, measured_lying=False)
    assert None not in last_day.as_dict().values()  # 1826 days = 59.99 months
    for days in (1827, 1856, 2000):  # 60 months and older: no z-scores
        result = _z("male", days, weight_kg=18.0, length_cm=110.0, measured_lying=False)
        assert set(result.as_dict().values()) == {None}


def test_age_in_days_from_dates():
    result = z_scores("female", date(2024, 2, 29), date(2026, 3, 1), weight_kg=11.5)
    assert result.age_days == 731
    with pytest.raises(ValueError, match="before birth"):
        z_scores("female", date(2024, 3, 1), date(2024, 2, 29), weight_kg=3.0)


@pytest.mark.parametrize("sex", ["unknown", "other", "M", ""])
def test_sex_other_than_male_or_female_is_refused(sex):
    with pytest.raises(ValueError, match="male or female"):
        _z(sex, 100, weight_kg=6.0)


@pytest.mark.parametrize("weight", [None, 0.0, -1.0, math.nan])
def test_missing_or_impossible_weight_gives_no_weight_based_score(weight):
    result = _z("male", 400, weight_kg=weight, length_cm=75.0, measured_lying=True)
    assert result.lhfa is not None
    assert (result.wfa, result.wflh, result.bfa, result.bmi) == (None, None, None, None)


def test_missing_length_gives_only_weight_for_age():
    result = _z("male", 400, weight_kg=9.5)
    assert result.as_dict().keys() == {"lhfa", "wfa", "wflh", "bfa"}
    assert [k for k, z in result.as_dict().items() if z is not None] == ["wfa"]


def test_oedema_leaves_only_length_for_age():
    result = _z("female", 400, weight_kg=7.0, length_cm=72.0, measured_lying=True, oedema=True)
    assert result.lhfa is not None
    assert (result.wfa, result.wflh, result.bfa) == (None, None, None)


def _value_at(lms, z):
    """The measure with restricted z-score ``z`` (beyond 3 SD the 2-3 SD interval is the unit)."""
    if abs(z) <= 3:
        return sd_value(lms, z)
    sign = 1 if z > 0 else -1
    sd3, sd2 = sd_value(lms, 3 * sign), sd_value(lms, 2 * sign)
    return sd3 + (z - 3 * sign) * (sd3 - sd2) * sign


@pytest.mark.parametrize(
    "indicator, z, flagged",
    [  # WHO: |HAZ| > 6, WAZ < -6 or > 5, |WHZ| > 5, |BAZ| > 5, on the z-score rounded to 2
        ("lhfa", -6.01, True),
        ("lhfa", -6.004, False),
        ("lhfa", 6.01, True),
        ("lhfa", 5.9, False),
        ("wfa", 5.01, True),
        ("wfa", 5.004, False),
        ("wfa", -5.99, False),
        ("wfa", -6.01, True),
        ("wflh", 5.01, True),
        ("wflh", -5.01, True),
        ("wflh", -4.99, False),
        ("bfa", 5.01, True),
        ("bfa", -5.01, True),
        ("bfa", 4.99, False),
    ],
)
def test_biologically_implausible_flags(indicator, z, flagged):
    days, length = 400, 75.0
    if indicator == "lhfa":
        lms = standards.by_age("lenanthro", "male", days)
        length = _value_at(lms, z)
        result = _z("male", days, length_cm=length, measured_lying=True)
    elif indicator == "wfa":
        weight = _value_at(standards.by_age("weianthro", "male", days), z)
        result = _z("male", days, weight_kg=weight)
    elif indicator == "wflh":
        weight = _value_at(standards.by_length("wflanthro", "male", length), z)
        result = _z("male", days, weight_kg=weight, length_cm=length, measured_lying=True)
    else:
        bmi = _value_at(standards.by_age("bmianthro", "male", days), z)
        weight = bmi * (length / 100) ** 2
        result = _z("male", days, weight_kg=weight, length_cm=length, measured_lying=True)
    assert result.as_dict()[indicator] == pytest.approx(z)
    assert (indicator in result.flagged) is flagged


def test_z_scores_are_unrounded_and_rounded_only_for_display():
    result = _z("female", 500, weight_kg=9.87, length_cm=77.33, measured_lying=True)
    for indicator, z in result.as_dict().items():
        assert z is not None and z != round(z, 2)
        assert result.rounded()[indicator] == round(z, 2)


def test_zero_box_cox_power_uses_the_log_form():
    lms = Lms(0.0, 10.0, 0.1)
    assert lms_z(12.0, lms) == pytest.approx(math.log(1.2) / 0.1)
    assert sd_value(lms, 2) == pytest.approx(10.0 * math.exp(0.2))
