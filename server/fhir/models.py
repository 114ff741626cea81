"""The only importer of ``fhir.resources``: R4B pydantic models by type name.

R4B models are wire-compatible with the R4 (4.0.1) resources this server holds.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import BaseModel, ValidationError

__all__ = ["ValidationError", "model_for", "validate"]


@cache
def model_for(type_name: str) -> type[BaseModel]:
    """The pydantic model of a resource, datatype or backbone element; ValueError if unknown."""
    return get_fhir_model_class(type_name)


def validate(resource_type: str, data: dict[str, Any]) -> None:
    """Parse ``data`` with the R4B model; raises pydantic ``ValidationError``."""
    model_for(resource_type).model_validate(data)
