"""JSON in and out with orjson; canonical bytes and content hashes of resources."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError


def loads(raw: bytes | str) -> Any:
    return orjson.loads(raw)


def dumps(value: Any, *, pretty: bool = False) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 if pretty else 0)


def dumps_text(value: Any) -> str:
    """JSON as ``str``; SQLAlchemy's JSON type wants text from its serializer."""
    return orjson.dumps(value).decode()


def content_hash(resource: dict[str, Any]) -> str:
    """SHA-256 of the resource without ``meta.versionId``/``meta.lastUpdated``, keys sorted.

    Two bodies with the same hash are the same content, so an update that changes
    nothing can be recognised without comparing documents.
    """
    meta = resource.get("meta")
    if isinstance(meta, dict) and ("versionId" in meta or "lastUpdated" in meta):
        trimmed = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
        resource = {**resource, "meta": trimmed} if trimmed else _without(resource, "meta")
    return hashlib.sha256(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _without(resource: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != key}


def deeper_than(value: dict[str, Any] | list[Any], limit: int) -> bool:
    """Whether JSON objects and arrays nest deeper than ``limit`` levels in ``value``."""
    # Iterative: a hostile document must not exhaust the Python stack before we refuse it.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False
