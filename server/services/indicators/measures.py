"""The indicators as FHIR: a Measure per indicator, MeasureReports per area and month.

``$evaluate-measure`` (https://hl7.org/fhir/R4/measure-operation-evaluate-measure.html) and
``GET /fhir/MeasureReport?measure=&subject=&period=`` compute summary reports from the same
counts the dashboard shows, so the national level can take them as FHIR.  The indicators are
monthly: a report covers one calendar month.  docs/indicators.md#fhir.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from server.errors import InvalidRequest, NotFound
from server.services.indicators import catalogue, overview, summary
from server.services.indicators.catalogue import Indicator
from server.services.indicators.report import Area, Level, Value
from server.services.versions import format_instant, now
from server.storage import indicators as store

if TYPE_CHECKING:
    from server.services.context import ServiceContext

ILP = "https://fhir.ilp-gateway.id"
_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
_SCORING = "http://terminology.hl7.org/CodeSystem/measure-scoring"
_IMPROVEMENT = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
_UCUM = "http://unitsofmeasure.org"
_REGION_LEVELS: dict[int, Level] = {10: "desa", 6: "kecamatan"}  # by Kemendagri code length


def measure_url(indicator: Indicator) -> str:
    return f"{ILP}/Measure/{indicator.code}"


def measure(indicator: Indicator) -> dict[str, Any]:
    """The Measure of an indicator (its definitions in Bahasa Indonesia and English)."""
    scoring = "cohort" if indicator.is_count else "proportion"
    populations = [
        _definition("initial-population", indicator.numerator_en, indicator.numerator_id)
    ]
    if not indicator.is_count:
        populations = [
            _definition("initial-population", indicator.denominator_en, indicator.denominator_id),
            _definition("denominator", indicator.denominator_en, indicator.denominator_id),
            _definition("numerator", indicator.numerator_en, indicator.numerator_id),
        ]
    resource: dict[str, Any] = {
        "resourceType": "Measure",
        "id": indicator.code,
        "url": measure_url(indicator),
        "version": "0.1.0",
        "name": "ILP" + "".join(part.capitalize() for part in indicator.code.split("-")),
        "title": indicator.name_id,
        "subtitle": indicator.name_en,
        "status": "active",
        "experimental": False,
        "publisher": "ILP Gateway",
        "description": (
            f"{indicator.name_en}: {indicator.numerator_en}"
            + (f", of {indicator.denominator_en}" if indicator.denominator_en else "")
            + ". Monthly, per area; see docs/indicators.md."
        ),
        "scoring": {"coding": [{"system": _SCORING, "code": scoring}]},
        "group": [{"code": {"text": indicator.group}, "population": populations}],
    }
    if not indicator.is_count:
        notation = "decrease" if indicator.lower_is_better else "increase"
        resource["improvementNotation"] = {"coding": [{"system": _IMPROVEMENT, "code": notation}]}
    return resource


def find_measure(ref: str) -> Indicator:
    """The indicator a Measure id or canonical URL names; NotFound otherwise."""
    code = ref.split("|")[0].removeprefix(f"{ILP}/Measure/").removeprefix("Measure/")
    if code not in catalogue.BY_CODE:
        raise NotFound(f"Measure {ref!r} is not known; GET /fhir/Measure lists them")
    return catalogue.BY_CODE[code]


def period_month(start: str | None, end: str | None) -> str:
    """The calendar month a period lies in (YYYY-MM); InvalidRequest otherwise."""
    if not start:
        raise InvalidRequest("periodStart (or period) is required: a month, e.g. 2026-10")
    month = start[:7]
    if end and end[:7] != month:
        raise InvalidRequest(
            "ILP indicators are monthly: periodStart and periodEnd must lie in one calendar month",
            "periodEnd",
        )
    if not summary.is_month(month):
        raise InvalidRequest(f"{start!r} is not a date (YYYY-MM or YYYY-MM-DD)", "periodStart")
    return month


def subject_area(context: ServiceContext, subject: str | None) -> Area | None:
    """The area a subject reference names: an ilp-wilayah Location (kabupaten, kecamatan,
    desa), a facility's Location or Organization (Puskesmas, Posyandu); None: all data."""
    if not subject:
        return None
    kind, _, res_id = subject.partition("/")
    with context.engine.connect() as connection:
        for area in store.areas(connection):
            if kind == "Location" and area.location == res_id:
                region = _REGION_LEVELS.get(len(area.code), "kabupaten")
                return Area(region, area.code, area.name, area.location)
        for facility in store.facilities(connection):
            named = (kind == "Organization" and facility.org_id == res_id) or (
                kind == "Location" and (facility.location or facility.org_id) == res_id
            )
            if named and facility.kind in ("puskesmas", "posyandu"):
                level: Level = "puskesmas" if facility.kind == "puskesmas" else "posyandu"
                return Area(level, facility.org_id, facility.name, facility.location)
    raise NotFound(f"Subject {subject!r} is not an area or facility the indicators know")


