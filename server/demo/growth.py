"""Plausible measurement values: under-five growth, adult blood pressure and weight, hemoglobin.

Children follow approximate WHO 2006 Child Growth Standards: medians (and, for length/height,
standard deviations) at a few ages read off the WHO tables and interpolated linearly.  Each
child keeps one length-for-age z-score for life, drawn from N(-1.16, 1), so that about 20 % of
under-fives are below -2 SD (stunted), near Indonesia's recent survey figures.  Simplifications,
documented in docs/demo.md: length and height form one curve (WHO's 0.7 cm step at 24 months
is left out), weight uses a fixed 12 % coefficient of variation and ignores its skew, and the
head and arm references are rough.  Good enough for demos and dashboards, not for research.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import dataclass

# Length/height-for-age z-score distribution: P(z < -2) = Phi((-2 + 1.16) / 1) = 0.20.
HEIGHT_Z_MEAN = -1.16
STUNTED_BELOW = -2.0

_AGES = (0, 1, 2, 3, 4, 5, 6, 9, 12, 18, 24, 36, 48, 60)  # months
_HEIGHT_MEDIAN = dict(
    male=(49.9, 54.7, 58.4, 61.4, 63.9, 65.9, 67.6, 72.0, 75.7, 82.3, 87.1, 96.1, 103.3, 110.0),
    female=(49.1, 53.7, 57.1, 59.8, 62.1, 64.0, 65.7, 70.1, 74.0, 80.7, 85.7, 95.1, 102.7, 109.4),
)
_HEIGHT_SD = dict(
    male=(1.9, 1.95, 2.0, 2.05, 2.1, 2.15, 2.2, 2.3, 2.35, 2.75, 3.05, 3.7, 4.2, 4.65),
    female=(1.85, 1.95, 2.05, 2.1, 2.15, 2.2, 2.25, 2.4, 2.55, 2.9, 3.2, 3.85, 4.3, 4.75),
)
_WEIGHT_MEDIAN = dict(
    male=(3.3, 4.5, 5.6, 6.4, 7.0, 7.5, 7.9, 8.9, 9.6, 10.9, 12.2, 14.3, 16.3, 18.3),
    female=(3.2, 4.2, 5.1, 5.8, 6.4, 6.9, 7.3, 8.2, 8.9, 10.2, 11.5, 13.9, 16.1, 18.2),
)
_HEAD_MEDIAN = dict(
    male=(34.5, 37.3, 39.1, 40.5, 41.6, 42.6, 43.3, 45.0, 46.1, 47.4, 48.3, 49.5, 50.3, 50.9),
    female=(33.9, 36.5, 38.3, 39.5, 40.6, 41.5, 42.2, 43.8, 44.9, 46.2, 47.2, 48.5, 49.3, 49.9),
)
_MUAC_MEDIAN = dict(
    male=(13.5, 13.5, 13.5, 13.9, 14.1, 14.3, 14.5, 14.9, 15.2, 15.5, 15.7, 16.0, 16.3, 16.6),
    female=(13.2, 13.2, 13.2, 13.6, 13.8, 14.0, 14.1, 14.6, 14.9, 15.2, 15.5, 15.9, 16.3, 16.6),
)
_WEIGHT_CV, _HEAD_SD, _MUAC_SD = 0.12, 1.3, 1.2
DAYS_PER_MONTH = 30.4375


def _at(table: tuple[float, ...], months: float) -> float:
    """Linear interpolation of a table over _AGES, clamped to 0-60 months."""
    months = min(max(months, 0.0), 60.0)
    i = min(bisect_right(_AGES, months), len(_AGES) - 1)
    low, high = _AGES[i - 1], _AGES[i]
    share = (months - low) / (high - low)
    return table[i - 1] + share * (table[i] - table[i - 1])


def height_reference(gender: str, age_days: int) -> tuple[float, float]:
    """Approximate WHO length/height-for-age median and SD (cm)."""
    months = age_days / DAYS_PER_MONTH
    return _at(_HEIGHT_MEDIAN[gender], months), _at(_HEIGHT_SD[gender], months)


def height_z(gender: str, age_days: int, height_cm: float) -> float:
    """Length/height-for-age z-score against the approximate reference; below -2 is stunted."""
    median, sd = height_reference(gender, age_days)
    return (height_cm - median) / sd


@dataclass(frozen=True)
class ChildGrowth:
    """A child's lasting position in the reference: z-scores that change little month to month."""

    height_z: float
    weight_z: float
    head_z: float
    muac_z: float

    @property
    def stunted(self) -> bool:
        return self.height_z < STUNTED_BELOW


