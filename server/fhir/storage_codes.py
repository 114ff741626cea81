"""HAPI FHIR's storage response codes: how a transaction-response entry says that a write
stored nothing new (``response.outcome``), which its ``200 OK`` alone cannot.  The server
writes them (services/bundles/response.py) and the importer reads them (mappers/importing.py).
"""

from __future__ import annotations

SYSTEM = "https://hapifhir.io/fhir/CodeSystem/hapi-fhir-storage-response-code"
NO_CHANGE = frozenset(
    {
        "SUCCESSFUL_CREATE_WITH_CONDITIONAL_MATCH",
        "SUCCESSFUL_UPDATE_NO_CHANGE",
        "SUCCESSFUL_UPDATE_WITH_CONDITIONAL_MATCH_NO_CHANGE",
        "SUCCESSFUL_PATCH_NO_CHANGE",
        "SUCCESSFUL_CONDITIONAL_PATCH_NO_CHANGE",
    }
)
