"""Unsigned integers from request text (``_count``, ``_cursor``, version ids, ``If-Match``).

``str.isdigit`` is not enough: it accepts ``²`` (which ``int`` refuses) and ``int`` refuses more
than 4,300 digits; a value past the column's SQL type fails when bound.  Values are capped instead,
since no count, sequence number or version reaches the cap.
"""

from __future__ import annotations

BIGINT_MAX = 2**63 - 1  # seq (history cursors)
INTEGER_MAX = 2**31 - 1  # version ids (an INTEGER column)


def parse_unsigned(value: str, ceiling: int = BIGINT_MAX) -> int | None:
    """``value`` as an int, at most ``ceiling``, when it is ASCII decimal digits; else None."""
    if not (value.isascii() and value.isdigit()):
        return None
    digits = value.lstrip("0") or "0"
    if len(digits) > len(str(ceiling)):
        return ceiling
    return min(int(digits), ceiling)