def draw_child(rng: random.Random) -> ChildGrowth:
    height = rng.gauss(HEIGHT_Z_MEAN, 1.0)
    weight = 0.5 * height - 0.42 + rng.gauss(0, 0.87)  # short children tend to be light
    return ChildGrowth(
        height,
        weight,
        0.4 * height + rng.gauss(0, 0.9),
        0.6 * weight + rng.gauss(0, 0.8),
    )


def child_measures(
    growth: ChildGrowth, gender: str, age_days: int, rng: random.Random
) -> dict[str, float]:
    """One visit's weight (kg), length/height, head and (from 6 months) arm circumference (cm)."""
    months = age_days / DAYS_PER_MONTH
    median, sd = height_reference(gender, age_days)
    weight_median = _at(_WEIGHT_MEDIAN[gender], months)
    values = {
        "29463-7": max(1.5, weight_median * (1 + _WEIGHT_CV * growth.weight_z) + rng.gauss(0, 0.1)),
        "8302-2": median + sd * growth.height_z + rng.gauss(0, 0.2),
        "9843-4": _at(_HEAD_MEDIAN[gender], months) + _HEAD_SD * growth.head_z + rng.gauss(0, 0.2),
    }
    if months >= 6:
        muac = _at(_MUAC_MEDIAN[gender], months) + _MUAC_SD * growth.muac_z + rng.gauss(0, 0.2)
        values["56072-2"] = max(9.0, muac)
    return {code: round(value, 1) for code, value in values.items()}


@dataclass(frozen=True)
class AdultHealth:
    """An adult's usual systolic pressure, weight and (for pregnant women) hemoglobin."""

    systolic: float
    weight: float
    hemoglobin: float

    @property
    def hypertensive(self) -> bool:
        return self.systolic >= 140


def draw_adult(rng: random.Random, gender: str, age_years: float) -> AdultHealth:
    # Systolic pressure rises with age: about a third of adults over 40 are at 140 or more.
    systolic = rng.gauss(110 + 0.8 * (age_years - 30), 18)
    weight = rng.gauss(55 if gender == "female" else 61, 9)
    return AdultHealth(max(95.0, systolic), max(38.0, weight), rng.gauss(11.3, 1.2))


def blood_pressure(health: AdultHealth, rng: random.Random) -> tuple[int, int]:
    """Systolic and diastolic (mm[Hg]) of one measurement."""
    systolic = health.systolic + rng.gauss(0, 6)
    diastolic = 0.55 * systolic + 10 + rng.gauss(0, 6)
    return round(systolic), round(min(diastolic, systolic - 20))


def adult_weight(health: AdultHealth, rng: random.Random, gestation_days: int = 0) -> float:
    """Body weight (kg), with the gain of the second and third trimester."""
    gain = max(0, gestation_days - 90) * 0.06
    return round(health.weight + gain + rng.gauss(0, 0.5), 1)


def hemoglobin(health: AdultHealth, rng: random.Random) -> float:
    """Hemoglobin (g/dL); below 11 is anaemia in pregnancy, common in Indonesia."""
    return round(max(6.0, health.hemoglobin + rng.gauss(0, 0.3)), 1)
