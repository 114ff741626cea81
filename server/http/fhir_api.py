"""Blueprint ``fhir`` at /fhir: one small view per RESTful interaction.

Each view parses the request, calls one service inside one unit of work, and
renders the result.  See https://hl7.org/fhir/R4/http.html.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, request

from server.errors import InvalidRequest, Issue
from server.http import negotiation as neg
from server.http.responses import compress, fhir_response, resource_response, write_response
from server.services import bundles, resources
from server.services import history as history_service
from server.services.capability import capability_statement
from server.services.context import ServiceContext
from server.services.indicators import catalogue
from server.services.indicators import measures as measure_service
from server.services.operations import import_records as import_operation
from server.services.operations import validate as validate_operation
from server.services.search import search_bundle
from server.services.validation import parse_json, parse_resource

bp = Blueprint("fhir", __name__, url_prefix="/fhir")
bp.after_request(compress)


def ctx() -> ServiceContext:
    """The services, acting for the request's caller (``http/auth.py``)."""
    context: ServiceContext = current_app.extensions["ilp"]
    caller = g.get("caller")
    return context.for_caller(caller) if caller is not None else context


@bp.before_request
def _negotiate() -> None:
    # Refuse an unacceptable format before doing any work, writes included.
    g.fhir_mimetype = neg.response_mimetype(request)
    g.gzip_min_bytes = ctx().settings.gzip_min_bytes
    if "\x00" in request.path:  # no id or type holds it, and PostgreSQL text cannot
        raise InvalidRequest("The URL path must not contain U+0000 (%00)")


@bp.get("/metadata")
def metadata() -> Response:
    settings = ctx().settings
    return fhir_response(
        capability_statement(
            settings.fhir_base,
            allow_update_create=settings.allow_update_create,
            search_params=ctx().search_params,
        )
    )


@bp.post("/", strict_slashes=False)
def transaction() -> Response:
    """batch or transaction (http.html#transaction): the response Bundle, or the failure."""
    neg.require_media_type(request, neg.RESOURCE_MEDIA_TYPES)
    bundle = bundles.parse_bundle(request.get_data(), ctx().settings)
    return fhir_response(bundles.process(ctx(), bundle, prefer=neg.prefer_return(request)))


@bp.post("/$import-records")
def import_records() -> Response:
    """$import-records (docs/formats.md#importing): a register file mapped and stored."""
    status, outcome = import_operation.import_records(
        ctx(), request.get_data(), request.mimetype, _query()
    )
    return fhir_response(outcome, status)


@bp.get("/Measure")
def measures() -> Response:
    """The PWS indicators as Measures (docs/indicators.md#fhir), computed, not stored."""
    found = [measure_service.measure(i) for i in catalogue.INDICATORS]
    return fhir_response(measure_service.searchset(ctx().settings.fhir_base, found, request.url))


@bp.get("/Measure/<mid>")
def read_measure(mid: str) -> Response:
    return fhir_response(measure_service.measure(measure_service.find_measure(mid)))


@bp.route("/Measure/<mid>/$evaluate-measure", methods=["GET", "POST"])
def evaluate_measure(mid: str) -> Response:
    """$evaluate-measure: a summary MeasureReport for periodStart/periodEnd and subject."""
    indicator = measure_service.find_measure(mid)
    params = dict(_query())
    if request.method == "POST" and request.get_data():
        params.update(measure_service.parameters(parse_json(request.get_data())))
    month = measure_service.period_month(params.get("periodStart"), params.get("periodEnd"))
    area = measure_service.subject_area(ctx(), params.get("subject"))
    return fhir_response(measure_service.evaluate(ctx(), [indicator], month, area)[0])


@bp.get("/MeasureReport")
def measure_reports() -> Response:
    found = measure_service.search_reports(ctx(), _query())
    return fhir_response(measure_service.searchset(ctx().settings.fhir_base, found, request.url))


@bp.get("/<rtype>/<rid>")
def read(rtype: str, rid: str) -> Response:
    with ctx().unit_of_work() as uow:
        stored = resources.read(uow, rtype, rid)
    return resource_response(stored)


@bp.get("/<rtype>/<rid>/_history/<vid>")
def vread(rtype: str, rid: str, vid: str) -> Response:
    with ctx().unit_of_work() as uow:
        stored = resources.vread(uow, rtype, rid, vid)
    return resource_response(stored)


@bp.post("/<rtype>")
def create(rtype: str) -> Response:
    resources.require_type(rtype, "create")
    body, warnings = _resource_body(rtype)
    with ctx().unit_of_work(write=True) as uow:
        result = resources.create(
            uow, rtype, body, if_none_exist=request.headers.get("If-None-Exist")
        )
    status = 201 if result.created else 200
    return write_response(ctx().settings.fhir_base, result.stored, status, warnings)


