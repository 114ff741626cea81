"""Just enough UCUM to compare quantities whose units differ by a metric prefix (g vs kg).

Comparing a value with a profile's minValue/maxValue needs both in one unit; a full UCUM
library is not in our dependencies, and ILP measurements differ only by prefixes
(https://ucum.org/ucum#para-4: prefix symbols, case sensitive).
"""

from __future__ import annotations

from decimal import Decimal

_PREFIXES = {
    "": Decimal(1),
    "da": Decimal(10),
    "h": Decimal(100),
    "k": Decimal(1000),
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "d": Decimal("0.1"),
    "c": Decimal("0.01"),
    "m": Decimal("0.001"),
    "u": Decimal(10) ** -6,
    "n": Decimal(10) ** -9,
    "p": Decimal(10) ** -12,
}
_BASES = ("mol", "g", "m", "L", "l", "s")


def in_base_unit(value: Decimal, code: str) -> tuple[Decimal, str] | None:
    """``value`` ``code`` expressed in its base unit (2 kg -> 2000 g); None when unknown."""
    for base in _BASES:
        if code.endswith(base):
            factor = _PREFIXES.get(code[: -len(base)])
            if factor is not None:
                return value * factor, base.upper() if base in ("L", "l") else base
    return None


def comparable(
    value: Decimal, code: str, limit: Decimal, limit_code: str
) -> tuple[Decimal, Decimal] | None:
    """Both numbers in one unit, or None when the units cannot be compared."""
    if code == limit_code:
        return value, limit
    left, right = in_base_unit(value, code), in_base_unit(limit, limit_code)
    if left is None or right is None or left[1] != right[1]:
        return None
    return left[0], right[0]
