"""The CapabilityStatement, generated from the registry so it tells what really works.

Each resource lists the ILP profiles of its type (the constraint StructureDefinitions of the
profiles folder) as ``supportedProfile``.
See https://hl7.org/fhir/R4/capabilitystatement.html and http.html#capabilities.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from server.config import Settings
from server.fhir.packages import resources_in
from server.fhir.registry import SUPPORTED
from server.fhir.searchparams import SearchParam, SearchParams

SOFTWARE_NAME = "ILP Gateway"
SOFTWARE_VERSION = "0.1.0"
VALIDATE_OPERATION = "http://hl7.org/fhir/OperationDefinition/Resource-validate"
# POST [base]/$import-records: register files to ILP resources (docs/formats.md#importing).
IMPORT_RECORDS_OPERATION = "https://fhir.ilp-gateway.id/OperationDefinition/import-records"


def capability_statement(
    base: str,
    *,
    allow_update_create: bool,
    search_params: SearchParams,
    profiles_dir: str | Path = Settings.profiles_dir,
) -> dict[str, Any]:
    """The server's CapabilityStatement (kind ``instance``, FHIR 4.0.1, JSON)."""
    profiles = supported_profiles(profiles_dir)
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
                        profiles.get(support.type, ()),
                    )
                    for support in SUPPORTED.values()
                ],
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "history-system"},
                ],
                "operation": [{"name": "import-records", "definition": IMPORT_RECORDS_OPERATION}],
            }
        ],
    }


def _resource(
    type_name: str,
    interactions: tuple[str, ...],
    update_create: bool,
    params: dict[str, SearchParam],
    profiles: tuple[str, ...],
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
    resource: dict[str, Any] = {"type": type_name}
    if profiles:
        resource["supportedProfile"] = list(profiles)
    return resource | {
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
        "operation": [{"name": "validate", "definition": VALIDATE_OPERATION}],
    }


def supported_profiles(profiles_dir: str | Path) -> dict[str, tuple[str, ...]]:
    """The canonical URLs of the profiles in ``profiles_dir``, by the resource type they
    constrain (StructureDefinitions of kind ``resource``, derivation ``constraint``)."""
    return _profiles_in(str(Path(profiles_dir).resolve()))


@cache
def _profiles_in(folder: str) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    if Path(folder).is_dir():
        for _path, definition in resources_in(folder, prefix="StructureDefinition-"):
            if (
                definition.get("kind") == "resource"
                and definition.get("derivation") == "constraint"
                and isinstance(definition.get("url"), str)
            ):
                found.setdefault(str(definition.get("type")), []).append(definition["url"])
    return {type_name: tuple(sorted(urls)) for type_name, urls in found.items()}


def _search_param(code: str, param: SearchParam) -> dict[str, Any]:
    entry = {"name": code, "type": param.type}
    if param.url:
        entry["definition"] = param.url
    if param.description:
        entry["documentation"] = param.description
    return entry
