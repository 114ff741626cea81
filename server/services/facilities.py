"""Facility-bound access: which Organization a resource belongs to, and whether a caller may
touch it (docs/security.md#facilities).

A resource belongs to the Organization it names (serviceProvider, managingOrganization,
organization, an Organization performer), else to the owner of the Encounter it hangs on, else
to the facility of the client that created it.  A bound caller reads and writes only resources
of the Organizations its binding covers; searches get that rule as a SQL condition
(``InScope``), so counts and pages never see the rest.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from server.errors import Forbidden
from server.fhir.registry import SYNCED_TYPES
from server.services.access import UNRESTRICTED, Caller
from server.storage.repository import StoredResource
from server.storage.scope import Binding, is_visible
from server.storage.search.criteria import Chain, Condition, Has, InScope, Query
from server.storage.uow import UnitOfWork

# One element naming the owner outright.
_OWNER_ELEMENT = {
    "Encounter": "serviceProvider",
    "EpisodeOfCare": "managingOrganization",
    "Location": "managingOrganization",
    "Patient": "managingOrganization",
    "PractitionerRole": "organization",
}
# Elements that may hold an Organization performer, then the Encounter hung on.
_PERFORMER = ("performer", "recorder", "asserter", "author")
_ENCOUNTER = ("encounter", "context")
# Conformance resources belong to nobody: any client may read them, only unbound ones write.
SHARED_TYPES = frozenset({"StructureDefinition", "ValueSet", "CodeSystem", "SearchParameter"})


def caller_of(uow: UnitOfWork) -> Caller:
    """The caller a unit of work was opened for (unrestricted for the CLI and the sync worker)."""
    return uow.caller if isinstance(uow.caller, Caller) else UNRESTRICTED


def owner(uow: UnitOfWork, resource_type: str, res_id: str, body: dict[str, Any]) -> str | None:
    """The Organization ``body`` belongs to by its content (None if it names none)."""
    if resource_type == "Organization":
        return res_id
    named = _organization(body.get(_OWNER_ELEMENT.get(resource_type, "")))
    if named is not None or resource_type not in SYNCED_TYPES:
        return named
    for element in _PERFORMER:
        for item in _as_list(body.get(element)):
            found = _organization(item) or _organization(_get(item, "actor"))
            if found is not None:
                return found
    for element in _ENCOUNTER:
        target = _reference(body.get(element))
        if target is not None and target.startswith("Encounter/"):
            encounter = uow.store.current("Encounter", target.removeprefix("Encounter/")[:64])
            if encounter is not None:
                return encounter.org_scope
    return None


def check_read(uow: UnitOfWork, stored: StoredResource) -> None:
    """Forbidden unless the caller may read ``stored`` (scope, then facility)."""
    caller = caller_of(uow)
    caller.require(stored.res_type, "r")
    if caller.bound and stored.res_type not in SHARED_TYPES and not _visible(uow, stored):
        raise Forbidden(
            f"{stored.res_type}/{stored.res_id} belongs to a facility this client is not bound to"
        )


def check_past(uow: UnitOfWork, resource_type: str, res_id: str) -> None:
    """Forbidden unless the caller may read the resource now: who may see it now may see its
    versions (vread, instance history).  Nothing to read for an unbound caller."""
    if caller_of(uow).bound:
        current = uow.store.current(resource_type, res_id)
        if current is not None:
            check_read(uow, current)


def owner_for_write(
    uow: UnitOfWork,
    resource_type: str,
    res_id: str,
    body: dict[str, Any],
    current: StoredResource | None,
) -> str | None:
    """The owner to store with a new version of ``body``; Forbidden when the caller may not
    write it (outside its facilities, before or after the change)."""
    derived = owner(uow, resource_type, res_id, body)
    kept = derived or (current.org_scope if current is not None else None)
    caller = caller_of(uow)
    if not caller.bound:
        return kept
    if resource_type in SHARED_TYPES:
        raise Forbidden(f"Only clients bound to no facility may write {resource_type}")
    if current is not None and not current.deleted and not _visible(uow, current):
        raise Forbidden(
            f"{resource_type}/{res_id} belongs to a facility this client is not bound to"
        )
    assert caller.binding is not None
    result = kept or caller.binding.organization
    if result is None:
        raise Forbidden(
            f"{resource_type}/{res_id} names no Organization; a client bound to a region must "
            "say which facility a resource belongs to"
        )
    candidates = [result]
    if resource_type == "Organization":  # a new one hangs below one the client may see
        candidates.append(_organization(body.get("partOf")) or result)
    if not any(_sees(uow, caller, candidate) for candidate in candidates):
        raise Forbidden(
            f"{resource_type}/{res_id} would belong to Organization/{result}, outside the "
            "facilities this client is bound to"
        )
    return result


def check_delete(uow: UnitOfWork, current: StoredResource) -> None:
    """Forbidden unless ``current`` belongs to the caller's facilities (the scope is checked
    by ``resources.delete``)."""
    caller = caller_of(uow)
    if caller.bound and (current.res_type in SHARED_TYPES or not _visible(uow, current)):
        raise Forbidden(
            f"{current.res_type}/{current.res_id} belongs to a facility this client is not bound to"
        )


def scoped_query(uow: UnitOfWork, query: Query) -> Query:
    """``query`` limited, chains and ``_has`` included, to what the caller may see."""
    caller = caller_of(uow)
    if caller.binding is None:
        return query
    return replace(query, conditions=_scoped(query.resource_type, query.conditions, caller))


def binding_for(caller: Caller, resource_type: str) -> Binding | None:
    """The binding that limits what ``caller`` sees of ``resource_type`` (None: all of it)."""
    return None if resource_type in SHARED_TYPES else caller.binding


def _scoped(
    resource_type: str, conditions: tuple[Condition, ...], caller: Caller
) -> tuple[Condition, ...]:
    assert caller.binding is not None
    nested = tuple(
        replace(c, inner=_scoped(_inner_type(c), c.inner, caller))
        if isinstance(c, Chain | Has)
        else c
        for c in conditions
    )
    if resource_type in SHARED_TYPES:
        return nested
    return (*nested, InScope(caller.binding))


def _inner_type(condition: Chain | Has) -> str:
    if isinstance(condition, Has):
        return condition.source_type
    return condition.target_types[0] if len(condition.target_types) == 1 else ""


def _visible(uow: UnitOfWork, stored: StoredResource) -> bool:
    return stored.org_scope is not None and _sees(uow, caller_of(uow), stored.org_scope)


def _sees(uow: UnitOfWork, caller: Caller, organization: str) -> bool:
    assert caller.binding is not None
    seen: set[str] = uow.memo.setdefault("visible_organizations", set())
    if organization in seen:
        return True
    uow.store.flush()  # partOf rows of Organizations written earlier in this transaction
    if not is_visible(uow.connection, caller.binding, organization):
        return False  # not kept: an Organization written later in this transaction may fix it
    seen.add(organization)
    return True


def _organization(value: Any) -> str | None:
    target = _reference(value)
    if target is not None and target.startswith("Organization/"):
        return target.removeprefix("Organization/")[:64]
    return None


def _reference(value: Any) -> str | None:
    target = _get(value, "reference")
    return target if isinstance(target, str) else None


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value is not None else []
