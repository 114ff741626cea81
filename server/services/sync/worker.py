"""The sync worker: claim outbox rows, send each resource's current state upstream, record.

Delivery is at least once; every request is idempotent, so a crash between sending and
recording sends nothing twice upstream:
- a create carries the facility identifier (``sys-ids.kemkes.go.id/{type}/{org}|{local id}``)
  and goes as a conditional create (``If-None-Exist`` / ``ifNoneExist``);
- an update is a PUT to the upstream id, a delete a DELETE of it (or, when the resource
  never got an upstream id, a conditional DELETE by its identifier).
What a resource references is sent first or in the same transaction Bundle, and its
reference rewritten; Patients and Practitioners are looked up by NIK
(``ILP_SYNC_PERSONS=lookup``, SATUSEHAT) or created.  With ``ILP_SYNC_BUNDLE_SIZE`` above 1
a batch goes up as transaction Bundles (``bundle.py``); otherwise one request per resource
(``push.py``).  Results are recorded in one short transaction per batch.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from server.services.context import ServiceContext
from server.services.sync.prepare import facility_system, has_identifier
from server.services.sync.upstream import Refused, Transient, Upstream, UpstreamError
from server.storage import sync as outbox
from server.storage.repository import StoredResource

logger = logging.getLogger(__name__)

NIK = "https://fhir.kemkes.go.id/id/nik"
PERSONS = ("Patient", "Practitioner")
LEASE = timedelta(minutes=10)
MAX_BACKOFF = 3600.0  # seconds

Key = tuple[str, str]


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
class Claimed:
    """The rows of one resource in a claimed batch."""

    seqs: list[int] = field(default_factory=list)
    attempts: int = 0


@dataclass(frozen=True)
class State:
    """One resource as the database has it, read before sending: what a send covers."""

    last: int  # newest outbox row; rows up to it are settled by the send
    current: StoredResource | None
    mapped: str | None  # upstream id


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
    """Claims and sends; what one batch learned (upstream ids, states) lives until the next."""

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
        self.context = context
        self.upstream = upstream
        self._name = name or worker_name()
        self._now = now
        self._jitter = jitter
        self.organization = settings.upstream_organization_id
        self.facility = settings.sync_facility
        self.lookup_persons = settings.sync_persons == "lookup"
        self._batch_size = settings.sync_batch_size
        self._bundle_size = settings.sync_bundle_size
        self._max_attempts = settings.sync_max_attempts
        self.known: dict[Key, str] = {}  # upstream ids
        self.pushed: set[Key] = set()  # sent in this batch
        self.settled: dict[Key, str] = {}  # failed or parked in this batch, as a dependency
        self._states: dict[Key, State] = {}
        self._records: list[outbox.Sent] = []

    # the loop ----------------------------------------------------------------------------

    def release_dead_claims(self) -> int:
        """Free rows claimed by workers of this host that are no longer running."""
        host = self._name.rsplit(":", 1)[0]
        with self.context.unit_of_work(write=True) as uow:
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
        from server.services.sync import bundle, push

        with self.context.unit_of_work(write=True) as uow:
            rows = outbox.claim(uow.connection, self._name, self._now(), self._batch_size, LEASE)
        report = BatchReport(claimed=len(rows))
        claimed: dict[Key, Claimed] = {}
        for row in rows:  # one send per resource, in the order of its first write
            group = claimed.setdefault((row.res_type, row.res_id), Claimed())
            group.seqs.append(row.seq)
            group.attempts = max(group.attempts, row.attempts)
        self.known, self.pushed, self.settled, self._states, self._records = {}, set(), {}, {}, []
        self._prefetch(claimed)
        try:
            if self._bundle_size > 1:
                bundle.send(self, claimed, self._bundle_size, report)
            else:
                for key, group in claimed.items():
                    push.send(self, key, group, report)
        finally:
            self._flush()
        return report

    # what the database says ----------------------------------------------------------------

    def state(self, key: Key) -> State:
        """The resource's state, read once per batch (before anything about it is sent)."""
        found = self._states.get(key)
        if found is None:
            with self.context.unit_of_work() as uow:
                last = outbox.latest_seq(uow.connection, *key)  # before the read
                current = uow.store.current(*key)
                mapped = outbox.upstream_id(uow.connection, *key)
            found = self._states[key] = State(last, current, mapped)
        return found

    def upstream_id(self, key: Key) -> str | None:
        """The upstream id if known; the facility's Organization is the configured one."""
        if key in self.known:
            return self.known[key]
        if key == ("Organization", self.facility):
            return self.organization
        mapped = self.state(key).mapped
        if mapped is not None:
            self.known[key] = mapped
        return mapped

    def _prefetch(self, claimed: Iterable[Key]) -> None:
        by_type: dict[str, list[str]] = {}
        for res_type, res_id in claimed:
            by_type.setdefault(res_type, []).append(res_id)
        with self.context.unit_of_work() as uow:
            for res_type, ids in by_type.items():
                lasts = outbox.latest_seqs(uow.connection, res_type, ids)
                currents = {r.res_id: r for r in uow.store.many_current(res_type, ids)}
                mapped = outbox.upstream_ids(uow.connection, res_type, ids)
                for res_id in ids:
                    self._states[(res_type, res_id)] = State(
                        lasts.get(res_id, 0), currents.get(res_id), mapped.get(res_id)
                    )

    def answered_here(self, key: Key) -> tuple[bool, str | None]:
        """Settle what never goes up as a write: (done, upstream id).

        The facility's own Organization is the configured one; Patients and Practitioners
        looked up by NIK are never written upstream, deletes included.  A resource that does
        not exist here is refused.
        """
        state = self.state(key)
        current, mapped = state.current, state.mapped
        if key == ("Organization", self.facility):
            self.record(key, self.organization)
            return True, self.organization
        if current is None:
            raise Refused(f"{key[0]}/{key[1]} is referenced but does not exist here")
        if key[0] in PERSONS and self.lookup_persons:
            found = mapped if mapped or current.deleted else self.find_person(current)
            self.record(key, found)
            return True, None if current.deleted else found
        return False, None

    # persons and keys ----------------------------------------------------------------------

    def find_person(self, current: StoredResource) -> str:
        """The upstream id of a Patient or Practitioner, by NIK; Parked when there is none."""
        nik = nik_of(current.content or {})
        name = f"{current.res_type}/{current.res_id}"
        if not nik:
            raise Parked(f"{name} has no NIK ({NIK}) to look up upstream")
        found = self.upstream.find(current.res_type, {"identifier": f"{NIK}|{nik}"})
        if not found:
            raise Parked(f"{name}: NIK {nik} is not known upstream")
        if len(found) > 1:
            raise Parked(f"{name}: NIK {nik} matches {len(found)} resources upstream")
        return found[0]

    def natural_key(self, current: StoredResource) -> str | None:
        """``system|value`` that finds this resource upstream: NIK for persons, else sys-ids."""
        if current.res_type in PERSONS:
            nik = nik_of(current.content or {})
            if nik:
                return f"{NIK}|{nik}"
        if has_identifier(current.res_type):
            return f"{facility_system(current.res_type, self.organization)}|{current.res_id}"
        return None

    # recording -----------------------------------------------------------------------------

    def record(self, key: Key, upstream_id: str | None, *, again: int | None = None) -> None:
        """Sent (or nothing to send): written with the rest of the batch at its end."""
        if upstream_id is not None:
            self.known[key] = upstream_id
        self.pushed.add(key)
        self._records.append(outbox.Sent(*key, self.state(key).last, upstream_id, again))

    def _flush(self) -> None:
        if not self._records:
            return
        with self.context.unit_of_work(write=True) as uow:
            outbox.record_sent(uow.connection, self._records, self._now())
        self._records = []

    def failed(self, key: Key, group: Claimed, error: Exception, report: BatchReport) -> None:
        """Postpone (transient, attempts left), fail (refused) or park the claimed rows."""
        if isinstance(error, Transient) and group.attempts < self._max_attempts:
            self._postpone(key, group, error)
            report.postponed += len(group.seqs)
            return
        if isinstance(error, Parked):
            self.settle(key, max(group.seqs), outbox.PARKED, str(error), None)
            report.parked += len(group.seqs)
            return
        assert isinstance(error, UpstreamError)
        reason = error.reason
        if isinstance(error, Transient):
            reason = f"gave up after {group.attempts} attempts: {reason}"
        self.settle(key, max(group.seqs), outbox.FAILED, reason, error.detail)
        report.failed += len(group.seqs)
        logger.warning("%s/%s failed: %s", *key, reason)

    def _postpone(self, key: Key, group: Claimed, error: Transient) -> None:
        delay = error.retry_after
        if delay is None:
            delay = min(MAX_BACKOFF, 2.0**group.attempts) * (0.5 + self._jitter() / 2)
        now = self._now()
        with self.context.unit_of_work(write=True) as uow:
            outbox.postpone(
                uow.connection,
                group.seqs,
                now + timedelta(seconds=delay),
                now,
                error.reason[:2000],
                error.detail,
            )
        logger.info("%s/%s postponed %.0f s: %s", *key, delay, error.reason)

    def settle(
        self, key: Key, up_to: int, state: str, reason: str, detail: dict[str, Any] | None
    ) -> None:
        """Give a resource's rows a final state now (failed or parked)."""
        with self.context.unit_of_work(write=True) as uow:
            outbox.settle(
                uow.connection, *key, up_to, state, self._now(), reason=reason[:2000], detail=detail
            )

    def settle_dependency(self, key: Key, error: Exception) -> Parked:
        """A referenced resource could not be sent: settle its rows, park what waits on it."""
        if isinstance(error, Parked):
            state, reason, detail = outbox.PARKED, str(error), None
        else:
            assert isinstance(error, UpstreamError)
            state, reason, detail = outbox.FAILED, error.reason, error.detail
        self.settle(key, self.state(key).last, state, reason, detail)
        self.settled[key] = state
        return Parked(f"waits for {key[0]}/{key[1]}: {reason}")

    def already_done(self, key: Key, group: Claimed, report: BatchReport) -> bool:
        """Sent, failed or parked earlier in this batch as what another resource references."""
        if key in self.pushed:
            report.sent += len(group.seqs)
        elif key in self.settled:
            if self.settled[key] == outbox.PARKED:
                report.parked += len(group.seqs)
            else:
                report.failed += len(group.seqs)
        else:
            return False
        return True


def nik_of(resource: dict[str, Any]) -> str | None:
    for identifier in resource.get("identifier", []):
        if identifier.get("system") == NIK and identifier.get("value"):
            return str(identifier["value"])
    return None


__all__ = ["BatchReport", "Claimed", "Parked", "Refused", "State", "SyncWorker", "Transient"]
