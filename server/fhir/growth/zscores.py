"""Child growth z-scores by the WHO 2006 Child Growth Standards, computed as WHO Anthro does.

Four indicators for a child under 60 months: length/height-for-age (``lhfa``), weight-for-age
(``wfa``), weight-for-length/height (``wflh``) and BMI-for-age (``bfa``), from the LMS tables of
``standards.py``. The rules follow WHO's reference implementation, the anthro R package
(https://github.com/WorldHealthOrganization/anthro, ``anthro_zscores``): age in completed days,
z-scores only while age in months (days / 30.4375) is below 60; a standing height before 731 days
gets +0.7 cm and a recumbent length from 731 days -0.7 cm, except that a standing height under 9
months is implausible and used as given; weight-for-length below 731 days (45-110 cm),
weight-for-height from 731 days (65-120 cm); the weight-based z-scores use the restricted LMS
computation beyond +/-3 SD and are not computed with oedema; flags for biologically implausible
values as WHO sets them. Method: WHO Multicentre Growth Reference Study Group (2006), *WHO Child
Growth Standards: Methods and development*, chapter 7 (computation of centiles and z-scores).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Literal

from . import standards
from .standards import AgeTable, Lms

Indicator = Literal["lhfa", "wfa", "wflh", "bfa"]
INDICATORS: tuple[Indicator, ...] = ("lhfa", "wfa", "wflh", "bfa")

DAYS_PER_MONTH = 30.4375  # 365.25 / 12, as in WHO anthro
MAX_AGE_MONTHS = 60  # z-scores only below this age
STANDING_FROM_DAYS = 731  # the standards use recumbent length below, standing height from here
POSITION_ADJUSTMENT_CM = 0.7
STANDING_IMPLAUSIBLE_BELOW_MONTHS = 9
WFL_RANGE_CM = (45.0, 110.0)
WFH_RANGE_CM = (65.0, 120.0)
# a z-score (rounded to 2 decimals, as WHO flags it) outside these bounds is implausible
PLAUSIBLE: dict[Indicator, tuple[float, float]] = {
    "lhfa": (-6.0, 6.0),
    "wfa": (-6.0, 5.0),
    "wflh": (-5.0, 5.0),
    "bfa": (-5.0, 5.0),
}


@dataclass(frozen=True)
class ZScores:
    """The z-scores of one measurement, unrounded; None where WHO gives none."""

    age_days: int
    length_cm: float | None  # after the 0.7 cm adjustment, as the z-scores use it
    bmi: float | None
    lhfa: float | None
    wfa: float | None
    wflh: float | None
    bfa: float | None
    wflh_table: Literal["wfl", "wfh"]  # weight-for-length below 731 days, weight-for-height from
    standing_under_9_months: bool  # the position was implausible and ignored (WHO's c9mo_flag)

    def as_dict(self) -> dict[Indicator, float | None]:
        """The four z-scores by indicator, unrounded."""
        return {"lhfa": self.lhfa, "wfa": self.wfa, "wflh": self.wflh, "bfa": self.bfa}

    def rounded(self) -> dict[Indicator, float | None]:
        """The four z-scores rounded to two decimals, for display and reports."""
        return {key: None if z is None else round(z, 2) for key, z in self.as_dict().items()}

    @property
    def flagged(self) -> frozenset[Indicator]:
        """The indicators whose z-score WHO flags as biologically implausible."""
        return frozenset(key for key, z in self.rounded().items() if _implausible(key, z))


def z_scores(
    sex: str,
    birth_date: date,
    measured: date,
    weight_kg: float | None = None,
    length_cm: float | None = None,
    measured_lying: bool | None = None,
    oedema: bool = False,
) -> ZScores:
    """The WHO z-scores of a child measured on ``measured``.

    ``sex`` is the FHIR gender ``male`` or ``female``; ``measured_lying`` is True for a recumbent
    length, False for a standing height, None when not recorded (then no adjustment). A missing,
    zero or negative measure gives None for the indicators that need it. Raises ValueError for
    another sex or a measurement before birth.
    """
    if sex not in standards.SEX_CODES:
        raise ValueError(f"the WHO standards are by sex male or female, not {sex!r}")
    age = age_in_days(birth_date, measured)
    weight = _measure(weight_kg)
    months = age / DAYS_PER_MONTH
    standing_under_9 = measured_lying is False and months < STANDING_IMPLAUSIBLE_BELOW_MONTHS
    lying = None if standing_under_9 else measured_lying
    length = _adjusted_length(_measure(length_cm), age, lying)
    bmi = None if weight is None or length is None else weight / (length / 100) ** 2
    wflh_table: Literal["wfl", "wfh"] = "wfl" if age < STANDING_FROM_DAYS else "wfh"
    lhfa = wfa = wflh = bfa = None
    if months < MAX_AGE_MONTHS:
        if length is not None:
            lhfa = _age_z("lenanthro", sex, age, length, restricted=False)
        # with oedema WHO computes no weight-based z-score (the child counts as below -3 SD)
        if weight is not None and not oedema:
            wfa = _age_z("weianthro", sex, age, weight, restricted=True)
            if length is not None and bmi is not None:
                bfa = _age_z("bmianthro", sex, age, bmi, restricted=True)
                wflh = _length_z(wflh_table, sex, length, weight)
    return ZScores(age, length, bmi, lhfa, wfa, wflh, bfa, wflh_table, standing_under_9)


def age_in_days(birth_date: date, measured: date) -> int:
    """Completed days from birth to measurement; ValueError when measured before birth."""
    days = (measured - birth_date).days
    if days < 0:
        raise ValueError(f"measured on {measured} before birth on {birth_date}")
    return days


def lms_z(y: float, lms: Lms) -> float:
    """The LMS z-score ``((y/M)^L - 1) / (L*S)`` (``ln(y/M) / S`` when L is 0)."""
    if lms.L == 0:
        return math.log(y / lms.M) / lms.S
    return (math.pow(y / lms.M, lms.L) - 1) / (lms.L * lms.S)


def restricted_z(y: float, lms: Lms) -> float:
    """The LMS z-score with WHO's restricted computation beyond +/-3 SD.

    Beyond 3 SD the distance is counted in units of the 2-3 SD interval instead of following
    the Box-Cox curve past the observed data (Methods and development, chapter 7).
    """
    z = lms_z(y, lms)
    if z > 3:
        sd3 = sd_value(lms, 3)
        return 3 + (y - sd3) / (sd3 - sd_value(lms, 2))
    if z < -3:
        sd3neg = sd_value(lms, -3)
        return -3 + (y - sd3neg) / (sd_value(lms, -2) - sd3neg)
    return z


def sd_value(lms: Lms, z: float) -> float:
    """The measure at z-score ``z``: ``M * (1 + L*S*z)^(1/L)``."""
    if lms.L == 0:
        return lms.M * math.exp(lms.S * z)
    return lms.M * math.pow(1 + lms.L * lms.S * z, 1 / lms.L)


def _measure(value: float | None) -> float | None:
    # WHO anthro: a measure <= 0 (or missing) gives no z-score
    if value is None or not math.isfinite(value) or value <= 0:
        return None
    return float(value)


def _adjusted_length(length: float | None, age: int, lying: bool | None) -> float | None:
    if length is None or lying is None:
        return length
    if not lying and age < STANDING_FROM_DAYS:
        length += POSITION_ADJUSTMENT_CM
    elif lying and age >= STANDING_FROM_DAYS:
        length -= POSITION_ADJUSTMENT_CM
    # 109.3 + 0.7 is 110.00000000000001 in binary; keep the centimetres the arithmetic means
    return round(length, 9)


def _age_z(table: AgeTable, sex: str, age: int, y: float, restricted: bool) -> float | None:
    lms = standards.by_age(table, sex, age)
    if lms is None:
        return None
    return restricted_z(y, lms) if restricted else lms_z(y, lms)


def _length_z(table: Literal["wfl", "wfh"], sex: str, length: float, weight: float) -> float | None:
    low, high = WFL_RANGE_CM if table == "wfl" else WFH_RANGE_CM
    if not low <= length <= high:
        return None
    lms = standards.by_length("wflanthro" if table == "wfl" else "wfhanthro", sex, length)
    return None if lms is None else restricted_z(weight, lms)


def _implausible(indicator: Indicator, z: float | None) -> bool:
    low, high = PLAUSIBLE[indicator]
    return z is not None and not low <= z <= high
