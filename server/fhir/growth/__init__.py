"""Child growth assessment by the WHO 2006 Child Growth Standards (the first piece of the PWS).

``z_scores`` gives length/height-for-age, weight-for-age, weight-for-length/height and
BMI-for-age z-scores exactly as WHO Anthro computes them, from WHO's own LMS tables shipped in
``tables/``; ``docs/indicators.md`` describes the method and its edge rules. Reference: WHO
Multicentre Growth Reference Study Group (2006), *WHO Child Growth Standards: Methods and
development*, https://www.who.int/tools/child-growth-standards/standards
"""

from __future__ import annotations

from .standards import Lms
from .zscores import (
    INDICATORS,
    PLAUSIBLE,
    Indicator,
    ZScores,
    age_in_days,
    lms_z,
    restricted_z,
    sd_value,
    z_scores,
)

__all__ = [
    "INDICATORS",
    "PLAUSIBLE",
    "Indicator",
    "Lms",
    "ZScores",
    "age_in_days",
    "lms_z",
    "restricted_z",
    "sd_value",
    "z_scores",
]
