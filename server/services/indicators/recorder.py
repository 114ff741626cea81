"""Keeping the indicator facts with every write, in the writer's transaction.

``resources`` calls ``wrote`` for each version it stores (and each deletion).  The facts change
at once; just before commit the z-scores of the measurements written are derived again
(``derive.py``) and the months whose numbers changed are marked stale, so the next page that
shows them recomputes them (``summary.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.services.indicators import derive, facts
from server.storage import indicators as store
from server.storage.uow import UnitOfWork

_MEMO = "indicators"
_TYPES = frozenset({"Patient", "Organization", "Location", "Observation", "Encounter"})


@dataclass
class _Pending:
    months: set[str] = field(default_factory=set)
    every_month: bool = False
    measured: set[tuple[str, str]] = field(default_factory=set)  # (patient, day) to derive
    facility_kinds: dict[str, str | None] = field(default_factory=dict)


def wrote(
    uow: UnitOfWork,
    resource_type: str,
    res_id: str,
    content: dict[str, Any] | None,
    facility: str | None,
) -> None:
    """Update the facts of a resource just stored (``content`` None: deleted)."""
    if resource_type not in _TYPES:
        return
    pending = _pending(uow)
    connection = uow.connection
    if resource_type == "Patient":
        _patient(uow, pending, res_id, content)
    elif resource_type == "Organization":
        found = facts.facility(content) if content is not None else None
        store.put_facility(connection, res_id, None if found is None else _facility_row(found))
        pending.facility_kinds.pop(res_id, None)
    elif resource_type == "Location":
        found_area = facts.area(content) if content is not None else None
        store.put_area(connection, res_id, found_area)
        managed_by = facts.managing_organization(content) if content is not None else None
        if found_area is None and managed_by is not None:
            store.locate_facility(connection, managed_by, res_id)
    else:
        events = facts.events(content) if content is not None else []
        rows = [_event_row(event, facility) for event in events]
        for patient, kind, day in store.replace_events(connection, resource_type, res_id, rows):
            pending.months.add(day[:7])
            if kind in store.MEASUREMENT_KINDS and uow.memo.get("derive_growth", True):
                pending.measured.add((patient, day))
        if facility is not None and events and _kind_of(uow, pending, facility) == "posyandu":
            for event in events:
                store.seen_at(connection, event.patient_id, facility, event.day)


def _patient(
    uow: UnitOfWork, pending: _Pending, res_id: str, content: dict[str, Any] | None
) -> None:
    connection = uow.connection
    pending.every_month = True  # who is registered where, at what age: every month's counts
    if content is None:
        store.remove_person(connection, res_id)
        return
    person = facts.person(content)
    old = store.put_person(
        connection,
        res_id,
        {
            "name": person.name,
            "sex": person.sex,
            "birth_date": person.birth_date,
            "village": person.village,
        },
    )
    if not uow.memo.get("derive_growth", True):
        return
    if old is None or (old.sex, old.birth_date) != (person.sex, person.birth_date):
        pending.measured.update((res_id, day) for day in store.measured_days(connection, res_id))


def _pending(uow: UnitOfWork) -> _Pending:
    found: _Pending | None = uow.memo.get(_MEMO)
    if found is None:
        found = uow.memo[_MEMO] = _Pending()
        uow.before_commit.append(_settle)
    return found


def _settle(uow: UnitOfWork) -> None:
    """Before commit: derive the z-scores of the measurements written, then mark months."""
    pending: _Pending = uow.memo[_MEMO]
    while pending.measured:  # deriving writes Observations, which come back through wrote()
        measured, pending.measured = pending.measured, set()
        for patient, day in sorted(measured):
            derive.derive(uow, patient, day)
    if pending.every_month:
        store.changed_all(uow.connection)
    store.changed(uow.connection, pending.months)
    pending.months.clear()
    pending.every_month = False


def _kind_of(uow: UnitOfWork, pending: _Pending, org_id: str) -> str | None:
    if org_id not in pending.facility_kinds:
        pending.facility_kinds[org_id] = store.facility_kind(uow.connection, org_id)
    return pending.facility_kinds[org_id]


def _event_row(event: facts.Event, facility: str | None) -> dict[str, Any]:
    return {
        "patient_id": event.patient_id,
        "kind": event.kind,
        "day": event.day,
        "month": event.month,
        "value": event.value,
        "value2": event.value2,
        "facility": facility,
    }


def _facility_row(found: facts.Facility) -> dict[str, Any]:
    return {
        "name": found.name,
        "kind": found.kind,
        "village": found.village,
        "parent": found.parent,
    }
