"""The demo district generator: one kabupaten, its health network, families and their visits.

``generate(size, seed)`` yields FHIR R4 resources as JSON dicts in dependency order (anything a
resource refers to comes before it): the Dinas Kesehatan and kabupaten, then per kecamatan its
Puskesmas, desa, Pustu, Posyandu and nakes, then households round-robin over the desa, each as
its Patients followed by their Encounters and Observations.  Every random choice comes from a
``random.Random`` seeded with the seed and the thing being made, and every id is derived from
Kemendagri codes and household numbers, so the same seed and size give the same resources under
the same ids (loading them twice changes nothing), and a larger size keeps the smaller's
households.  Resources share constant parts (``meta``, codings): copy before mutating one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from server.demo.facilities import DesaSite, kabupaten_resources, kecamatan_resources
from server.demo.patients import patient_resource
from server.demo.people import NikRegistry, build_household
from server.demo.visits import visit_resources
from server.demo.wilayah import DEFAULT_KABUPATEN, Kabupaten, build_areas

DEFAULT_SEED = 1
# A fixed last day rather than today: the same seed must give the same resources next year.
DEFAULT_END = date(2026, 10, 31)


@dataclass(frozen=True)
class DemoSize:
    """How big the district is and how many months of visits it holds.

    With ``observations`` set, households are added round-robin over the desa until at least
    that many Observations were generated, and ``households_per_desa`` is ignored.
    """

    kecamatan: int
    desa_per_kecamatan: int
    households_per_desa: int
    months: int
    observations: int | None = None

    def __post_init__(self) -> None:
        if self.kecamatan < 1 or self.desa_per_kecamatan < 1:
            raise ValueError("a demo district needs at least one kecamatan and one desa")
        if not 1 <= self.months <= 60:
            raise ValueError("months must be between 1 and 60")
        if self.observations is not None and self.observations < 0:
            raise ValueError("observations must not be negative")


PRESETS = {
    # About 300 patients and 3,000 Observations: what `make run` loads.
    "small": DemoSize(kecamatan=2, desa_per_kecamatan=3, households_per_desa=16, months=6),
    # About 1.4 million resources, for bench/search.py.
    "bench": DemoSize(
        kecamatan=20, desa_per_kecamatan=8, households_per_desa=0, months=12, observations=10**6
    ),
}


def generate(
    size: DemoSize,
    seed: int = DEFAULT_SEED,
    *,
    kabupaten: Kabupaten = DEFAULT_KABUPATEN,
    end: date = DEFAULT_END,
) -> Iterator[dict[str, Any]]:
    """The resources of the district, in dependency order."""
    niks, kks = NikRegistry(), NikRegistry()
    yield from kabupaten_resources(kabupaten)
    sites: list[DesaSite] = []
    areas = build_areas(kabupaten, size.kecamatan, size.desa_per_kecamatan, seed)
    for villages in areas:
        resources, desa_sites = kecamatan_resources(
            villages[0].kecamatan, villages, seed, niks, end
        )
        yield from resources
        sites += desa_sites
    months = _months(end, size.months)
    observations = 0
    for number in itertools.count(1):
        if size.observations is None and number > size.households_per_desa:
            return
        for site in sites:
            if size.observations is not None and observations >= size.observations:
                return
            household = build_household(site.desa, number, len(site.posyandu), end, seed, niks, kks)
            for person in household.members:
                yield patient_resource(person, household, site)
            for resource in visit_resources(household, site, months, end, seed, kabupaten.offset):
                observations += resource["resourceType"] == "Observation"
                yield resource


def _months(end: date, count: int) -> list[date]:
    """The first days of the ``count`` months that end with the month of ``end``."""
    index = end.year * 12 + end.month - 1
    return [date(i // 12, i % 12 + 1, 1) for i in range(index - count + 1, index + 1)]
