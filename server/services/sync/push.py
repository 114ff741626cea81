"""One request per resource (``ILP_SYNC_BUNDLE_SIZE=1``): SATUSEHAT's REST interactions.

What a resource references is pushed first, recursively; a reference back to a resource
still being pushed (a cycle) is left out of this send and the resource queued again, so it
is sent complete once the other end has an upstream id.  A row claimed before (its worker
died or timed out) looks its identifier up before creating, for upstreams that ignore
``If-None-Exist``.
"""

from __future__ import annotations

from typing import Any

from server.services.sync.prepare import facility_system, has_identifier, upstream_body
from server.services.sync.upstream import Refused, Transient
from server.services.sync.worker import (
    BatchReport,
    Claimed,
    Key,
    Parked,
    SyncWorker,
)


def send(worker: SyncWorker, key: Key, group: Claimed, report: BatchReport) -> None:
    """Send one claimed resource; its rows end sent, postponed, failed or parked."""
    if worker.already_done(key, group, report):
        return
    try:
        _push(worker, key, set(), uncertain=group.attempts > 1)
    except (Transient, Refused, Parked) as error:
        worker.failed(key, group, error, report)
        return
    report.sent += len(group.seqs)


def _push(worker: SyncWorker, key: Key, visiting: set[Key], *, uncertain: bool) -> str | None:
    """Send the current state of a resource (and first what it references); its upstream id."""
    done, found = worker.answered_here(key)
    if done:
        return found
    res_type = key[0]
    state = worker.state(key)
    current, mapped = state.current, state.mapped
    assert current is not None  # answered_here refuses a missing resource
    if current.deleted:
        _delete(worker, key, mapped, uncertain=uncertain)
        worker.record(key, None)
        return None
    visiting.add(key)
    try:
        body, left_out = upstream_body(
            current.content or {},
            upstream_id=mapped,
            resolve=lambda t, i: _dependency(worker, (t, i), visiting),
            organization_id=worker.organization,
        )
        if mapped:
            worker.upstream.update(res_type, mapped, body)
            upstream_id = mapped
        else:
            upstream_id = _create(worker, key, body, uncertain=uncertain)
    finally:
        visiting.discard(key)
    worker.record(key, upstream_id, again=current.version_id if left_out else None)
    return upstream_id


def _dependency(worker: SyncWorker, key: Key, visiting: set[Key]) -> str | None:
    """``Type/{upstream id}`` of a referenced resource, pushing it first if it has none."""
    found = worker.upstream_id(key)
    if found is None:
        if key in visiting:
            return None  # a cycle: left out of this send, sent again after
        try:
            found = _push(worker, key, visiting, uncertain=False)
        except (Refused, Parked) as error:
            raise worker.settle_dependency(key, error) from error
        if found is None:
            raise Parked(f"references {key[0]}/{key[1]}, which is deleted")
    return f"{key[0]}/{found}"


def _create(worker: SyncWorker, key: Key, body: dict[str, Any], *, uncertain: bool) -> str:
    current = worker.state(key).current
    assert current is not None
    criteria = worker.natural_key(current)
    if criteria and uncertain:  # an earlier claim may have sent it before it could record
        found = worker.upstream.find(key[0], {"identifier": criteria})
        if len(found) == 1:
            worker.upstream.update(key[0], found[0], {**body, "id": found[0]})
            return found[0]
    return worker.upstream.create(key[0], body, f"identifier={criteria}" if criteria else None)


def _delete(worker: SyncWorker, key: Key, mapped: str | None, *, uncertain: bool) -> None:
    res_type, res_id = key
    targets = [mapped] if mapped else []
    if not mapped and uncertain and has_identifier(res_type):
        system = facility_system(res_type, worker.organization)
        targets = worker.upstream.find(res_type, {"identifier": f"{system}|{res_id}"})
    for target in targets:
        worker.upstream.delete(res_type, target)
