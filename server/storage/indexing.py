"""Index rows extracted from a resource on write.

For now the ``identifier`` token of every type that has one; the search issue
replaces this with extraction driven by SearchParameter expressions.
"""

from __future__ import annotations

from typing import Any

from server.storage.repository import Token


def tokens_of(resource: dict[str, Any]) -> list[Token]:
    identifiers = resource.get("identifier")
    if isinstance(identifiers, dict):  # Bundle.identifier is single
        identifiers = [identifiers]
    tokens = []
    for identifier in identifiers or ():
        value = identifier.get("value") if isinstance(identifier, dict) else None
        if isinstance(value, str):
            tokens.append(Token("identifier", identifier.get("system"), value))
    return tokens
