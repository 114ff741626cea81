"""Keeping the indicator facts with every write, in the writer's transaction.

``resources`` calls ``wrote`` for each version it stores (and each deletion).  The facts change
at once; just before commit the z-scores of the measurements written are derived again
(``derive.py``), the (month, desa) pairs whose counts changed are marked stale, so the next page
that shows them recounts that desa (``summary.py``), and a person registered, moved or born on
another day changes the denominators of registered people in place.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from server.services.indicators import derive, facts, summary
from server.services.indicators.catalogue import ANC_WINDOW_DAYS
from server.services.indicators.summary import Cell
from server.storage import indicators as store
from server.storage.uow import UnitOfWork

_MEMO = "indicators"
_TYPES = frozenset({"Patient", "Organization", "Location", "Observation", "Encounter"})


@dataclass
class _Pending:
    events: set[tuple[str, str]] = field(default_factory=set)  # (patient, month) changed
    # a person whose desa, Posyandu or birth date changed -> as they were before (None: new)
    people: dict[str, Any] = field(default_factory=dict)
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
            pending.events.update((patient, month) for month in _months_counting(kind, day))
            again = kind in store.MEASUREMENT_KINDS or derive.received(res_id, kind, patient, day)
            if again and uow.memo.get("derive_growth", True):
                pending.measured.add((patient, day))
        if facility is not None and events and _kind_of(uow, pending, facility) == "posyandu":
            for event in events:
                old = store.seen_at(connection, event.patient_id, facility, event.day)
                if old is not None:
                    pending.people.setdefault(event.patient_id, old)


def _patient(
    uow: UnitOfWork, pending: _Pending, res_id: str, content: dict[str, Any] | None
) -> None:
    connection = uow.connection
    if content is None:
        old = store.person(connection, res_id)
        store.remove_person(connection, res_id)
        if old is not None:
            pending.people.setdefault(res_id, old)
        return
    person = facts.person(content)
    counted = {"sex": person.sex, "birth_date": person.birth_date, "village": person.village}
    old = store.put_person(connection, res_id, {"name": person.name, **counted})
    if old is None or (old.birth_date, old.village) != (person.birth_date, person.village):
        pending.people.setdefault(res_id, old)
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
    """Before commit: derive the z-scores of the measurements written, then mark the (month,
    desa) pairs whose counts changed."""
    pending: _Pending = uow.memo[_MEMO]
    while pending.measured:  # deriving writes Observations, which come back through wrote()
        measured, pending.measured = pending.measured, set()
        for patient, day in sorted(measured):
            derive.derive(uow, patient, day)
    connection = uow.connection
    people = store.persons_of(connection, {p for p, _ in pending.events} | set(pending.people))
    # an event of a Patient not (yet) held counts nowhere; storing the Patient marks its months
    marks = {(month, people[p].village) for p, month in pending.events if p in people}
    registered: dict[str, Counter[tuple[Cell, str]]] = defaultdict(Counter)
    computed: set[str] = set()
    if pending.people:
        store.lock_people(connection, shared=True)  # no month's first count in between
        computed = store.computed_months(connection)
    for patient, before in pending.people.items():
        after = people.get(patient)
        if _registered_as(before) == _registered_as(after):
            continue
        # their events count in another desa, Posyandu or age group: recount where they are
        villages = {p.village for p in (before, after) if p is not None}
        marks.update((m, v) for m in store.event_months(connection, patient) for v in villages)
        for month in computed:  # and who is registered where: in place
            registered[month].update(_registration(month, after))
            registered[month].subtract(_registration(month, before))
    _add_registered(connection, registered)
    store.changed(connection, marks)
    pending.events.clear()
    pending.people.clear()


def _registered_as(person: Any | None) -> tuple[str, str, str | None] | None:
    return None if person is None else (person.village, person.posyandu or "", person.birth_date)


def _registration(month: str, person: Any | None) -> Counter[tuple[Cell, str]]:
    if person is None:
        return Counter()
    return summary.registration(month, person.birth_date, (person.village, person.posyandu or ""))


def _add_registered(connection: Any, registered: dict[str, Counter[tuple[Cell, str]]]) -> None:
    """Apply the changes of registered people to the counted months, each under its lock: a
    recount of the month waits, or has finished."""
    for month in sorted(registered):
        deltas = {(c[0], c[1], code): n for (c, code), n in registered[month].items() if n}
        if deltas:
            store.lock_summary(connection, month)
            store.add_denominators(connection, month, deltas)


def _months_counting(kind: str, day: str) -> list[str]:
    """The months whose counts an event of ``day`` is part of: its own; for an antenatal visit
    also those whose pregnancy window (K4, K6) reaches back to it."""
    first = date.fromisoformat(day)
    last = first + timedelta(days=ANC_WINDOW_DAYS - 1) if kind == "anc" else first
    count = (last.year - first.year) * 12 + last.month - first.month + 1
    return summary.month_range(last.isoformat()[:7], count)


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
