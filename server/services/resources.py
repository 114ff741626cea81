"""The RESTful interactions on single resources, written once for HTTP and bundles.

create, read, vread, update, patch, delete and their conditional forms
(https://hl7.org/fhir/R4/http.html).  Functions take a UnitOfWork and plain
values and return a ``WriteResult`` or a ``StoredResource``; they raise
FhirError subclasses and know nothing of Flask.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import jsonpatch

from server.errors import (
    Gone,
    InvalidRequest,
    Issue,
    MethodNotAllowed,
    MultipleMatches,
    NotFound,
    PreconditionFailed,
    UnprocessableEntity,
    VersionConflict,
)
from server.fhir.integers import INTEGER_MAX, parse_unsigned
from server.fhir.registry import SUPPORTED, supports
from server.services import audit, facilities
from server.services.facilities import caller_of
from server.services.indicators import recorder
from server.services.search.execute import active_params, match_ids
from server.services.search.parse import RESULT_PARAMETERS, parse_search
from server.services.validation import check_structure
from server.services.versions import format_instant as format_instant  # re-exported
from server.services.versions import new_version, now
from server.storage.repository import DuplicateResource, NewVersion, StaleVersion
from server.storage.repository import StoredResource as StoredResource  # re-exported for HTTP
from server.storage.uow import UnitOfWork


@dataclass(frozen=True)
class WriteOptions:
    """Server policy for writes, taken from Settings."""

    allow_update_create: bool = True


@dataclass(frozen=True)
class WriteResult:
    stored: StoredResource
    created: bool = False
    changed: bool = True
    issues: tuple[Issue, ...] = ()  # warnings of the profile check, when it ran here


def require_type(resource_type: str, interaction: str) -> None:
    """NotFound for a type this server does not hold; MethodNotAllowed for an interaction."""
    if resource_type not in SUPPORTED:
        raise NotFound(
            f"Resource type {resource_type!r} is not supported by this server; "
            "GET /fhir/metadata lists the supported types"
        )
    if not supports(resource_type, interaction):
        raise MethodNotAllowed(f"{interaction} is not supported for {resource_type}")


def read(uow: UnitOfWork, resource_type: str, res_id: str) -> StoredResource:
    """The current version; NotFound if it never existed, Gone if deleted."""
    require_type(resource_type, "read")
    caller_of(uow).require(resource_type, "r")
    stored = uow.store.current(resource_type, res_id)
    if stored is None:
        raise NotFound(f"{resource_type}/{res_id} is not known")
    facilities.check_read(uow, stored)
    if stored.deleted:
        raise Gone(f"{resource_type}/{res_id} was deleted", headers=_etag_headers(stored))
    return stored


def vread(uow: UnitOfWork, resource_type: str, res_id: str, version_id: str) -> StoredResource:
    """One version; NotFound if absent, Gone if that version is a deletion."""
    require_type(resource_type, "vread")
    caller_of(uow).require(resource_type, "r")
    version = parse_unsigned(version_id, INTEGER_MAX)
    if version is None:
        raise NotFound(f"{resource_type}/{res_id} has no version {version_id!r}")
    stored = uow.store.version(resource_type, res_id, version)
    if stored is None:
        raise NotFound(f"{resource_type}/{res_id} has no version {version_id}")
    facilities.check_past(uow, resource_type, res_id)
    if stored.deleted:
        raise Gone(f"Version {version_id} of {resource_type}/{res_id} is a deletion")
    return stored


def create(
    uow: UnitOfWork,
    resource_type: str,
    resource: dict[str, Any],
    *,
    if_none_exist: str | None = None,
    res_id: str | None = None,
) -> WriteResult:
    """Store a new resource under a server-assigned id (any id in the body is ignored).

    With ``if_none_exist`` (a search query) an existing match is returned instead;
    MultipleMatches if the query matches more than one resource.  ``res_id`` is the
    id to assign, when the caller (a transaction) had to know it before the write.
    """
    require_type(resource_type, "create")
    caller_of(uow).require(resource_type, "c")
    if if_none_exist:
        found = matching_ids(uow, resource_type, _query_pairs(if_none_exist))
        if len(found) > 1:
            raise MultipleMatches(f"If-None-Exist matched more than one {resource_type}")
        if found:
            return WriteResult(read(uow, resource_type, found[0]), created=False, changed=False)
    return _write_new(uow, resource_type, res_id or str(uuid.uuid4()), resource, "POST")


def update(
    uow: UnitOfWork,
    resource_type: str,
    res_id: str,
    resource: dict[str, Any],
    *,
    if_match: int | None = None,
    options: WriteOptions = WriteOptions(),
) -> WriteResult:
    """Replace the resource ``res_id`` (or create it, when policy allows).

    InvalidRequest if the body's id differs from ``res_id``; PreconditionFailed when
    ``if_match`` is not the current version; VersionConflict on a concurrent write.
    An update whose content equals the current version stores nothing.
    """
    require_type(resource_type, "update")
    body_id = resource.get("id")
    if body_id is None:
        raise InvalidRequest("The resource in an update must have an id", f"{resource_type}.id")
    if body_id != res_id:
        raise InvalidRequest(
            f"The id in the body ({body_id!r}) differs from the id in the URL ({res_id!r})",
            f"{resource_type}.id",
        )
    current = uow.store.current(resource_type, res_id, for_update=True)
    caller_of(uow).require(resource_type, "u" if current is not None else "c")
    if current is None:
        if if_match is not None:
            raise PreconditionFailed(f"{resource_type}/{res_id} does not exist; If-Match failed")
        if not options.allow_update_create:
            raise MethodNotAllowed(
                f"{resource_type}/{res_id} does not exist and this server does not create "
                "resources on update (ILP_ALLOW_UPDATE_CREATE=false); use POST"
            )
        return _write_new(uow, resource_type, res_id, resource, "PUT")
    if if_match is not None and if_match != current.version_id:
        raise PreconditionFailed(
            f"If-Match names version {if_match} but the current version is {current.version_id}"
        )
    return _write_next(uow, current, resource, "PUT")


def conditional_update(
    uow: UnitOfWork,
    resource_type: str,
    params: Sequence[tuple[str, str]],
    resource: dict[str, Any],
    *,
    if_match: int | None = None,
    options: WriteOptions = WriteOptions(),
) -> WriteResult:
    """Update the one resource matching ``params``, or create it when none does."""
    found = matching_ids(uow, resource_type, params)
    if len(found) > 1:
        raise MultipleMatches(f"The conditional update matched more than one {resource_type}")
    if found:
        if "id" in resource and resource["id"] != found[0]:
            raise InvalidRequest(
                f"The id in the body differs from the matched resource {found[0]!r}",
                f"{resource_type}.id",
            )
        return update(
            uow,
            resource_type,
            found[0],
            {**resource, "id": found[0]},
            if_match=if_match,
            options=options,
        )
    if "id" in resource:
        return update(
            uow, resource_type, resource["id"], resource, if_match=if_match, options=options
        )
    return create(uow, resource_type, resource)


def patch(
    uow: UnitOfWork,
    resource_type: str,
    res_id: str,
    operations: Any,
    *,
    if_match: int | None = None,
    check: Callable[[dict[str, Any]], list[Issue]] | None = None,
) -> WriteResult:
    """Apply a JSON Patch (RFC 6902) to the current version and store the result.

    UnprocessableEntity when the patch does not apply or changes id/resourceType;
    InvalidResource when the patched resource is not valid; whatever ``check`` (the
    profile check) raises for the patched resource, whose warnings the result carries.
    """
    require_type(resource_type, "patch")
    caller_of(uow).require(resource_type, "u")
    if not isinstance(operations, list):
        raise InvalidRequest("A JSON Patch document must be a JSON array of operations")
    current = read(uow, resource_type, res_id)
    if if_match is not None and if_match != current.version_id:
        raise PreconditionFailed(
            f"If-Match names version {if_match} but the current version is {current.version_id}"
        )
    try:
        patched = jsonpatch.JsonPatch(operations).apply(current.content)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as exc:
        raise UnprocessableEntity(f"The JSON Patch cannot be applied: {exc}") from None
    if not isinstance(patched, dict):  # an operation on the root path "" replaced the resource
        raise UnprocessableEntity(
            "A patch must leave a resource (a JSON object), not replace it", resource_type
        )
    if patched.get("resourceType") != resource_type or patched.get("id") != res_id:
        raise UnprocessableEntity("A patch must not change resourceType or id")
    check_structure(patched)
    warnings = tuple(check(patched)) if check is not None else ()
    result = _write_next(uow, current, patched, "PATCH")
    return WriteResult(result.stored, result.created, result.changed, warnings)


def delete(uow: UnitOfWork, resource_type: str, res_id: str) -> StoredResource | None:
    """Soft-delete: a tombstone version; reading it later answers 410 Gone.

    Deleting something absent or already deleted changes nothing (returns None).
    """
    require_type(resource_type, "delete")
    caller_of(uow).require(resource_type, "d")
    current = uow.store.current(resource_type, res_id, for_update=True)
    if current is None or current.deleted:
        return None
    facilities.check_delete(uow, current)
    tombstone = _tombstone(current)
    try:
        uow.store.replace(tombstone, current.version_id)
    except StaleVersion:
        raise VersionConflict(f"{resource_type}/{res_id} was changed concurrently") from None
    _wrote(uow, "D", tombstone)
    return StoredResource(
        resource_type, res_id, tombstone.version_id, tombstone.last_updated, True, None, "DELETE"
    )


def put_derived(uow: UnitOfWork, resource: dict[str, Any]) -> None:
    """Store a resource the server derives from others (the z-scores of a measurement).

    No scope or facility check: the caller was allowed the write it follows from, and the
    derived resource belongs where its content says, as any other.  Audited and synced.
    """
    resource_type, res_id = resource["resourceType"], resource["id"]
    current = uow.store.current(resource_type, res_id, for_update=True)
    scope = facilities.owner(uow, resource_type, res_id, resource)
    if current is None:
        new = new_version(resource_type, res_id, 1, resource, "PUT", scope)
        uow.store.insert(new)
        _wrote(uow, "C", new)
        return
    new = new_version(resource_type, res_id, current.version_id + 1, resource, "PUT", scope)
    if current.deleted or new.content_hash != current.content_hash:
        uow.store.replace(new, current.version_id)
        _wrote(uow, "C" if current.deleted else "U", new)


def delete_derived(uow: UnitOfWork, resource_type: str, res_id: str) -> None:
    """Delete a derived resource that no longer follows from its sources (if it exists)."""
    current = uow.store.current(resource_type, res_id, for_update=True)
    if current is not None and not current.deleted:
        tombstone = _tombstone(current)
        uow.store.replace(tombstone, current.version_id)
        _wrote(uow, "D", tombstone)


def _tombstone(current: StoredResource) -> NewVersion:
    return NewVersion(
        current.res_type,
        current.res_id,
        current.version_id + 1,
        now(),
        "DELETE",
        None,
        None,
        current.org_scope,
    )


def conditional_delete(
    uow: UnitOfWork, resource_type: str, params: Sequence[tuple[str, str]]
) -> StoredResource | None:
    """Delete the one resource matching ``params``; MultipleMatches if several do."""
    found = matching_ids(uow, resource_type, params)
    if len(found) > 1:
        raise MultipleMatches(f"The conditional delete matched more than one {resource_type}")
    return delete(uow, resource_type, found[0]) if found else None


def matching_ids(
    uow: UnitOfWork, resource_type: str, params: Sequence[tuple[str, str]]
) -> list[str]:
    """Ids of up to two resources matching a conditional query (0, 1 or "several")."""
    criteria = [(k, v) for k, v in params if k.split(":")[0] not in RESULT_PARAMETERS]
    if not criteria:
        raise InvalidRequest("A conditional interaction needs at least one search parameter")
    request = parse_search(
        resource_type, criteria, active_params(uow), default_count=2, max_count=2
    )
    # Two writers checking the same condition take turns, so neither misses the other's
    # resource (SQLite serialises writers already; PostgreSQL needs the lock).
    uow.lock(f"{resource_type}?{sorted(criteria)}")
    return match_ids(uow, facilities.scoped_query(uow, request.query))


def _query_pairs(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query.split("?", 1)[-1], keep_blank_values=True)


def _write_new(
    uow: UnitOfWork, resource_type: str, res_id: str, resource: dict[str, Any], method: str
) -> WriteResult:
    scope = facilities.owner_for_write(uow, resource_type, res_id, resource, None)
    new = new_version(resource_type, res_id, 1, resource, method, scope)
    try:
        uow.store.insert(new)
    except DuplicateResource:
        raise VersionConflict(f"{resource_type}/{res_id} was created concurrently") from None
    _wrote(uow, "C", new)
    return WriteResult(_stored(new), created=True)


def _write_next(
    uow: UnitOfWork, current: StoredResource, resource: dict[str, Any], method: str
) -> WriteResult:
    scope = facilities.owner_for_write(uow, current.res_type, current.res_id, resource, current)
    version = current.version_id + 1
    new = new_version(current.res_type, current.res_id, version, resource, method, scope)
    if not current.deleted and new.content_hash == current.content_hash:
        return WriteResult(current, created=False, changed=False)
    try:
        uow.store.replace(new, current.version_id)
    except StaleVersion:
        raise VersionConflict(
            f"{current.res_type}/{current.res_id} was changed concurrently; read it and retry"
        ) from None
    _wrote(uow, "C" if current.deleted else "U", new)
    return WriteResult(_stored(new), created=current.deleted)


def _wrote(uow: UnitOfWork, action: str, new: NewVersion) -> None:
    # The indicators first: their before-commit step derives resources the audit must list.
    recorder.wrote(uow, new.res_type, new.res_id, new.content, new.org_scope)
    audit.wrote(uow, action, new.res_type, new.res_id, new.version_id)


def _stored(new: NewVersion) -> StoredResource:
    return StoredResource(
        new.res_type,
        new.res_id,
        new.version_id,
        new.last_updated,
        new.deleted,
        new.content,
        new.method,
    )


def _etag_headers(stored: StoredResource) -> dict[str, str]:
    return {"ETag": f'W/"{stored.version_id}"'}
