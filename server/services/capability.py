"""The CapabilityStatement, generated from the registry so it tells what really works.

See https://hl7.org/fhir/R4/capabilitystatement.html and http.html#capabilities.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from server.fhir.registry import SUPPORTED
from server.fhir.searchparams import SearchParam, SearchParams

SOFTWARE_NAME = "ILP Gateway"
SOFTWARE_VERSION = "0.1.0"


def capability_statement(
    base: str, *, allow_update_create: bool, search_params: SearchParams
) -> dict[str, Any]:
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
                    _resource(
                        support.type,
                        support.interactions,
                        allow_update_create,
                        search_params.for_type(support.type),
                    )
                    for support in SUPPORTED.values()
                ],
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "history-system"},
                ],
            }
        ],
    }


def _resource(
    type_name: str,
    interactions: tuple[str, ...],
    update_create: bool,
    params: dict[str, SearchParam],
) -> dict[str, Any]:
    search_params = [
        {
            "name": "_id",
            "type": "token",
            "definition": "http://hl7.org/fhir/SearchParameter/Resource-id",
        }
    ]
    search_params += [
        _search_param(code, param) for code, param in sorted(params.items()) if code != "_id"
    ]
    return {
        "type": type_name,
        "interaction": [{"code": code} for code in interactions],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": update_create,
        "conditionalCreate": True,
        "conditionalUpdate": True,
        "conditionalDelete": "single",
        "searchInclude": [
            f"{type_name}:{c}" for c, p in sorted(params.items()) if p.type == "reference"
        ],
        "searchParam": search_params,
    }


def _search_param(code: str, param: SearchParam) -> dict[str, Any]:
    entry = {"name": code, "type": param.type}
    if param.url:
        entry["definition"] = param.url
    if param.description:
        entry["documentation"] = param.description
    return entry
