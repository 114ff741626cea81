"""What every mapper offers, and the error that names a row and a field.

A mapper turns one record (a dict already checked against its JSON Schema) into entries of a
FHIR transaction Bundle (https://hl7.org/fhir/R4/http.html#transaction).  Entries are
conditional on business identifiers (NIK, facility code), so importing a file twice changes
nothing and a corrected row updates the resource it made before.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

Record = dict[str, Any]
Entry = dict[str, Any]

SCHEMAS = Path(__file__).resolve().parent / "schemas"


class RecordError(Exception):
    """A row that cannot be imported: its row number (0 until known), the field and why."""

    def __init__(self, row: int, field: str, message: str) -> None:
        super().__init__(row, field, message)
        self.row = row
        self.field = field
        self.message = message

    def at(self, row: int) -> RecordError:
        """The same error, placed at ``row``."""
        return RecordError(row, self.field, self.message)

    def __str__(self) -> str:
        return f"row {self.row}, {self.field or 'record'}: {self.message}"


class Mapper(Protocol):
    """A record format: its name, JSON Schema, import order and mapping to entries."""

    @property
    def name(self) -> str: ...

    @property
    def schema_path(self) -> Path: ...

    # Optionally, ``shared``: resource types that several rows may give alike (the kader of a
    # Posyandu sheet); the importer writes each once per Bundle instead of refusing the rows.

    def rank(self, record: Record) -> int:
        """Import order: records of a lower rank go first (parents before children)."""
        ...

    def map(self, record: Record) -> list[Entry]:
        """The transaction entries of one validated record; RecordError when impossible."""
        ...


def indonesia_today() -> date:
    """Today's date where it is latest in Indonesia (WIT, +09:00): a morning visit in Papua is
    dated a day ahead of UTC, and must not be refused as "in the future" by a UTC server."""
    return datetime.now(timezone(timedelta(hours=9))).date()


def criteria(system: str, value: str) -> str:
    """The search criteria that find a resource by one identifier.

    The value is escaped for FHIR search (``\\`` before ``\\ , | $``: a kader named "Hj.
    Rohani, S.Pd" is one value, not two) and then for the URL (a visit number such as
    ``001/XI/2026`` or a name with spaces).
    """
    escaped = re.sub(r"([\\,|$])", r"\\\1", value)
    return f"identifier={system}|{quote(escaped, safe=':')}"


def identifier_criteria(resource: dict[str, Any]) -> str:
    """The criteria on the resource's first identifier (the one the mapper made)."""
    identifier = resource["identifier"][0]
    return criteria(identifier["system"], identifier["value"])


def conditional_reference(resource_type: str, query: str) -> dict[str, str]:
    """A conditional reference, resolved by the server inside the transaction."""
    return {"reference": f"{resource_type}?{query}"}


def full_url(resource_type: str, query: str) -> str:
    """A ``urn:uuid`` derived from the criteria, so the same row always gives the same Bundle."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{resource_type}?{query}')}"


def conditional_create(resource: dict[str, Any], query: str) -> Entry:
    """A ``POST`` entry with ``ifNoneExist``: create it unless one matches, never overwrite.

    For the people sheets only name (a kader, a nakes): what another import or system keeps
    about them (a phone, a qualification) must not be replaced by a sheet's few fields.
    """
    resource_type = resource["resourceType"]
    return {
        "fullUrl": full_url(resource_type, query),
        "resource": resource,
        "request": {"method": "POST", "url": resource_type, "ifNoneExist": query},
    }


def entry_key(entry: Entry) -> str:
    """What an entry writes: ``Type?criteria`` of its conditional update or create."""
    request = entry["request"]
    criteria = request.get("ifNoneExist")
    return f"{request['url']}?{criteria}" if criteria else str(request["url"])


def conditional_update(resource: dict[str, Any], query: str) -> Entry:
    """A ``PUT Type?query`` entry: update the one match, or create it."""
    resource_type = resource["resourceType"]
    return {
        "fullUrl": full_url(resource_type, query),
        "resource": resource,
        "request": {"method": "PUT", "url": f"{resource_type}?{query}"},
    }