@bp.put("/<rtype>/<rid>")
def update(rtype: str, rid: str) -> Response:
    resources.require_type(rtype, "update")
    body, warnings = _resource_body(rtype)
    with ctx().unit_of_work(write=True) as uow:
        result = resources.update(
            uow,
            rtype,
            rid,
            body,
            if_match=neg.if_match_version(request),
            options=ctx().write_options,
        )
    status = 201 if result.created else 200
    return write_response(ctx().settings.fhir_base, result.stored, status, warnings)


@bp.put("/<rtype>")
def conditional_update(rtype: str) -> Response:
    resources.require_type(rtype, "update")
    body, warnings = _resource_body(rtype)
    with ctx().unit_of_work(write=True) as uow:
        result = resources.conditional_update(
            uow,
            rtype,
            _query(),
            body,
            if_match=neg.if_match_version(request),
            options=ctx().write_options,
        )
    status = 201 if result.created else 200
    return write_response(ctx().settings.fhir_base, result.stored, status, warnings)


@bp.patch("/<rtype>/<rid>")
def patch(rtype: str, rid: str) -> Response:
    resources.require_type(rtype, "patch")
    neg.require_media_type(request, neg.PATCH_MEDIA_TYPES)
    operations = parse_json(request.get_data())
    with ctx().unit_of_work(write=True) as uow:
        result = resources.patch(
            uow,
            rtype,
            rid,
            operations,
            if_match=neg.if_match_version(request),
            check=ctx().validation.check_write,
        )
    return write_response(ctx().settings.fhir_base, result.stored, 200, result.issues)


@bp.delete("/<rtype>/<rid>")
def delete(rtype: str, rid: str) -> Response:
    with ctx().unit_of_work(write=True) as uow:
        tombstone = resources.delete(uow, rtype, rid)
    headers = {"ETag": f'W/"{tombstone.version_id}"'} if tombstone else {}
    return fhir_response(None, 204, headers)


@bp.delete("/<rtype>")
def conditional_delete(rtype: str) -> Response:
    resources.require_type(rtype, "delete")
    with ctx().unit_of_work(write=True) as uow:
        resources.conditional_delete(uow, rtype, _query())
    return fhir_response(None, 204)


@bp.get("/<rtype>")
def search_type(rtype: str) -> Response:
    return _search(rtype, _query())


@bp.post("/<rtype>/_search")
def search_post(rtype: str) -> Response:
    neg.require_media_type(request, frozenset({"application/x-www-form-urlencoded"}))
    return _search(rtype, _query() + list(request.form.items(multi=True)))


@bp.post("/<rtype>/$validate")
def validate_type(rtype: str) -> Response:
    """$validate (resource-operation-validate.html): always an OperationOutcome."""
    return _validate(rtype, None)


@bp.post("/<rtype>/<rid>/$validate")
def validate_instance(rtype: str, rid: str) -> Response:
    return _validate(rtype, rid)


@bp.get("/_history")
def history_system() -> Response:
    return _history(None, None)


@bp.get("/<rtype>/_history")
def history_type(rtype: str) -> Response:
    return _history(rtype, None)


@bp.get("/<rtype>/<rid>/_history")
def history_instance(rtype: str, rid: str) -> Response:
    return _history(rtype, rid)


def _search(rtype: str, params: list[tuple[str, str]]) -> Response:
    resources.require_type(rtype, "search-type")
    settings = ctx().settings
    with ctx().unit_of_work() as uow:
        bundle = search_bundle(
            uow,
            settings.fhir_base,
            rtype,
            params,
            default_count=settings.default_count,
            max_count=settings.max_count,
            lenient=neg.prefer_lenient(request),
        )
    return fhir_response(bundle)


def _history(rtype: str | None, rid: str | None) -> Response:
    settings = ctx().settings
    with ctx().unit_of_work() as uow:
        bundle = history_service.history(
            uow,
            settings.fhir_base,
            rtype,
            rid,
            _query(),
            default_count=settings.default_count,
            max_count=settings.max_count,
        )
    return fhir_response(bundle)


def _validate(rtype: str, rid: str | None) -> Response:
    raw = request.get_data()
    if raw.strip():
        neg.require_media_type(request, neg.RESOURCE_MEDIA_TYPES)
    return fhir_response(validate_operation.validate(ctx(), rtype, rid, raw, _query()))


def _resource_body(rtype: str) -> tuple[dict[str, Any], list[Issue]]:
    """The parsed body, checked (structure, then profiles), and the profiles' warnings."""
    neg.require_media_type(request, neg.RESOURCE_MEDIA_TYPES)
    body = parse_resource(request.get_data(), rtype)
    return body, ctx().validation.check_write(body)


def _query() -> list[tuple[str, str]]:
    return list(request.args.items(multi=True))
