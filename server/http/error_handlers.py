"""Every error leaves as an OperationOutcome: FhirError, Werkzeug HTTP errors, and faults.

Client errors are logged quietly; a fault is logged with its traceback under a
reference that the client sees instead of the exception text.
"""

from __future__ import annotations

import logging
import uuid

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from server.errors import FhirError, Issue, operation_outcome
from server.fhir import jsonio
from server.services import audit
from server.services.access import Caller
from server.services.context import ServiceContext

logger = logging.getLogger(__name__)

_HTTP_ISSUE_CODES = {
    404: "not-found",
    405: "not-supported",
    413: "too-costly",
    415: "not-supported",
}
_FHIR_JSON = "application/fhir+json; charset=utf-8"


def register(app: Flask) -> None:
    app.register_error_handler(FhirError, _fhir_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _fault)


def _outcome_response(
    status: int, issues: list[Issue], headers: dict[str, str] | None = None
) -> Response:
    response = Response(jsonio.dumps(operation_outcome(issues)), status=status, headers=headers)
    response.content_type = _FHIR_JSON
    return response


def _fhir_error(error: FhirError) -> Response:
    logger.info("%s %s: %s", error.status, type(error).__name__, error)
    if error.status in (401, 403):
        audit_refusal(error)
    return _outcome_response(error.status, error.issues, error.headers)


def audit_refusal(error: FhirError) -> None:
    """An AuditEvent for a refused request, in a transaction of its own (services/audit.py)."""
    context: ServiceContext = current_app.extensions["ilp"]
    if not (context.settings.auth and context.settings.audit):
        return
    caller = g.get("caller")
    if not isinstance(caller, Caller) or caller.client_id is None:
        caller = Caller(None, {}, None, request.remote_addr, audited=True)
    try:
        with context.unit_of_work(write=True) as uow:
            audit.refused(uow, caller, error.status, str(error), f"{request.method} {request.path}")
    except Exception:  # the client still gets its 401/403; the operator gets the log
        logger.exception("could not store the AuditEvent of a refused request")


def _http_error(error: HTTPException) -> Response:
    if request.path.startswith("/dashboard/"):  # routing errors (405) never reach the blueprint
        from server.http import dashboard  # imports this module

        return dashboard.http_error(error)
    status = error.code or 500
    code = _HTTP_ISSUE_CODES.get(status, "processing" if status >= 500 else "invalid")
    text = error.description or error.name
    headers = {
        k: v for k, v in error.get_response().headers.items() if k in ("Allow", "Retry-After")
    }
    return _outcome_response(status, [Issue("error", code, f"{error.name}: {text}")], headers)


def _fault(error: Exception) -> Response:
    if isinstance(error, HTTPException):
        return _http_error(error)
    reference = uuid.uuid4().hex
    logger.exception("internal error, reference %s", reference)
    return _outcome_response(
        500, [Issue("fatal", "exception", f"internal error, reference {reference}")]
    )
