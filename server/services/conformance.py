"""Loading a FHIR package (the ILP profiles) into the server as conformance resources.

Each resource is stored under its own id with an update, so loading twice
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from server.errors import InvalidRequest
from server.fhir.packages import resources_in
from server.services import resources
from server.services.context import ServiceContext
from server.services.validation import check_structure


@dataclass(frozen=True)
class LoadReport:
    stored: int
    unchanged: int


def load_package(context: ServiceContext, folder: str | Path) -> LoadReport:
    """Validate and store every resource of ``folder`` in one transaction."""
    if not (Path(folder) / "package.json").exists():
        raise InvalidRequest(f"{folder} is not a FHIR package (no package.json)")
    stored = unchanged = 0
    with context.unit_of_work(write=True) as uow:
        for path, resource in resources_in(folder):
            if "id" not in resource:
                raise InvalidRequest(f"{path.name}: a package resource needs an id")
            check_structure(resource)
            result = resources.update(
                uow,
                resource["resourceType"],
                resource["id"],
                resource,
                options=context.write_options,
            )
            stored, unchanged = (
                (stored + 1, unchanged) if result.changed else (stored, unchanged + 1)
            )
    return LoadReport(stored, unchanged)
