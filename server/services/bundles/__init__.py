"""Batch and transaction Bundles posted to the base URL (``POST /fhir``).

``entries`` reads and checks every entry before any work (limits, request, resource);
``links`` resolves the links between a transaction's entries; ``processor`` runs the
entries through ``services.resources``; ``response`` builds the answer Bundle.
See https://hl7.org/fhir/R4/http.html#transaction.
"""

from __future__ import annotations

from typing import Any

from server.config import Settings
from server.services.bundles import entries
from server.services.bundles.processor import BundleProcessor
from server.services.context import ServiceContext


def parse_bundle(raw: bytes, settings: Settings) -> dict[str, Any]:
    """Decode a posted Bundle within the configured limits.

    PayloadTooLarge (413) beyond ILP_MAX_BUNDLE_BYTES or ILP_MAX_BUNDLE_ENTRIES;
    InvalidRequest (400) for bad JSON, a nesting deeper than ILP_MAX_BUNDLE_DEPTH, or a
    Bundle that is not a batch or transaction.
    """
    limits = entries.BundleLimits(
        settings.max_bundle_entries, settings.max_bundle_bytes, settings.max_bundle_depth
    )
    return entries.parse_bundle(raw, limits, settings.fhir_base)


def process(
    ctx: ServiceContext, bundle: dict[str, Any], *, prefer: str = "representation"
) -> dict[str, Any]:
    """The batch-response or transaction-response Bundle for a Bundle from ``parse_bundle``.

    A failed transaction stores nothing and raises the FhirError of the failing entry,
    its expressions naming that entry (``Bundle.entry[3].request.url``); a batch reports
    each entry's failure in its response entry.  ``prefer`` is the ``Prefer: return=``
    choice (representation, minimal, OperationOutcome) for written resources.
    """
    return BundleProcessor(ctx, bundle, prefer=prefer).run()
