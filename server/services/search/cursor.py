"""Opaque ``_cursor`` tokens for keyset paging: the sort values of a page's last row.

A next link names where the page ended, not how many rows came before, so rows
written or deleted meanwhile neither repeat nor vanish from later pages.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import orjson

from server.errors import InvalidRequest


def encode_cursor(row: tuple[Any, ...]) -> str:
    values = [{"t": v.isoformat()} if isinstance(v, datetime) else v for v in row]
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[Any, ...]:
    """The row values of ``token``; 400 when it was not made by this server."""
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        values = tuple(datetime.fromisoformat(v["t"]) if isinstance(v, dict) else v for v in raw)
    except (ValueError, TypeError, KeyError):
        raise InvalidRequest("_cursor is not a cursor this server issued", "_cursor") from None
    if not isinstance(raw, list) or not values:
        raise InvalidRequest("_cursor is not a cursor this server issued", "_cursor")
    return values
