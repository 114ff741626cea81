"""Who is calling and what they may do: SMART system scopes and the facilities a client is bound to.

Scopes follow SMART App Launch: v1 ``system/Observation.read`` / ``.write`` / ``.*`` and v2
``system/Observation.cruds`` (any of c, r, u, d, s, in that order); ``*`` stands for every type.
A ``Caller`` with ``binding=None`` acts everywhere; otherwise every resource it reads or writes
must belong to an Organization its binding covers (``storage/scope.py``).
See https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html and docs/security.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from server.errors import Forbidden, InvalidRequest
from server.storage.scope import Binding

# SMART v1 names of permission sets, as v2 letters.
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(r"system/(\*|[A-Z][A-Za-z]{1,63})\.(read|write|\*|c?r?u?d?s?)")
LETTERS = "cruds"
_WORDS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}


def parse_scopes(text: str) -> dict[str, frozenset[str]]:
    """``{type or "*": letters}`` of a space-separated scope string; InvalidRequest naming a bad
    one.  Scopes other than ``system/`` ones (``openid``, ``launch``...) are ignored."""
    granted: dict[str, set[str]] = {}
    for scope in text.split():
        if not scope.startswith("system/"):
            continue
        match = _SCOPE.fullmatch(scope)
        if match is None or not match.group(2):
            raise InvalidRequest(f"{scope!r} is not a SMART system scope", "scope")
        letters = _V1.get(match.group(2), match.group(2))
        granted.setdefault(match.group(1), set()).update(letters)
    return {name: frozenset(letters) for name, letters in granted.items()}


def format_scopes(granted: dict[str, frozenset[str]]) -> str:
    """The v2 spelling of ``granted``: ``system/Patient.rs system/*.c``."""
    return " ".join(
        f"system/{name}.{''.join(c for c in LETTERS if c in letters)}"
        for name, letters in sorted(granted.items())
        if letters
    )


def narrow(granted: dict[str, frozenset[str]], asked: str) -> dict[str, frozenset[str]]:
    """The scopes of a token: what was asked for, within what the client holds."""
    wanted = parse_scopes(asked)
    result: dict[str, frozenset[str]] = {}
    for name, letters in wanted.items():
        held = granted.get(name, frozenset()) | granted.get("*", frozenset())
        if name == "*":
            for held_name, held_letters in granted.items():
                kept = held_letters & letters
                if kept:
                    result[held_name] = result.get(held_name, frozenset()) | kept
        elif letters & held:
            result[name] = letters & held
    return result


@dataclass(frozen=True)
class Caller:
    """The client behind a request (an unrestricted one when authentication is off)."""

    client_id: str | None = None
    scopes: dict[str, frozenset[str]] = field(default_factory=lambda: {"*": frozenset(LETTERS)})
    binding: Binding | None = None
    address: str | None = None
    audited: bool = False  # its writes leave AuditEvents (services/audit.py)

    @property
    def bound(self) -> bool:
        return self.binding is not None

    def allows(self, resource_type: str, letter: str) -> bool:
        return letter in self.scopes.get(resource_type, frozenset()) or letter in self.scopes.get(
            "*", frozenset()
        )

    def require(self, resource_type: str, letter: str, expression: str = "") -> None:
        """Forbidden unless a scope grants ``letter`` (c, r, u, d, s) on ``resource_type``."""
        if not self.allows(resource_type, letter):
            raise Forbidden(
                f"The client's scopes do not allow {_WORDS[letter]} on {resource_type} "
                f"(needs system/{resource_type}.{letter} or a wider scope)",
                expression or resource_type,
            )


UNRESTRICTED = Caller()
