"""The CapabilityStatement, generated from the registry so it tells what really works.

See https://hl7.org/fhir/R4/capabilitystatement.html and http.html#capabilities.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from server.fhir.elements import element
from server.fhir.registry import SUPPORTED

SOFTWARE_NAME = "ILP Gateway"
SOFTWARE_VERSION = "0.1.0"


def capability_statement(base: str, *, allow_update_create: bool) -> dict[str, Any]:
    """The server's CapabilityStatement (kind ``instance``, FHIR 4.0.1, JSON)."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "kind": "instance",
        "software": {"name": SOFTWARE_NAME, "version": SOFTWARE_VERSION},
        "implementation": {"description": "ILP Gateway FHIR server", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "resource": [
                    _resource(support.type, support.interactions, allow_update_create)
                    for support in SUPPORTED.values()
                ],
                "interaction": [{"code": "history-system"}],
            }
        ],
    }


def _resource(type_name: str, interactions: tuple[str, ...], update_create: bool) -> dict[str, Any]:
    params = [
        {
            "name": "_id",
            "type": "token",
            "definition": "http://hl7.org/fhir/SearchParameter/Resource-id",
        }
    ]
    if element(type_name, "identifier") is not None:
        params.append(
            {
                "name": "identifier",
                "type": "token",
                "documentation": "Matches Identifier.system and Identifier.value",
            }
        )
    return {
        "type": type_name,
        "interaction": [{"code": code} for code in interactions],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": update_create,
        "conditionalCreate": True,
        "conditionalUpdate": True,
        "conditionalDelete": "single",
        "searchParam": params,
    }
