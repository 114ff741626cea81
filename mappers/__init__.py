"""Local record formats (facility and resident registers, visit sheets) to FHIR transaction
Bundles.

Each format has a JSON Schema in ``schemas/`` and a mapper: a pure function from one validated
record to transaction entries (docs/formats.md).  ``mappers.importing`` reads a file, checks
every row and batches the entries into Bundles.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from mappers.base import Mapper, RecordError
from mappers.fasilitas import FasilitasMapper
from mappers.kunjungan import KunjunganMapper
from mappers.kunjungan_rumah import KunjunganRumahMapper
from mappers.posyandu_balita import PosyanduBalitaMapper
from mappers.posyandu_dewasa import PosyanduDewasaMapper
from mappers.posyandu_ibu_hamil import PosyanduIbuHamilMapper
from mappers.sasaran import SasaranMapper

__all__ = ["FORMATS", "Mapper", "RecordError", "mapper_for"]

# Format name -> its mapper, given "today" (the one impure input: dates in the future are
# refused), in the order a district imports them: registers before the sheets that cite them.
_MAPPERS: dict[str, Callable[[date | None], Mapper]] = {
    "fasilitas": lambda today: FasilitasMapper(),
    "sasaran": lambda today: SasaranMapper(today=today),
    "posyandu-balita": lambda today: PosyanduBalitaMapper(today=today),
    "posyandu-remaja": lambda today: PosyanduDewasaMapper("posyandu-remaja", today=today),
    "posyandu-produktif": lambda today: PosyanduDewasaMapper("posyandu-produktif", today=today),
    "posyandu-lansia": lambda today: PosyanduDewasaMapper("posyandu-lansia", today=today),
    "posyandu-ibu-hamil": lambda today: PosyanduIbuHamilMapper(today=today),
    "kunjungan": lambda today: KunjunganMapper(today=today),
    "kunjungan-rumah": lambda today: KunjunganRumahMapper(today=today),
}
FORMATS: tuple[str, ...] = tuple(_MAPPERS)


def mapper_for(name: str, today: date | None = None) -> Mapper:
    """The mapper of format ``name``; KeyError when there is none."""
    return _MAPPERS[name](today)
