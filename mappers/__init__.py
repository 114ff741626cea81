"""Local record formats (facility and resident registers, ...) to FHIR transaction Bundles.

Each format has a JSON Schema in ``schemas/`` and a mapper: a pure function from one validated
record to transaction entries (docs/formats.md).  ``mappers.importing`` reads a file, checks
every row and batches the entries into Bundles.
"""

from __future__ import annotations

from mappers.base import Mapper, RecordError
from mappers.fasilitas import FasilitasMapper
from mappers.posyandu_balita import PosyanduBalitaMapper
from mappers.sasaran import SasaranMapper

__all__ = ["FORMATS", "Mapper", "RecordError", "mapper_for"]

FORMATS: tuple[str, ...] = ("fasilitas", "sasaran", "posyandu-balita")


def mapper_for(name: str) -> Mapper:
    """The mapper of format ``name``; KeyError when there is none."""
    if name == "fasilitas":
        return FasilitasMapper()
    if name == "sasaran":
        return SasaranMapper()
    if name == "posyandu-balita":
        return PosyanduBalitaMapper()
    raise KeyError(name)
