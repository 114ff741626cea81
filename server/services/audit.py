"""The audit trail: an AuditEvent for every write and every refused request.

Writes are collected while a unit of work runs and stored as one AuditEvent (an entity per
version written) just before it commits, in the same transaction: no write without its event,
no event for a write that rolled back.  A refusal (401, 403) is stored in a transaction of its
own, since the request's own work is not committed.  AuditEvents are read-only over the API
(``fhir/registry.py``) and belong to the caller's facility, so a facility's auditors
(``system/AuditEvent.rs``) see their own.  See docs/security.md#audit and
https://hl7.org/fhir/R4/auditevent.html.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from server.services.access import Caller
from server.services.versions import format_instant, new_version, now
from server.storage.uow import UnitOfWork

_EVENT_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
_INTERACTIONS = "http://hl7.org/fhir/restful-interaction"
_SUBTYPE = {"C": "create", "R": "read", "U": "update", "D": "delete", "E": "transaction"}
CLIENT_SYSTEM = "urn:ilp-gateway:client"  # agent identifiers: the OAuth2 client id
_SOURCE = {
    "site": "ILP Gateway",
    "observer": {"display": "ILP Gateway"},
    "type": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
            "code": "4",
            "display": "Application Server",
        }
    ],
}


@dataclass(frozen=True)
class Written:
    action: str  # C, U, D
    resource_type: str
    res_id: str
    version_id: int


def wrote(uow: UnitOfWork, action: str, resource_type: str, res_id: str, version: int) -> None:
    """Note a write of ``uow``; its AuditEvent is stored when the unit of work commits."""
    caller = uow.caller
    if not isinstance(caller, Caller) or not caller.audited:
        return
    trail: list[Written] | None = uow.memo.get("audit")
    if trail is None:
        trail = uow.memo["audit"] = []
        uow.before_commit.append(_store_trail)
    trail.append(Written(action, resource_type, res_id, version))


def refused(uow: UnitOfWork, caller: Caller, status: int, diagnostics: str, request: str) -> None:
    """Store the AuditEvent of a refused request (``request``: "METHOD path")."""
    outcome = "4" if status < 500 else "8"  # minor failure: the request was refused
    event = _event(caller, "E", outcome, f"{request}: {status} {diagnostics}"[:1000])
    _store(uow, caller, event)


def _store_trail(uow: UnitOfWork) -> None:
    caller = uow.caller
    assert isinstance(caller, Caller)
    trail: list[Written] = uow.memo.pop("audit", [])
    if not trail:
        return
    actions = {w.action for w in trail}
    action = actions.pop() if len(actions) == 1 else "E"
    event = _event(caller, action, "0", None)
    event["entity"] = [
        {
            "what": {"reference": f"{w.resource_type}/{w.res_id}/_history/{w.version_id}"},
            "type": {
                "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                "code": "2",
                "display": "System Object",
            },
            "detail": [{"type": "action", "valueString": w.action}],
        }
        for w in trail
    ]
    _store(uow, caller, event)


def _event(caller: Caller, action: str, outcome: str, description: str | None) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "who": {
            "identifier": {"system": CLIENT_SYSTEM, "value": caller.client_id or "anonymous"},
            "display": caller.client_id or "anonymous",
        },
        "requestor": True,
    }
    if caller.address:
        agent["network"] = {"address": caller.address, "type": "2"}  # 2: IP address
    agents = [agent]
    facility = caller.binding.organization if caller.binding else None
    if facility:
        agents.append({"who": {"reference": f"Organization/{facility}"}, "requestor": False})
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": _EVENT_TYPE,
        "subtype": [{"system": _INTERACTIONS, "code": _SUBTYPE[action]}],
        "action": action,
        "recorded": format_instant(now()),
        "outcome": outcome,
        "agent": agents,
        "source": _SOURCE,
    }
    if description:
        event["outcomeDesc"] = description
    return event


def _store(uow: UnitOfWork, caller: Caller, event: dict[str, Any]) -> None:
    # Straight to the store: the API refuses AuditEvent writes, and the trail is not audited.
    facility = caller.binding.organization if caller.binding else None
    uow.store.insert(new_version("AuditEvent", str(uuid.uuid4()), 1, event, "POST", facility))
