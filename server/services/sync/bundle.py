"""A batch as transaction Bundles (``ILP_SYNC_BUNDLE_SIZE`` > 1): one request per Bundle.

Each claimed resource, and whatever it references that has no upstream id yet, becomes an
entry: a conditional create (``ifNoneExist`` on its identifier, ``urn:uuid`` fullUrl that
other entries reference, so cycles need no second send), a PUT to its upstream id, or a
DELETE.  The upstream applies a Bundle all or nothing; when it refuses one (4xx) the batch
is sent again one resource at a time (``push.py``) so that only the culprit fails.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from server.services.sync import push
from server.services.sync.prepare import facility_system, has_identifier, upstream_body
from server.services.sync.upstream import Refused, Transient, location_id
from server.services.sync.worker import (
    BatchReport,
    Claimed,
    Key,
    Parked,
    SyncWorker,
)


@dataclass
class _Entry:
    key: Key
    request: dict[str, str]
    body: dict[str, Any] | None = None
    full_url: str | None = None
    upstream_id: str | None = None  # already known (PUT)


@dataclass
class _Plan:
    entries: list[_Entry] = field(default_factory=list)
    urns: dict[Key, str] = field(default_factory=dict)  # creates, reserved before their body

    def mark(self) -> tuple[int, set[Key]]:
        return len(self.entries), set(self.urns)

    def rollback(self, mark: tuple[int, set[Key]]) -> None:
        """Drop what was planned for a resource that turned out not sendable."""
        size, reserved = mark
        del self.entries[size:]
        for key in set(self.urns) - reserved:
            del self.urns[key]

    def bundle(self) -> dict[str, Any]:
        entries = []
        for entry in self.entries:
            item: dict[str, Any] = {"request": entry.request}
            if entry.full_url:
                item["fullUrl"] = entry.full_url
            if entry.body is not None:
                item["resource"] = entry.body
            entries.append(item)
        return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def send(worker: SyncWorker, claimed: dict[Key, Claimed], size: int, report: BatchReport) -> None:
    """Send the claimed resources in Bundles of about ``size`` entries."""
    waiting = list(claimed)
    while waiting:
        plan, planned = _Plan(), []
        while waiting and len(plan.entries) < size:
            key = waiting.pop(0)
            if worker.already_done(key, claimed[key], report):
                continue
            mark = plan.mark()
            try:
                _plan(worker, key, plan, uncertain=claimed[key].attempts > 1)
            except (Transient, Refused, Parked) as error:
                plan.rollback(mark)
                worker.failed(key, claimed[key], error, report)
                continue
            planned.append(key)
        if not plan.entries:
            for key in planned:  # nothing to send (persons looked up, unmapped deletes)
                report.sent += len(claimed[key].seqs)
            continue
        try:
            _send_plan(worker, plan)
        except Transient as error:
            for key in planned:  # persons looked up while planning are done
                if not worker.already_done(key, claimed[key], report):
                    worker.failed(key, claimed[key], error, report)
            continue
        except Refused:
            for key in planned:  # find the culprit: one resource at a time
                push.send(worker, key, claimed[key], report)
            continue
        for key in planned:
            report.sent += len(claimed[key].seqs)


def _plan(worker: SyncWorker, key: Key, plan: _Plan, *, uncertain: bool = False) -> None:
    """Add the resource (and what it references, unsent) to the plan, or record it as done.

    ``uncertain``: its rows were claimed before, so it may be upstream without an id here.
    """
    if key in plan.urns or any(entry.key == key for entry in plan.entries):
        return
    if worker.answered_here(key)[0]:
        return
    res_type, res_id = key
    state = worker.state(key)
    current, mapped = state.current, state.mapped
    assert current is not None  # answered_here refuses a missing resource
    criteria = worker.natural_key(current)
    if current.deleted:
        if mapped:
            plan.entries.append(_Entry(key, {"method": "DELETE", "url": f"{res_type}/{mapped}"}))
        elif uncertain and has_identifier(res_type):  # it may have gone up before a crash
            system = facility_system(res_type, worker.organization)
            url = f"{res_type}?identifier={system}|{res_id}"
            plan.entries.append(_Entry(key, {"method": "DELETE", "url": url}))
        else:
            worker.record(key, None)
        return
    if mapped is None and uncertain and criteria:  # for upstreams that ignore ifNoneExist
        found = worker.upstream.find(res_type, {"identifier": criteria})
        mapped = found[0] if len(found) == 1 else None
        if mapped:
            worker.known[key] = mapped
    if mapped is None:
        plan.urns[key] = f"urn:uuid:{uuid.uuid4()}"
    body, _ = upstream_body(
        current.content or {},
        upstream_id=mapped,
        resolve=lambda t, i: _reference(worker, (t, i), plan),
        organization_id=worker.organization,
    )
    if mapped:
        request = {"method": "PUT", "url": f"{res_type}/{mapped}"}
        plan.entries.append(_Entry(key, request, body, upstream_id=mapped))
        return
    request = {"method": "POST", "url": res_type}
    if criteria:
        request["ifNoneExist"] = f"identifier={criteria}"
    plan.entries.append(_Entry(key, request, body, full_url=plan.urns[key]))


def _reference(worker: SyncWorker, key: Key, plan: _Plan) -> str:
    found = worker.upstream_id(key)
    if found is not None:
        return f"{key[0]}/{found}"
    if key not in plan.urns:
        try:
            _plan(worker, key, plan)
        except (Refused, Parked) as error:
            raise worker.settle_dependency(key, error) from error
        found = worker.upstream_id(key)  # a person looked up, the facility
        if found is not None:
            return f"{key[0]}/{found}"
        if key not in plan.urns:
            raise Parked(f"references {key[0]}/{key[1]}, which is deleted")
    return plan.urns[key]


def _send_plan(worker: SyncWorker, plan: _Plan) -> None:
    responses = worker.upstream.transaction(plan.bundle())
    for entry, response in zip(plan.entries, responses, strict=True):
        method = entry.request["method"]
        if method == "DELETE":
            worker.record(entry.key, None)
        elif method == "PUT":
            worker.record(entry.key, entry.upstream_id)
        else:
            created = location_id(entry.key[0], str(response.get("location", "")))
            if created is None:
                raise Refused(f"the transaction response names no id for {entry.key}", None)
            worker.record(entry.key, created)
