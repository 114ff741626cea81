"""Blueprint ``admin`` at /admin: what an operator checks, as plain JSON.

``GET /admin/sync``: outbox rows per state, resources mapped upstream, and the latest
problems (failed, parked, or retried rows) with their reasons and the upstream's
OperationOutcome; the same as ``ilp sync status --json``.  ``?limit=`` bounds the problems.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify, request

from server.errors import Forbidden, InvalidRequest
from server.services import sync
from server.services.access import Caller
from server.services.context import ServiceContext

bp = Blueprint("admin", __name__, url_prefix="/admin")
MAX_PROBLEMS = 1000


@bp.get("/sync")
def sync_status() -> Response:
    raw = request.args.get("limit", "50")
    if not raw.isdigit() or not 0 < int(raw) <= MAX_PROBLEMS:
        raise InvalidRequest(f"limit must be a whole number from 1 to {MAX_PROBLEMS}")
    context: ServiceContext = current_app.extensions["ilp"]
    caller = g.get("caller")
    if isinstance(caller, Caller) and caller.bound:
        raise Forbidden("Sync status is for operators: clients bound to no facility")
    response = jsonify(sync.status(context, int(raw)))
    response.headers["Cache-Control"] = "no-store"
    return response
