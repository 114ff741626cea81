"""Blueprint ``dashboard`` at /dashboard: the PWS indicators per desa as HTML pages and CSV.

Pages: the kabupaten's desa (filtered by month and Puskesmas), a desa's Posyandu, and a
Posyandu's children at risk; every table also as CSV.  Numbers come from
``services/indicators`` (one ``overview`` call per table, one ``trend`` call per chart set);
sorting is server-side and charts are inline SVG, so the pages need no JavaScript and the
Content-Security-Policy forbids scripts and inline styles.  Errors are HTML pages in the
user's language.  Tables, charts and CSV rows are shaped in ``dashboard_report.py``, sign-in
(ILP_AUTH on) is ``dashboard_session.py``, the words ``dashboard_i18n.py``.  See
docs/dashboard.md.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, g, redirect, render_template, request
from flask import url_for as flask_url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from server.errors import FhirError, NotFound
from server.http import dashboard_report as report
from server.http import dashboard_session as session
from server.http import error_handlers, limits
from server.http.dashboard_i18n import STATUS_SYMBOLS, Words, language
from server.http.responses import compress
from server.services import indicators
from server.services.context import ServiceContext
from server.services.indicators import catalogue
from server.services.indicators.report import Area, Level, Overview, Value

logger = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_ERROR_TEXT = {403: "error_403", 404: "error_404", 429: "error_429"}

bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
)
bp.after_request(compress)  # a district's table is large; phones are on slow networks


def register(app: Flask) -> None:
    """Mount the dashboard on ``app``."""
    app.register_blueprint(bp)


@bp.get("/")
def overview() -> str:
    context, month = _context(), _month()
    area = _puskesmas_filter(context)
    table = _table(indicators.overview(context, month, "desa", area)) if month else None
    trend = indicators.trend(context, month, area) if month else {}
    return _page("overview.html", table=table, charts=_charts(trend), area=area)


@bp.get("/desa/<code>")
def desa(code: str) -> str:
    context, month = _context(), _month()
    area = _area(context, "desa", code)
    table = _table(indicators.overview(context, month, "posyandu", area)) if month else None
    trend = indicators.trend(context, month, area) if month else {}
    return _page("desa.html", table=table, charts=_charts(trend), area=area)


@bp.get("/posyandu/<org_id>")
def posyandu(org_id: str) -> Response:
    context, month = _context(), _month()
    area = _area(context, "posyandu", org_id)
    children = indicators.children_at_risk(context, org_id, month) if month else []
    parent = indicators.find_area(context, "desa", area.parent) if area.parent else None
    page = _page("posyandu.html", children=children, area=area, parent=parent)
    return _no_store(Response(page, mimetype="text/html"))


@bp.get("/export/overview.csv")
def export_overview() -> Response:
    context, month = _context(), _required_month()
    table = _table(indicators.overview(context, month, "desa", _puskesmas_filter(context)))
    return _csv(report.table_rows(table, _words(), _targets()), f"pws-{month}.csv")


@bp.get("/export/desa/<code>.csv")
def export_desa(code: str) -> Response:
    context, month = _context(), _required_month()
    table = _table(indicators.overview(context, month, "posyandu", _area(context, "desa", code)))
    rows = report.table_rows(table, _words(), _targets())
    return _csv(rows, f"pws-desa-{code}-{month}.csv")


@bp.get("/export/posyandu/<org_id>.csv")
def export_posyandu(org_id: str) -> Response:
    context, month = _context(), _required_month()
    _area(context, "posyandu", org_id)
    rows = report.children_rows(indicators.children_at_risk(context, org_id, month), _words())
    return _no_store(_csv(rows, f"balita-berisiko-{org_id}-{month}.csv"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse:
    if not _auth_on():
        return redirect(url("dashboard.overview"))
    if request.method == "GET":
        return _no_store(Response(_page("login.html", failed=False), mimetype="text/html"))
    session.check_csrf(signed_in=False)
    form = request.form
    token = session.sign_in(form.get("client_id", ""), form.get("client_secret", ""))
    if token is None:
        limits.charge_refusal()  # guessing secrets is paced like any refused request
        return _no_store(Response(_page("login.html", failed=True), 401, mimetype="text/html"))
    response = redirect(_next_url())
    session.keep_token(response, token)
    return response


@bp.post("/logout")
def logout() -> BaseResponse:
    if _auth_on():
        session.check_csrf(signed_in=True)
    response = redirect(url("dashboard.login" if _auth_on() else "dashboard.overview"))
    session.forget_token(response)
    return response


@bp.route("/<path:rest>")
def unknown(rest: str) -> Response:
    raise NotFound(f"no dashboard page {rest}")  # an HTML 404, not the API's OperationOutcome


@bp.before_request
def _require_sign_in() -> BaseResponse | None:
    """With ILP_AUTH on: the sign-in cookie's Caller, or a redirect to the sign-in page."""
    g.dashboard_caller = None
    g.gzip_min_bytes = current_app.extensions["ilp"].settings.gzip_min_bytes
    if not _auth_on() or request.endpoint in ("dashboard.login", "dashboard.static"):
        return None
    caller = session.caller()
    if caller is None:  # none, expired, forged, or the client was revoked
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        response = redirect(url("dashboard.login", next=target))
        session.forget_token(response)
        return response
    g.dashboard_caller = g.caller = caller  # what error_handlers audits a refusal under
    g.client_id = caller.client_id
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP  # security_headers.py keeps a view's own
    response.headers.setdefault("Cache-Control", "private, no-cache")
    session.save_csrf(response)
    return response


