"""What a resource contributes to the indicators: pure functions of its content.

A Patient gives a person (sex, birth date, home desa), an Organization a facility of the network,
an ilp-wilayah Location the name of an area, and Observations and Encounters events: a
measurement, a z-score, an antenatal or home visit.  Codes are the ones docs/indicators.md lists;
units are converted to the one each rule uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.fhir.growth import PLAUSIBLE

LOINC = "http://loinc.org"
GROWTH = "https://fhir.ilp-gateway.id/CodeSystem/ilp-obs-growth-indicator"
SIKLUS_HIDUP = "https://fhir.ilp-gateway.id/CodeSystem/ilp-siklus-hidup"
FACILITY_TYPE = "https://fhir.ilp-gateway.id/CodeSystem/ilp-facility-type"
ADMINISTRATIVE_CODE = "https://fhir.kemkes.go.id/r4/StructureDefinition/administrativeCode"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
WILAYAH = "https://fhir.ilp-gateway.id/StructureDefinition/ilp-wilayah"

LYING, STANDING = "8306-3", "8308-9"
_HEIGHT_CODES = {"8302-2", LYING, STANDING}
_GLUCOSE_CODES = {"2339-0", "2345-7", "15074-8", "41653-7"}  # blood/serum/capillary glucose
# z-score code -> event kind, and WHO's plausibility bounds for it
ZSCORE_KINDS = {
    "height-for-age": "haz",
    "weight-for-age": "waz",
    "weight-for-height": "whz",
    "bmi-for-age": "baz",
}
_BOUNDS = {"haz": PLAUSIBLE["lhfa"], "waz": PLAUSIBLE["wfa"], "whz": PLAUSIBLE["wflh"]}
_BOUNDS["baz"] = PLAUSIBLE["bfa"]
_NOT_HAPPENED = {"entered-in-error", "cancelled"}
_UNIT_FACTORS = {  # (kind, UCUM code) -> factor to the unit of the rules
    ("weight", "kg"): 1.0,
    ("weight", "g"): 0.001,
    ("height", "cm"): 1.0,
    ("height", "m"): 100.0,
    ("height", "mm"): 0.1,
    ("muac", "cm"): 1.0,
    ("muac", "mm"): 0.1,
    ("hb", "g/dL"): 1.0,
    ("hb", "g/L"): 0.1,
    ("glucose", "mg/dL"): 1.0,
    ("glucose", "mmol/L"): 18.016,
    ("bp", "mm[Hg]"): 1.0,
}


@dataclass(frozen=True)
class Event:
    kind: str  # weight height muac hb bp glucose haz waz whz baz anc home-visit
    patient_id: str
    day: str  # YYYY-MM-DD as recorded (the local date of the device)
    value: float | None = None
    value2: float | None = None  # diastolic for bp; 1 lying / 0 standing for height

    @property
    def month(self) -> str:
        return self.day[:7]


@dataclass(frozen=True)
class Person:
    name: str
    sex: str | None
    birth_date: str | None
    village: str


@dataclass(frozen=True)
class Facility:
    name: str
    kind: str | None
    village: str | None
    parent: str | None


def person(patient: dict[str, Any]) -> Person:
    birth = patient.get("birthDate")
    birth_date = birth if isinstance(birth, str) and len(birth) == 10 else None
    sex = patient.get("gender") if patient.get("gender") in ("male", "female") else None
    homes = [a for a in _list(patient.get("address")) if isinstance(a, dict)]
    homes.sort(key=lambda a: a.get("use") != "home")
    village = next((v for v in (_admin_code(a, "village") for a in homes) if v), "")
    return Person(_name(patient)[:200], sex, birth_date, village)


def facility(organization: dict[str, Any]) -> Facility:
    kinds = [
        c.get("code") for t in _list(organization.get("type")) for c in _codings(t, FACILITY_TYPE)
    ]
    addresses = [a for a in _list(organization.get("address")) if isinstance(a, dict)]
    village = next((v for v in (_admin_code(a, "village") for a in addresses) if v), None)
    parent = _target(organization.get("partOf"), "Organization")
    name = organization.get("name")
    return Facility(
        name[:200] if isinstance(name, str) else "", kinds[0] if kinds else None, village, parent
    )


def area(location: dict[str, Any]) -> tuple[str, str] | None:
    """(Kemendagri code, name) of an ilp-wilayah Location: its deepest administrative code."""
    profiles = _list(_get(location, "meta", "profile"))
    if WILAYAH not in profiles or not isinstance(location.get("name"), str):
        return None
    found = location.get("address")
    address: dict[str, Any] = found if isinstance(found, dict) else {}
    for part in ("village", "district", "city", "province"):
        code = _admin_code(address, part)
        if code:
            return code, location["name"][:200]
    return None


def managing_organization(location: dict[str, Any]) -> str | None:
    return _target(location.get("managingOrganization"), "Organization")


def events(resource: dict[str, Any]) -> list[Event]:
    """The events of an Observation or Encounter (none for other types or other codes)."""
    if resource.get("status") in _NOT_HAPPENED:
        return []
    if resource.get("resourceType") == "Observation":
        return _observation_events(resource)
    if resource.get("resourceType") == "Encounter":
        return _encounter_events(resource)
    return []


def _observation_events(obs: dict[str, Any]) -> list[Event]:
    patient = _target(obs.get("subject"), "Patient")
    day = _day(obs.get("effectiveDateTime")) or _day(_get(obs, "effectivePeriod", "start"))
    if patient is None or day is None:
        return []
    loinc = {c.get("code") for c in _codings(obs.get("code"), LOINC)}
    growth = [c.get("code") for c in _codings(obs.get("code"), GROWTH)]
    found: list[Event] = []
    if growth and growth[0] in ZSCORE_KINDS:
        kind = ZSCORE_KINDS[growth[0]]
        value = _number(_get(obs, "valueQuantity", "value"))
        low, high = _BOUNDS[kind]
        if value is not None and low <= round(value, 2) <= high:  # WHO leaves flagged ones out
            found.append(Event(kind, patient, day, value))
        return found
    if "29463-7" in loinc:
        found.append(_measure("weight", patient, day, obs.get("valueQuantity")))
    elif loinc & _HEIGHT_CODES:
        position = 1.0 if LYING in loinc else 0.0 if STANDING in loinc else None
        found.append(_measure("height", patient, day, obs.get("valueQuantity"), position))
    elif "56072-2" in loinc:
        found.append(_measure("muac", patient, day, obs.get("valueQuantity")))
    elif "718-7" in loinc:
        found.append(_measure("hb", patient, day, obs.get("valueQuantity")))
    elif loinc & _GLUCOSE_CODES:
        found.append(_measure("glucose", patient, day, obs.get("valueQuantity")))
    elif loinc & {"85354-9", "8480-6", "8462-4"}:
        systolic = _component(obs, "8480-6")
        diastolic = _component(obs, "8462-4")
        if systolic is not None or diastolic is not None:
            found.append(Event("bp", patient, day, systolic, diastolic))
    return [event for event in found if event.value is not None or event.kind == "bp"]


def _encounter_events(encounter: dict[str, Any]) -> list[Event]:
    patient = _target(encounter.get("subject"), "Patient")
    day = _day(_get(encounter, "period", "start"))
    if patient is None or day is None:
        return []
    klass = encounter.get("class")
    home = isinstance(klass, dict) and klass.get("system") == ACT_CODE and klass.get("code") == "HH"
    if home:
        return [Event("home-visit", patient, day)]
    stages = {
        c.get("code") for t in _list(encounter.get("type")) for c in _codings(t, SIKLUS_HIDUP)
    }
    return [Event("anc", patient, day)] if "ibu" in stages else []


def _measure(
    kind: str, patient: str, day: str, quantity: Any, value2: float | None = None
) -> Event:
    value = _number(_get(quantity, "value"))
    unit = _get(quantity, "code") or _get(quantity, "unit")
    factor = _UNIT_FACTORS.get((kind, unit)) if isinstance(unit, str) else None
    if factor is None and unit is None:  # no unit at all: trust the profile's unit
        factor = 1.0
    converted = value * factor if value is not None and factor is not None else None
    return Event(kind, patient, day, converted, value2)


def _component(obs: dict[str, Any], code: str) -> float | None:
    if code in {c.get("code") for c in _codings(obs.get("code"), LOINC)}:
        return _number(_get(obs, "valueQuantity", "value"))
    for component in _list(obs.get("component")):
        if code in {c.get("code") for c in _codings(_get(component, "code"), LOINC)}:
            return _number(_get(component, "valueQuantity", "value"))
    return None


def _admin_code(address: dict[str, Any], part: str) -> str | None:
    for extension in _list(address.get("extension")):
        if isinstance(extension, dict) and extension.get("url") == ADMINISTRATIVE_CODE:
            for item in _list(extension.get("extension")):
                if isinstance(item, dict) and item.get("url") == part:
                    code = item.get("valueCode")
                    if isinstance(code, str) and code.isascii() and code.isdigit():
                        return code[:16]
    return None


def _name(patient: dict[str, Any]) -> str:
    for name in _list(patient.get("name")):
        if isinstance(name, dict):
            if isinstance(name.get("text"), str):
                return str(name["text"])
            parts = [
                p for p in _list(name.get("given")) + [name.get("family")] if isinstance(p, str)
            ]
            if parts:
                return " ".join(parts)
    return ""


def _codings(concept: Any, system: str) -> list[dict[str, Any]]:
    return [
        c
        for c in _list(_get(concept, "coding"))
        if isinstance(c, dict) and c.get("system") == system and isinstance(c.get("code"), str)
    ]


def _target(reference: Any, resource_type: str) -> str | None:
    text = _get(reference, "reference")
    if isinstance(text, str) and text.startswith(resource_type + "/"):
        found = text.removeprefix(resource_type + "/").split("/")[0]
        return found[:64] or None
    return None


def _day(value: Any) -> str | None:
    return value[:10] if isinstance(value, str) and len(value) >= 10 else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _get(value: Any, *path: str) -> Any:
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
