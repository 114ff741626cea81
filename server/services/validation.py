"""Validation of incoming resources before any write.

Today: parsing and structural validation against the base R4 specification
(``fhir/structure.py``).  Profile validation against ``profiles/`` joins here.
"""

from __future__ import annotations

from typing import Any

from server.errors import InvalidRequest, InvalidResource
from server.fhir import jsonio
from server.fhir.structure import check_resource


def parse_json(raw: bytes) -> Any:
    """Decode a request body; InvalidRequest when it is not JSON."""
    if not raw.strip():
        raise InvalidRequest("The request body is empty; a FHIR JSON resource was expected")
    try:
        return jsonio.loads(raw)
    except jsonio.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None


def parse_resource(raw: bytes, expected_type: str) -> dict[str, Any]:
    """Decode and structurally validate a resource of ``expected_type``.

    Raises InvalidRequest for bad JSON or a type mismatch, InvalidResource with one
    issue per problem (each with its FHIRPath) for structural errors.
    """
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object (a FHIR resource)")
    actual = data.get("resourceType")
    if actual != expected_type:
        raise InvalidRequest(
            f"resourceType {actual!r} does not match the type in the URL, {expected_type!r}",
            "resourceType",
        )
    check_structure(data)
    return data


def check_structure(data: dict[str, Any]) -> None:
    """Raise InvalidResource listing every structural issue of ``data``."""
    issues = check_resource(data)
    if issues:
        raise InvalidResource(issues[0].diagnostics, issues=issues)