def evaluate(
    context: ServiceContext, indicators: list[Indicator], month: str, area: Area | None
) -> list[dict[str, Any]]:
    """Summary MeasureReports of ``indicators`` for ``area`` (None: all) in ``month``."""
    context.caller.require("MeasureReport", "r")
    values = overview(context, month, "desa", area).total.values
    return [report(i, month, area, values.get(i.code, _empty(i))) for i in indicators]


def report(indicator: Indicator, month: str, area: Area | None, value: Value) -> dict[str, Any]:
    start, end = f"{month}-01", summary.month_end(month).isoformat()
    place = area.code if area is not None else "all"
    resource: dict[str, Any] = {
        "resourceType": "MeasureReport",
        "id": f"{indicator.code}-{place}-{month}"[:64],
        "status": "complete",
        "type": "summary",
        "measure": measure_url(indicator),
        "date": format_instant(now()),
        "reporter": {"display": "ILP Gateway"},
        "period": {"start": start, "end": end},
    }
    if area is not None:
        subject: dict[str, Any] = {"display": area.name}
        if area.location:
            subject["reference"] = f"Location/{area.location}"
        else:
            subject["identifier"] = {"value": area.code}
        resource["subject"] = subject
    if area is not None and area.level in ("puskesmas", "posyandu"):
        resource["reporter"] = {"reference": f"Organization/{area.code}", "display": area.name}
    populations = [_count("initial-population", value.numerator)]
    group: dict[str, Any] = {"population": populations}
    if not indicator.is_count:
        denominator = value.denominator or 0
        group["population"] = [
            _count("initial-population", denominator),
            _count("denominator", denominator),
            _count("numerator", value.numerator),
        ]
        if value.rate is not None:
            group["measureScore"] = {
                "value": round(value.rate, 2),
                "unit": "%",
                "system": _UCUM,
                "code": "%",
            }
    resource["group"] = [group]
    return resource


def _empty(indicator: Indicator) -> Value:
    return Value(0, None if indicator.is_count else 0)


def _definition(code: str, english: str | None, indonesian: str | None) -> dict[str, Any]:
    return {
        "code": {"coding": [{"system": _POPULATION, "code": code}]},
        "description": f"{english} ({indonesian})",
        "criteria": {"language": "text/plain", "expression": english},
    }


def _count(code: str, count: int) -> dict[str, Any]:
    return {"code": {"coding": [{"system": _POPULATION, "code": code}]}, "count": count}


def searchset(base: str, found: list[dict[str, Any]], self_url: str) -> dict[str, Any]:
    """A searchset Bundle of computed resources (all on one page: at most one per measure)."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(found),
        "link": [{"relation": "self", "url": self_url}],
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in found
        ],
    }


def search_reports(context: ServiceContext, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """``GET MeasureReport?measure=&subject=&period=``: computed summary reports.

    ``period`` names a month (``2026-10``, ``eq2026-10``); ``measure`` and ``subject`` may be
    left out (every measure; all data).  Other parameters are refused.
    """
    allowed = {"measure", "subject", "period"}
    unknown = sorted({k for k, _ in params} - allowed - {"_format", "_pretty"})
    if unknown:
        raise InvalidRequest(
            f"MeasureReport is computed, not stored: it is searched by measure, subject and "
            f"period only, not {', '.join(unknown)}",
            "MeasureReport",
        )
    values = {k: v for k, v in params}
    period = values.get("period", "").removeprefix("eq")
    month = period_month(period or None, None)
    chosen = list(catalogue.INDICATORS)
    if values.get("measure"):
        chosen = [find_measure(m) for m in values["measure"].split(",")]
    return evaluate(context, chosen, month, subject_area(context, values.get("subject")))


def parameters(body: Any) -> dict[str, str]:
    """The inputs of a POSTed Parameters resource: periodStart, periodEnd, subject, ..."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise InvalidRequest("The body of $evaluate-measure must be a Parameters resource")
    found: dict[str, str] = {}
    for index, item in enumerate(body.get("parameter") or []):
        name = item.get("name") if isinstance(item, dict) else None
        values = [v for k, v in item.items() if k.startswith("value")] if name else []
        if not isinstance(name, str) or len(values) != 1 or not isinstance(values[0], str):
            raise InvalidRequest(
                "Each parameter needs a name and one value (valueDate, valueString)",
                f"Parameters.parameter[{index}]",
            )
        found[name] = values[0]
    return found
