"""What the dashboard and the MeasureReports read: indicator values per area and month.

Areas form the kabupaten -> kecamatan -> desa -> Posyandu tree of the district's codes (a
person counts in the desa of their home address and the Posyandu that measured them last), with
Puskesmas as a second grouping of desa (the desa of the Posyandu and Pustu under each
Puskesmas).  Values come from the pre-aggregated summary (``summary.py``), recomputed for a
month when a write changed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Level = Literal["kabupaten", "kecamatan", "puskesmas", "desa", "posyandu"]
LEVELS: tuple[Level, ...] = ("kabupaten", "kecamatan", "puskesmas", "desa", "posyandu")


@dataclass(frozen=True)
class Value:
    """An indicator's value in one area and month: a count, or a count of a denominator."""

    numerator: int = 0
    denominator: int | None = None  # None for a count indicator

    @property
    def rate(self) -> float | None:
        """Percent, or None for a count or an empty denominator."""
        if not self.denominator:
            return None
        return 100.0 * self.numerator / self.denominator

    def __add__(self, other: Value) -> Value:
        if self.denominator is None and other.denominator is None:
            return Value(self.numerator + other.numerator)
        return Value(
            self.numerator + other.numerator, (self.denominator or 0) + (other.denominator or 0)
        )


@dataclass(frozen=True)
class Area:
    """A place indicators are counted for.

    ``code``: the Kemendagri code for kabupaten, kecamatan and desa; the Organization id for
    a Puskesmas or Posyandu.  ``location``: the Location (ilp-wilayah or the facility's) that
    MeasureReports name as subject, when one is known.
    """

    level: Level
    code: str
    name: str
    location: str | None = None
    parent: str | None = None  # the desa of a Posyandu, the kecamatan of a desa


@dataclass(frozen=True)
class AreaRow:
    area: Area
    values: dict[str, Value] = field(default_factory=dict)  # indicator code -> value


@dataclass(frozen=True)
class Overview:
    """One month's values for the areas of a level (sorted by name), with their total."""

    month: str  # YYYY-MM
    level: Level
    rows: list[AreaRow]
    total: AreaRow


@dataclass(frozen=True)
class ChildAtRisk:
    """A child under five whose latest measurement up to the month is below -2 SD somewhere."""

    patient_id: str
    name: str
    sex: str | None
    birth_date: str | None
    measured: str  # the day of the latest measurement
    height_for_age: float | None
    weight_for_age: float | None
    weight_for_height: float | None
    reasons: tuple[str, ...]  # indicator codes: stunting, wasting, underweight