@bp.errorhandler(FhirError)
def _fhir_error(error: FhirError) -> Response:
    logger.info("dashboard %s %s: %s", error.status, type(error).__name__, error)
    if error.status in (401, 403):
        error_handlers.audit_refusal(error)  # an AuditEvent, as for a refused API request
    retry = {k: v for k, v in error.headers.items() if k == "Retry-After"}
    return _error_page(error.status, retry)


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> Response:
    """An HTML error page (also for the app's routing errors under /dashboard/)."""
    csrf = isinstance(error, session.CsrfRejected)
    allow = {k: v for k, v in error.get_response().headers.items() if k == "Allow"}
    return _error_page(error.code or 500, allow, "error_csrf" if csrf else None)


@bp.errorhandler(Exception)
def _fault(error: Exception) -> Response:
    reference = uuid.uuid4().hex
    logger.exception("dashboard internal error, reference %s", reference)
    return _error_page(500, {}, reference=reference)


def _error_page(
    status: int, headers: dict[str, str], key: str | None = None, reference: str | None = None
) -> Response:
    """The error page: the status and a sentence in the user's language, never details."""
    key = "error_500" if status >= 500 else key or _ERROR_TEXT.get(status, "error_400")
    page = render_template(  # the globals too: a routing error is outside the blueprint
        "dashboard/error.html", status=status, key=key, reference=reference, **_template_globals()
    )
    return _no_store(Response(page, status, headers=headers, mimetype="text/html"))


def url(endpoint: str, **params: Any) -> str:
    """A dashboard URL keeping the page's language; empty parameters are left out."""
    kept: dict[str, Any] = {k: v for k, v in params.items() if v not in (None, "")}
    if _lang() == "en":
        kept["lang"] = "en"
    return flask_url_for(endpoint, **kept)


@bp.context_processor
def _template_globals() -> dict[str, Any]:
    other: dict[str, Any] = {"lang": "en"} if _lang() == "id" else {}
    if request.endpoint and request.method == "GET" and request.url_rule is not None:
        here: dict[str, Any] = {**(request.view_args or {}), **request.args.to_dict()}
        here.pop("lang", None)
        switch_url = flask_url_for(request.endpoint, **{**here, **other})
    else:
        switch_url = flask_url_for("dashboard.overview", **other)
    signed_in = g.get("dashboard_caller") is not None
    return {
        "w": _words(),
        "url": url,
        "switch_url": switch_url,
        "signed_in": signed_in,
        "csrf_token": lambda: session.csrf_token(signed_in),
        "symbols": STATUS_SYMBOLS,
    }


def _lang() -> str:
    return language(request.values.get("lang"))


def _words() -> Words:
    return Words(_lang())


def _context() -> ServiceContext:
    """The services, acting for the signed-in client (ILP_AUTH on) or ``g.caller``."""
    context: ServiceContext = current_app.extensions["ilp"]
    caller = g.get("dashboard_caller") or g.get("caller")
    return context.for_caller(caller) if caller is not None else context


def _auth_on() -> bool:
    return bool(current_app.extensions["ilp"].settings.auth)


def _targets() -> dict[str, float | None]:
    return catalogue.targets(_context().settings.targets)


def _month() -> str | None:
    """The ``month`` asked for (NotFound unless it holds data), else the newest; None when
    there is no data at all."""
    available = g.dashboard_months = indicators.months(_context())
    asked = request.args.get("month")
    if asked and asked not in available:
        raise NotFound(f"no data for month {asked}")
    month = g.dashboard_month = asked or (available[0] if available else None)
    return month


def _required_month() -> str:
    """The month of an export: as for a page, but without any data there is no CSV."""
    month = _month()
    if month is None:
        raise NotFound("no data yet")
    return month


def _puskesmas_filter(context: ServiceContext) -> Area | None:
    """The Puskesmas of ``?puskesmas`` (NotFound when unknown), None for all of them."""
    g.dashboard_puskesmas = indicators.puskesmas(context)
    code = request.args.get("puskesmas")
    found = next((a for a in g.dashboard_puskesmas if a.code == code), None) if code else None
    if code and found is None:
        raise NotFound(f"no Puskesmas {code}")
    return found


def _area(context: ServiceContext, level: Level, code: str) -> Area:
    found = indicators.find_area(context, level, code)
    if found is None:
        raise NotFound(f"no {level} {code}")
    return found


def _table(overview: Overview) -> report.Table:
    return report.sort_table(overview, request.args.get("sort"), request.args.get("dir"))


def _charts(trend: dict[str, list[tuple[str, Value]]]) -> list[report.Chart]:
    return report.charts(trend, _targets())


def _page(template: str, **values: Any) -> str:
    targets = _targets()
    return render_template(
        f"dashboard/{template}",
        months=g.get("dashboard_months", []),
        month=g.get("dashboard_month"),
        puskesmas_list=g.get("dashboard_puskesmas", []),
        groups=report.groups(),
        GROUPS=catalogue.GROUPS,
        value_of=report.value_of,
        reason_names=report.reason_names,
        age_in_months=report.age_in_months,
        light=lambda i, v: catalogue.status(i, v.rate, targets.get(i.code)),
        **values,
    )


def _csv(rows: Iterator[list[object]], filename: str) -> Response:
    name = _UNSAFE_FILE_CHARS.sub("_", filename)
    disposition = f'attachment; filename="{name}"'
    return Response(
        report.csv_body(rows), mimetype="text/csv", headers={"Content-Disposition": disposition}
    )


def _next_url() -> str:
    """Where to go after sign-in: the dashboard path in ``next``, never another site."""
    target = request.form.get("next", "")
    parts = urlsplit(target)
    local = not parts.scheme and not parts.netloc and "\\" not in target
    if local and (parts.path == "/dashboard" or parts.path.startswith("/dashboard/")):
        return target
    return url("dashboard.overview")


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response
