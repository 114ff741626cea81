"""String normalisation for search: case and accents folded, as FHIR string search asks."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# Index columns hold at most this many characters; longer values are cut on write and
# in queries alike, so a match on the first 255 characters still matches.
MAX_INDEX_LENGTH = 255


@lru_cache(maxsize=65536)  # displays and names repeat across resources
def normalize(value: str) -> str:
    """Lower case, accents removed, spaces collapsed: ``"  Sitì  Nur"`` -> ``"siti nur"``."""
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().split())[:MAX_INDEX_LENGTH]


def cut(value: str | None) -> str | None:
    return value[:MAX_INDEX_LENGTH] if value is not None else None
