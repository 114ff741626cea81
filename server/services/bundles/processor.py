"""BundleProcessor: runs the entries of a batch or transaction through ``services.resources``.

A transaction is one unit of work, all or nothing, processed DELETE, POST, PUT/PATCH,
GET/HEAD (http.html#trules).  Ids are settled before any body is written: POSTs get
theirs up front and conditional updates are matched first, so links can be rewritten
before each write.  A conditional create (``ifNoneExist``) is the exception: its id is
known only once ``resources.create`` has looked for a match, so it runs as soon as an
entry refers to it.  A batch runs one unit of work per entry, in the same order.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from server.errors import (
    FhirError,
    InvalidRequest,
    Issue,
    MultipleMatches,
    PreconditionFailed,
    VersionConflict,
)
from server.services import history as history_service
from server.services import resources
from server.services.bundles.entries import ORDER, Entry, locate, read_entries
from server.services.bundles.links import EntryLinks
from server.services.bundles.response import Outcome, response_bundle
from server.services.capability import capability_statement
from server.services.context import ServiceContext
from server.services.search import search_bundle
from server.storage.uow import UnitOfWork

T = TypeVar("T")


class _EntryFailed(Exception):
    """An entry failed; carries its located error past the entries that were waiting on it."""

    def __init__(self, error: FhirError) -> None:
        super().__init__(str(error))
        self.error = error


class BundleProcessor:
    """Runs the entries of one batch or transaction Bundle; call ``run`` once.

    Raises (from the constructor) the located FhirError of a transaction entry that
    cannot be read or breaks a profile it must meet, and any FhirError of the Bundle itself.
    """

    def __init__(self, ctx: ServiceContext, bundle: dict[str, Any], *, prefer: str) -> None:
        self._ctx, self._prefer = ctx, prefer
        self._base = ctx.settings.fhir_base
        self._transaction = bundle.get("type") == "transaction"
        self._entries = read_entries(bundle, self._base, transaction=self._transaction)
        self._links = EntryLinks(self._entries, self._base, self._identity)
        self._ids: dict[int, str] = {}  # entry index -> id it writes (or deletes, or reads)
        for entry in self._entries:
            if entry.method == "POST" or entry.res_id is not None:
                self._ids[entry.index] = entry.res_id or str(uuid.uuid4())
        self._matched: set[int] = set()  # conditional updates that found their resource
        self._running: set[int] = set()  # conditional creates under way (cycle guard)
        self._provisional: set[int] = set()  # ... whose planned id another entry took early
        self._changed: dict[tuple[str, str], int] = {}
        self._outcomes: dict[int, Outcome] = {}
        self._warnings: dict[int, tuple[Issue, ...]] = {}
        self._check_profiles()

    def _check_profiles(self) -> None:
        """Profile-check every resource before any work, outside the unit of work."""
        validation = self._ctx.validation
        if not validation.on_write:
            return
        for entry in self._entries:
            if entry.resource is None or entry.error is not None:
                continue
            try:
                self._warnings[entry.index] = tuple(validation.check_write(entry.resource))
            except FhirError as error:
                located = locate(error, entry, ".resource")
                if self._transaction:
                    raise located from None
                entry.error = located

    def run(self) -> dict[str, Any]:
        """The response Bundle; raises the located FhirError of a failed transaction."""
        if self._transaction:
            self._run_transaction()
        else:
            self._run_batch()
        kind = "transaction-response" if self._transaction else "batch-response"
        return response_bundle(self._base, kind, self._entries, self._outcomes, self._prefer)

    def _run_transaction(self) -> None:
        def phase(*methods: str) -> list[Entry]:
            return [e for e in self._entries if e.method in methods]

        try:
            with self._ctx.unit_of_work(write=True) as uow:
                for entry in phase("DELETE"):
                    self._step(uow, entry)
                for entry in phase("PUT"):  # before POSTs, whose bodies may link to them
                    if entry.interaction == "conditional-update":
                        self._guarded(entry, lambda e: self._match_update(uow, e))
                for methods in (("POST",), ("PUT", "PATCH"), ("GET", "HEAD")):
                    for entry in phase(*methods):
                        if entry.index not in self._outcomes:  # a conditional create ran early
                            self._step(uow, entry)
        except _EntryFailed as failed:
            raise failed.error from None

    def _run_batch(self) -> None:
        for entry in sorted(self._entries, key=lambda e: ORDER.get(e.method, 0)):
            if entry.error is not None:
                self._outcomes[entry.index] = Outcome(entry.error.status, error=entry.error)
                continue
            try:
                with self._ctx.unit_of_work(write=entry.method not in ("GET", "HEAD")) as uow:
                    if entry.interaction == "conditional-update":
                        self._guarded(entry, lambda e: self._match_update(uow, e))
                    self._step(uow, entry)
            except _EntryFailed as failed:
                self._outcomes[entry.index] = Outcome(failed.error.status, error=failed.error)

    def _step(self, uow: UnitOfWork, entry: Entry) -> None:
        self._outcomes[entry.index] = self._guarded(entry, lambda e: self._execute(uow, e))

    def _guarded(self, entry: Entry, action: Callable[[Entry], T]) -> T:
        try:
            return action(entry)
        except FhirError as error:
            raise _EntryFailed(locate(error, entry, _element_of(error, entry))) from None

    def _execute(self, uow: UnitOfWork, entry: Entry) -> Outcome:
        if entry.method == "DELETE":
            return self._delete(uow, entry)
        if entry.method in ("GET", "HEAD"):
            return self._get(uow, entry)
        if entry.method == "PATCH":
            assert entry.resource_type is not None and entry.patch is not None
            res_id = self._ids[entry.index]
            self._claim(entry, res_id)
            result = resources.patch(
                uow,
                entry.resource_type,
                res_id,
                entry.patch,
                if_match=entry.if_match,
                check=self._ctx.validation.check_write,
            )
            return Outcome(
                200, result.stored, location=True, issues=result.issues, changed=result.changed
            )
        if self._transaction:
            self._links.rewrite(uow, entry)
        else:
            self._links.refuse(entry)
        return self._create(uow, entry) if entry.method == "POST" else self._update(uow, entry)

    def _create(self, uow: UnitOfWork, entry: Entry) -> Outcome:
        assert entry.resource_type is not None and entry.resource is not None
        planned = self._ids[entry.index]
        result = resources.create(
            uow,
            entry.resource_type,
            entry.resource,
            if_none_exist=entry.if_none_exist,
            res_id=planned,
        )
        if result.stored.res_id != planned:  # ifNoneExist found the resource
            if entry.index in self._provisional:
                raise InvalidRequest(
                    "Conditional creates that refer to each other in a circle cannot be "
                    "resolved when one of them already exists; split the transaction",
                    f"{entry.path}.request.ifNoneExist",
                )
            self._ids[entry.index] = result.stored.res_id
        return self._written(entry, result)

    def _written(self, entry: Entry, result: resources.WriteResult) -> Outcome:
        """The outcome of a create or update: 201 when it created, whether it changed."""
        status = 201 if result.created else 200
        return Outcome(
            status,
            result.stored,
            location=True,
            issues=self._warnings_of(entry),
            changed=result.changed,
        )

    def _match_update(self, uow: UnitOfWork, entry: Entry) -> None:
        """Settle the id a conditional update writes (its match, the body's id, or a new one)."""
        assert entry.resource_type is not None and entry.resource is not None
        found = resources.matching_ids(uow, entry.resource_type, entry.params)
        if len(found) > 1:
            raise MultipleMatches(
                f"The conditional update matched more than one {entry.resource_type}"
            )
        body_id = entry.resource.get("id")
        if found and body_id is not None and body_id != found[0]:
            raise InvalidRequest(
                f"The id in the resource differs from the matched resource {found[0]!r}",
                f"{entry.path}.resource.id",
            )
        if found:
            self._matched.add(entry.index)
        self._ids[entry.index] = found[0] if found else body_id or str(uuid.uuid4())

    def _update(self, uow: UnitOfWork, entry: Entry) -> Outcome:
        assert entry.resource_type is not None and entry.resource is not None
        res_id = self._ids[entry.index]
        self._claim(entry, res_id)
        if entry.if_none_match == "*":
            current = uow.store.current(entry.resource_type, res_id)
            if current is not None and not current.deleted:
                raise PreconditionFailed(
                    f"ifNoneMatch is * but {entry.resource_type}/{res_id} exists",
                    f"{entry.path}.request.ifNoneMatch",
                )
        unmatched = entry.interaction == "conditional-update" and entry.index not in self._matched
        if unmatched and "id" not in entry.resource:
            if entry.if_match is not None:
                raise PreconditionFailed(f"No {entry.resource_type} matches, so ifMatch fails")
            # Written as a conditional create, so that a concurrent twin is noticed.
            result = resources.create(
                uow,
                entry.resource_type,
                entry.resource,
                if_none_exist=urlencode(entry.params),
                res_id=res_id,
            )
            if result.stored.res_id != res_id:
                raise VersionConflict(
                    f"A {entry.resource_type} matching {entry.url} was created after this "
                    "entry was matched (concurrently, or by a POST of this transaction)"
                )
        else:
            # A literal update keeps the body's id, so that a mismatch with the URL is reported.
            body = entry.resource if entry.res_id else {**entry.resource, "id": res_id}
            result = resources.update(
                uow,
                entry.resource_type,
                res_id,
                body,
                if_match=entry.if_match,
                options=self._ctx.write_options,
            )
        return self._written(entry, result)

    def _delete(self, uow: UnitOfWork, entry: Entry) -> Outcome:
        assert entry.resource_type is not None
        res_id = entry.res_id
        if res_id is None:
            found = resources.matching_ids(uow, entry.resource_type, entry.params)
            if len(found) > 1:
                raise MultipleMatches(
                    f"The conditional delete matched more than one {entry.resource_type}"
                )
            if not found:
                return Outcome(204)
            res_id = self._ids[entry.index] = found[0]
        self._claim(entry, res_id)
        if entry.if_match is not None:
            current = uow.store.current(entry.resource_type, res_id, for_update=True)
            live = current is not None and not current.deleted
            if current is None or not live or current.version_id != entry.if_match:
                shown = current.version_id if current is not None and live else "none"
                raise PreconditionFailed(
                    f"ifMatch names version {entry.if_match} but the current version is {shown}"
                )
        return Outcome(204, resources.delete(uow, entry.resource_type, res_id))

    def _get(self, uow: UnitOfWork, entry: Entry) -> Outcome:
        settings, rtype = self._ctx.settings, entry.resource_type
        if entry.interaction == "capabilities":
            allow = settings.allow_update_create
            return Outcome(
                200,
                body=capability_statement(
                    self._base, allow_update_create=allow, search_params=self._ctx.search_params
                ),
            )
        if entry.interaction == "search-type":
            assert rtype is not None
            body = search_bundle(
                uow,
                self._base,
                rtype,
                entry.params,
                default_count=settings.default_count,
                max_count=settings.max_count,
            )
            return Outcome(200, body=body)
        if entry.interaction.startswith("history"):
            body = history_service.history(
                uow,
                self._base,
                rtype,
                entry.res_id,
                entry.params,
                default_count=settings.default_count,
                max_count=settings.max_count,
            )
            return Outcome(200, body=body)
        assert rtype is not None and entry.res_id is not None
        if entry.version_id is not None:
            stored = resources.vread(uow, rtype, entry.res_id, entry.version_id)
        else:
            stored = resources.read(uow, rtype, entry.res_id)
        etag = f'W/"{stored.version_id}"'
        tag = (entry.if_none_match or "").strip()
        since = entry.if_modified_since
        if tag in (etag, etag[2:]) or (since is not None and stored.last_updated <= since):
            return Outcome(304, stored)
        return Outcome(200, stored)

    def _warnings_of(self, entry: Entry) -> tuple[Issue, ...]:
        return self._warnings.get(entry.index, ())

    def _claim(self, entry: Entry, res_id: str) -> None:
        """A transaction changes each resource at most once (http.html#trules)."""
        key = (str(entry.resource_type), res_id)
        other = self._changed.setdefault(key, entry.index)
        if self._transaction and other != entry.index:
            raise InvalidRequest(
                f"Bundle.entry[{other}] already changes {key[0]}/{res_id}; a transaction may "
                "change a resource only once"
            )

    def _identity(self, uow: UnitOfWork, target: Entry, source: Entry) -> str:
        """``Type/id`` of what ``target`` writes; a conditional create runs first to know it."""
        if target.method == "POST" and target.if_none_exist and target.index not in self._outcomes:
            if target.index not in self._running:
                self._running.add(target.index)
                self._step(uow, target)
                self._running.discard(target.index)
            elif target is not source:
                self._provisional.add(target.index)  # a circle: the planned id stands in
        res_id = self._ids.get(target.index)
        if res_id is None:
            raise InvalidRequest(
                f"{target.full_url} is the fullUrl of Bundle.entry[{target.index}], "
                "which writes no resource"
            )
        return f"{target.resource_type}/{res_id}"


def _element_of(error: FhirError, entry: Entry) -> str:
    """The request element that an error without a Bundle path is about."""
    if isinstance(error, PreconditionFailed) and entry.if_match is not None:
        return ".request.ifMatch"
    if isinstance(error, MultipleMatches) and entry.if_none_exist:
        return ".request.ifNoneExist"
    return ".request.url"
