"""The sync worker: claim outbox rows, send each resource's current state upstream, record.

Delivery is at least once; every request is idempotent, so a crash between sending and
recording sends nothing twice upstream:
- a create carries the facility identifier (``sys-ids.kemkes.go.id/{type}/{org}|{local id}``)
  and goes as a conditional create (``If-None-Exist``); a row claimed before (its worker died
  or timed out) first looks the identifier up, for upstreams that ignore the header;
- an update is a PUT to the upstream id, a delete a DELETE of it.
What a resource references is sent first (its upstream id goes into the reference); Patients
and Practitioners are looked up by NIK (``ILP_SYNC_PERSONS=lookup``, SATUSEHAT) or created.
Each result is recorded in its own short transaction right after the upstream answers.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from server.services.context import ServiceContext
from server.services.sync.prepare import facility_system, has_identifier, upstream_body
from server.services.sync.upstream import Refused, Transient, Upstream
from server.storage import sync as outbox
from server.storage.repository import StoredResource

logger = logging.getLogger(__name__)

NIK = "https://fhir.kemkes.go.id/id/nik"
PERSONS = ("Patient", "Practitioner")
LEASE = timedelta(minutes=10)
MAX_BACKOFF = 3600.0  # seconds


class Parked(Exception):
    """Waits for something only a person can fix (a NIK unknown upstream, a refused dependency)."""


@dataclass
class BatchReport:
    claimed: int = 0
    sent: int = 0
    postponed: int = 0
    failed: int = 0
    parked: int = 0

    def add(self, other: BatchReport) -> None:
        for name in ("claimed", "sent", "postponed", "failed", "parked"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _Pending:
    seqs: list[int] = field(default_factory=list)
    attempts: int = 0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SyncWorker:
    def __init__(
        self,
        context: ServiceContext,
        upstream: Upstream,
        *,
        name: str | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        jitter: Callable[[], float] = random.random,
    ) -> None:
        settings = context.settings
        self._context = context
        self._upstream = upstream
        self._name = name or worker_name()
        self._now = now
        self._jitter = jitter
        self._organization = settings.upstream_organization_id
        self._facility = settings.sync_facility
        self._lookup_persons = settings.sync_persons == "lookup"
        self._batch_size = settings.sync_batch_size
        self._max_attempts = settings.sync_max_attempts
        self._known: dict[tuple[str, str], str] = {}  # upstream ids seen in this batch

    # the loop ----------------------------------------------------------------------------

    def release_dead_claims(self) -> int:
        """Free rows claimed by workers of this host that are no longer running."""
        host = self._name.rsplit(":", 1)[0]
        with self._context.unit_of_work(write=True) as uow:
            return outbox.release_dead_claims(uow.connection, host, _alive)

    def drain(self) -> BatchReport:
        """Send everything due now; stop when nothing is left to claim."""
        total = BatchReport()
        while True:
            report = self.once()
            total.add(report)
            if report.claimed == 0:
                return total

    def run(self, stop: Callable[[], bool], idle_seconds: float = 2.0) -> None:
        """``ilp sync run``: drain, wait while idle, until ``stop()``."""
        self.release_dead_claims()
        while not stop():
            report = self.once()
            if report.claimed == 0:
                time.sleep(idle_seconds)

    def once(self) -> BatchReport:
        """Claim one batch and send it."""
        with self._context.unit_of_work(write=True) as uow:
            rows = outbox.claim(uow.connection, self._name, self._now(), self._batch_size, LEASE)
        report = BatchReport(claimed=len(rows))
        by_resource: dict[tuple[str, str], _Pending] = {}
        for row in rows:  # one send per resource, in the order of its first write
            pending = by_resource.setdefault((row.res_type, row.res_id), _Pending())
            pending.seqs.append(row.seq)
            pending.attempts = max(pending.attempts, row.attempts)
        self._known = {}
        for (res_type, res_id), pending in by_resource.items():
            self._send_claimed(res_type, res_id, pending, report)
        return report

    def _send_claimed(
        self, res_type: str, res_id: str, pending: _Pending, report: BatchReport
    ) -> None:
        up_to = max(pending.seqs)
        try:
            self._push(res_type, res_id, set(), uncertain=pending.attempts > 1)
            report.sent += len(pending.seqs)
        except Transient as exc:
            if pending.attempts >= self._max_attempts:
                reason = f"gave up after {pending.attempts} attempts: {exc.reason}"
                self._settle(res_type, res_id, up_to, outbox.FAILED, reason, exc.detail)
                report.failed += len(pending.seqs)
                return
            delay = exc.retry_after
            if delay is None:
                delay = min(MAX_BACKOFF, 2.0**pending.attempts) * (0.5 + self._jitter() / 2)
            now = self._now()
            with self._context.unit_of_work(write=True) as uow:
                outbox.postpone(
                    uow.connection,
                    pending.seqs,
                    now + timedelta(seconds=delay),
                    now,
                    exc.reason[:2000],
                    exc.detail,
                )
            report.postponed += len(pending.seqs)
            logger.info("%s/%s postponed %.0f s: %s", res_type, res_id, delay, exc.reason)
        except Refused as exc:
            self._settle(res_type, res_id, up_to, outbox.FAILED, exc.reason, exc.detail)
            report.failed += len(pending.seqs)
            logger.warning("%s/%s refused: %s", res_type, res_id, exc.reason)
        except Parked as exc:
            self._settle(res_type, res_id, up_to, outbox.PARKED, str(exc), None)
            report.parked += len(pending.seqs)

    # one resource --------------------------------------------------------------------------

    def _push(
        self, res_type: str, res_id: str, visiting: set[tuple[str, str]], *, uncertain: bool
    ) -> str | None:
        """Send the current state of a resource (and first what it references); its upstream id."""
        key = (res_type, res_id)
        with self._context.unit_of_work() as uow:
            last = outbox.latest_seq(uow.connection, res_type, res_id)  # before the read
            current = uow.store.current(res_type, res_id)
            mapped = outbox.upstream_id(uow.connection, res_type, res_id)
        if res_type == "Organization" and res_id == self._facility:
            self._record(key, last, self._organization)
            return self._organization
        if current is None:
            raise Refused(f"{res_type}/{res_id} is referenced but does not exist here")
        if current.deleted:
            self._delete(key, mapped, uncertain=uncertain)
            self._record(key, last, None)
            return None
        if res_type in PERSONS and self._lookup_persons:
            found = mapped or self._find_person(current)
            self._record(key, last, found)
            return found
        visiting.add(key)
        try:
            body, left_out = upstream_body(
                current.content or {},
                upstream_id=mapped,
                resolve=lambda t, i: self._dependency(t, i, visiting),
                organization_id=self._organization,
            )
            upstream_id = mapped or self._create(current, body, uncertain=uncertain)
            if mapped:
                self._upstream.update(res_type, mapped, body)
        finally:
            visiting.discard(key)
        self._record(key, last, upstream_id, again=current if left_out else None)
        return upstream_id

    def _dependency(self, res_type: str, res_id: str, visiting: set[tuple[str, str]]) -> str | None:
        """The upstream id of a referenced resource, sending it first if it has none yet."""
        key = (res_type, res_id)
        if key in self._known:
            return self._known[key]
        if key in visiting:
            return None  # a cycle: left out of this send, sent again after
        with self._context.unit_of_work() as uow:
            mapped = outbox.upstream_id(uow.connection, res_type, res_id)
        if mapped is not None:
            self._known[key] = mapped
            return mapped
        try:
            found = self._push(res_type, res_id, visiting, uncertain=False)
        except Refused as exc:
            last = self._latest(key)
            self._settle(res_type, res_id, last, outbox.FAILED, exc.reason, exc.detail)
            raise Parked(f"waits for {res_type}/{res_id}, which the upstream refused") from exc
        except Parked as exc:
            self._settle(res_type, res_id, self._latest(key), outbox.PARKED, str(exc), None)
            raise Parked(f"waits for {res_type}/{res_id}: {exc}") from exc
        if found is None:
            raise Parked(f"references {res_type}/{res_id}, which is deleted")
        return found

    def _create(self, current: StoredResource, body: dict[str, Any], *, uncertain: bool) -> str:
        res_type, res_id = current.res_type, current.res_id
        criteria = self._natural_key(current)
        if criteria and uncertain:  # an earlier claim may have sent it before it could record
            found = self._upstream.find(res_type, {"identifier": criteria})
            if len(found) == 1:
                self._upstream.update(res_type, found[0], {**body, "id": found[0]})
                return found[0]
        created = self._upstream.create(
            res_type, body, f"identifier={criteria}" if criteria else None
        )
        logger.debug("%s/%s -> %s", res_type, res_id, created)
        return created

    def _natural_key(self, current: StoredResource) -> str | None:
        """``system|value`` that finds this resource upstream: NIK for persons, else sys-ids."""
        if current.res_type in PERSONS:
            nik = _nik(current.content or {})
            if nik:
                return f"{NIK}|{nik}"
        if has_identifier(current.res_type):
            return f"{facility_system(current.res_type, self._organization)}|{current.res_id}"
        return None

    def _delete(self, key: tuple[str, str], mapped: str | None, *, uncertain: bool) -> None:
        res_type, res_id = key
        targets = [mapped] if mapped else []
        if not mapped and uncertain and has_identifier(res_type):
            system = facility_system(res_type, self._organization)
            targets = self._upstream.find(res_type, {"identifier": f"{system}|{res_id}"})
        for target in targets:
            self._upstream.delete(res_type, target)

    def _find_person(self, current: StoredResource) -> str:
        nik = _nik(current.content or {})
        name = f"{current.res_type}/{current.res_id}"
        if not nik:
            raise Parked(f"{name} has no NIK ({NIK}) to look up upstream")
        found = self._upstream.find(current.res_type, {"identifier": f"{NIK}|{nik}"})
        if not found:
            raise Parked(f"{name}: NIK {nik} is not known upstream")
        if len(found) > 1:
            raise Parked(f"{name}: NIK {nik} matches {len(found)} resources upstream")
        return found[0]

    # recording -----------------------------------------------------------------------------

    def _record(
        self,
        key: tuple[str, str],
        last: int,
        upstream_id: str | None,
        *,
        again: StoredResource | None = None,
    ) -> None:
        now = self._now()
        with self._context.unit_of_work(write=True) as uow:
            if upstream_id is not None:
                outbox.map_id(uow.connection, *key, upstream_id, now)
                self._known[key] = upstream_id
            outbox.settle(uow.connection, *key, last, outbox.SENT, now)
            if again is not None:
                outbox.enqueue(uow.connection, *key, again.version_id, now)

    def _settle(
        self,
        res_type: str,
        res_id: str,
        up_to: int,
        state: str,
        reason: str,
        detail: dict[str, Any] | None,
    ) -> None:
        with self._context.unit_of_work(write=True) as uow:
            outbox.settle(
                uow.connection,
                res_type,
                res_id,
                up_to,
                state,
                self._now(),
                reason=reason[:2000],
                detail=detail,
            )

    def _latest(self, key: tuple[str, str]) -> int:
        with self._context.unit_of_work() as uow:
            return outbox.latest_seq(uow.connection, *key)


def _nik(resource: dict[str, Any]) -> str | None:
    for identifier in resource.get("identifier", []):
        if identifier.get("system") == NIK and identifier.get("value"):
            return str(identifier["value"])
    return None
