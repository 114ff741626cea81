"""WHO z-scores of a child's measurements, stored as Observations ``derivedFrom`` them.

For each child and day with a weight or a length/height, the server computes the WHO 2006
z-scores (``server/fhir/growth``) from the latest weight and length/height of that day and the
child's sex and birth date, and stores one Observation per z-score under an id made from the
child and the day: writing the measurement again, or correcting the birth date, updates them
in place; deleting the measurement deletes what no longer follows from it.  They are ordinary
Observations: searchable, audited and synced upstream like any other (docs/indicators.md).

A z-score of the same kind and day written by someone else (the node below, which derived it
already; an EMR) is the child's z-score: the server then keeps none of its own of that kind,
and derives it again when that one is deleted.  So a hierarchy of nodes holds one of each.
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

from server.fhir.growth import Indicator, z_scores
from server.storage import indicators as store
from server.storage.uow import UnitOfWork

ILP = "https://fhir.ilp-gateway.id"
GROWTH = f"{ILP}/CodeSystem/ilp-obs-growth-indicator"
_UCUM = "http://unitsofmeasure.org"
_VITAL_SIGNS = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs",
                "display": "Vital Signs",
            }
        ]
    }
]
# indicator -> (code, display, Indonesian text, profile id, measurements it is derived from)
_DERIVED: dict[Indicator, tuple[str, str, str, str, tuple[str, ...]]] = {
    "lhfa": (
        "height-for-age",
        "Length/height-for-age z-score",
        "Z-score PB/U atau TB/U",
        "ilp-obs-zscore-height-for-age",
        ("height",),
    ),
    "wfa": (
        "weight-for-age",
        "Weight-for-age z-score",
        "Z-score BB/U",
        "ilp-obs-zscore-weight-for-age",
        ("weight",),
    ),
    "wflh": (
        "weight-for-height",
        "Weight-for-length/height z-score",
        "Z-score BB/PB atau BB/TB",
        "ilp-obs-zscore-weight-for-height",
        ("weight", "height"),
    ),
    "bfa": (
        "bmi-for-age",
        "BMI-for-age z-score",
        "Z-score IMT/U",
        "ilp-obs-zscore-bmi-for-age",
        ("weight", "height"),
    ),
}
METHOD = {
    "text": "WHO Child Growth Standards 2006 (LMS), computed by ILP Gateway as WHO Anthro does"
}


EVENT_KINDS: dict[Indicator, str] = {"lhfa": "haz", "wfa": "waz", "wflh": "whz", "bfa": "baz"}
_INDICATORS = {kind: indicator for indicator, kind in EVENT_KINDS.items()}


def received(res_id: str, kind: str, patient_id: str, day: str) -> bool:
    """Whether a z-score fact (``kind``) comes from a resource this server did not derive."""
    return kind in _INDICATORS and res_id != derived_id(_INDICATORS[kind], patient_id, day)


def derived_id(indicator: Indicator, patient_id: str, day: str) -> str:
    """The id of a child's z-score Observation of one day (stable, at most 64 characters)."""
    digest = hashlib.sha256(f"{patient_id}|{day}".encode()).hexdigest()[:24]
    return f"zscore-{indicator}-{digest}"


def derive(uow: UnitOfWork, patient_id: str, day: str) -> None:
    """Store (or update, or delete) the z-score Observations of a child's measurements of a day."""
    from server.services import resources  # resources calls into the recorder, which calls here

    latest = {row.kind: row for row in store.measurements(uow.connection, patient_id, day)}
    sources = _contents(uow, latest)
    scores = _scores(uow, patient_id, day, latest)
    others = {
        row.kind
        for row in store.zscores_of_day(uow.connection, patient_id, day)
        if received(row.res_id, row.kind, patient_id, day)
    }
    for indicator, (_, _, _, _, needs) in _DERIVED.items():
        res_id = derived_id(indicator, patient_id, day)
        value = scores.get(indicator)
        used = [sources[kind] for kind in needs if kind in sources]
        if value is None or len(used) < len(needs) or EVENT_KINDS[indicator] in others:
            resources.delete_derived(uow, "Observation", res_id)
            continue
        resources.put_derived(uow, _observation(indicator, res_id, patient_id, value, used))


def _contents(uow: UnitOfWork, latest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Observations of the day's weight and length/height (the last id of each kind)."""
    found: dict[str, dict[str, Any]] = {}
    for kind, row in latest.items():
        stored = uow.store.current("Observation", row.res_id)
        if stored is not None and stored.content is not None:
            found[kind] = stored.content
    return found


def _scores(
    uow: UnitOfWork, patient_id: str, day: str, latest: dict[str, Any]
) -> dict[Indicator, float | None]:
    """The rounded z-scores, from the measurements as the facts hold them (unit converted;
    a height's ``value2`` is 1 lying, 0 standing, None unknown)."""
    person = store.person(uow.connection, patient_id)
    if not latest or person is None or person.sex is None or person.birth_date is None:
        return {}
    weight, height = latest.get("weight"), latest.get("height")
    position = height.value2 if height is not None else None
    try:
        scores = z_scores(
            person.sex,
            date.fromisoformat(person.birth_date),
            date.fromisoformat(day),
            weight_kg=weight.value if weight is not None else None,
            length_cm=height.value if height is not None else None,
            measured_lying=None if position is None else position == 1.0,
        )
    except ValueError:  # measured before birth, or an impossible date
        return {}
    return scores.rounded()


def _observation(
    indicator: Indicator, res_id: str, patient_id: str, value: float, used: list[dict[str, Any]]
) -> dict[str, Any]:
    code, display, text, profile, _ = _DERIVED[indicator]
    first = used[0]
    meta: dict[str, Any] = {"profile": [f"{ILP}/StructureDefinition/{profile}"]}
    if first.get("meta", {}).get("security"):
        meta["security"] = first["meta"]["security"]  # a test record's label carries over
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": res_id,
        "meta": meta,
        "status": "final",
        "category": _VITAL_SIGNS,
        "code": {"coding": [{"system": GROWTH, "code": code, "display": display}], "text": text},
        "subject": {"reference": f"Patient/{patient_id}"},
    }
    for element in ("encounter", "effectiveDateTime", "effectivePeriod", "performer"):
        if element in first:
            observation[element] = first[element]
    observation["valueQuantity"] = {
        "value": value,
        "unit": "Z-score",
        "system": _UCUM,
        "code": "{Z-score}",
    }
    observation["method"] = METHOD
    observation["derivedFrom"] = [{"reference": f"Observation/{o['id']}"} for o in used]
    return observation
