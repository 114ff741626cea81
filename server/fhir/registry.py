"""Supported resource types and their interactions: one line per type.

The CapabilityStatement, routing checks and the conformance tests all read this
table, so adding a type here is the whole change.
"""

from __future__ import annotations

from dataclasses import dataclass

INSTANCE_INTERACTIONS = ("read", "vread", "update", "patch", "delete", "history-instance")
TYPE_INTERACTIONS = ("create", "search-type", "history-type")
ALL_INTERACTIONS = INSTANCE_INTERACTIONS + TYPE_INTERACTIONS
# the audit trail is written by the server alone (services/audit.py) and never changed
READ_ONLY = ("read", "vread", "history-instance", "search-type", "history-type")


@dataclass(frozen=True)
class ResourceSupport:
    type: str
    interactions: tuple[str, ...] = ALL_INTERACTIONS
    # forwarded upstream by ``ilp sync``; conformance resources and the local audit trail stay
    synced: bool = True


SUPPORTED: dict[str, ResourceSupport] = {
    support.type: support
    for support in (
        ResourceSupport("Organization"),
        ResourceSupport("Location"),
        ResourceSupport("Patient"),
        ResourceSupport("Practitioner"),
        ResourceSupport("PractitionerRole"),
        ResourceSupport("Encounter"),
        ResourceSupport("EpisodeOfCare"),
        ResourceSupport("Observation"),
        ResourceSupport("Condition"),
        ResourceSupport("Procedure"),
        ResourceSupport("Immunization"),
        ResourceSupport("MedicationAdministration"),
        ResourceSupport("MedicationDispense"),
        ResourceSupport("QuestionnaireResponse"),
        ResourceSupport("AuditEvent", READ_ONLY, synced=False),
        ResourceSupport("Provenance"),
        ResourceSupport("Bundle", synced=False),
        ResourceSupport("StructureDefinition", synced=False),
        ResourceSupport("ValueSet", synced=False),
        ResourceSupport("CodeSystem", synced=False),
        ResourceSupport("SearchParameter", synced=False),
    )
}


SYNCED_TYPES = frozenset(t for t, support in SUPPORTED.items() if support.synced)


def supports(resource_type: str, interaction: str) -> bool:
    support = SUPPORTED.get(resource_type)
    return support is not None and interaction in support.interactions
