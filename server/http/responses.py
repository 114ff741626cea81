"""FHIR responses: JSON bodies, ETag/Last-Modified/Location headers, Prefer, gzip."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from typing import Any

from flask import Response, g, request
from werkzeug.http import http_date

from server.errors import Issue, operation_outcome
from server.fhir import jsonio
from server.fhir.references import resource_url
from server.http.negotiation import FHIR_JSON, prefer_return, wants_pretty
from server.services.resources import StoredResource

GZIP_LEVEL = 5


def fhir_response(
    body: dict[str, Any] | None, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response in the negotiated media type (``_pretty`` honoured)."""
    if body is None:
        response = Response(status=status, headers=headers)
        del response.headers["Content-Type"]
        return response
    data = jsonio.dumps(body, pretty=wants_pretty(request))
    response = Response(data, status=status, headers=headers)
    response.content_type = f"{g.get('fhir_mimetype', FHIR_JSON)}; charset=utf-8"
    return response


def version_headers(stored: StoredResource) -> dict[str, str]:
    return {"ETag": f'W/"{stored.version_id}"', "Last-Modified": http_date(stored.last_updated)}


def resource_response(stored: StoredResource, status: int = 200) -> Response:
    """A read: the resource with its version headers, or 304 when If-None-Match matches."""
    headers = version_headers(stored)
    if request.headers.get("If-None-Match", "").strip() in (headers["ETag"], headers["ETag"][2:]):
        return Response(status=304, headers=headers)
    return fhir_response(stored.content, status, headers)


def write_response(
    base: str, stored: StoredResource, status: int, issues: Sequence[Issue] = ()
) -> Response:
    """The answer to create/update/patch, shaped by ``Prefer: return=``.

    ``issues`` (the validator's warnings) are shown only in the OperationOutcome form.
    """
    headers = version_headers(stored)
    url = resource_url(base, stored.res_type, stored.res_id, stored.version_id)
    headers["Location" if status == 201 else "Content-Location"] = url
    preference = prefer_return(request)
    if preference == "minimal":
        return fhir_response(None, status, headers)
    if preference == "OperationOutcome":
        verb = "created" if status == 201 else "stored"
        message = f"{stored.res_type}/{stored.res_id} {verb} as version {stored.version_id}"
        stored_issue = Issue("information", "informational", message)
        return fhir_response(operation_outcome([*issues, stored_issue]), status, headers)
    return fhir_response(stored.content, status, headers)


def compress(response: Response) -> Response:
    """gzip a large enough body when the client accepts it (after_request hook)."""
    threshold = g.get("gzip_min_bytes", 1024)
    if (
        response.direct_passthrough
        or response.status_code < 200
        or "Content-Encoding" in response.headers
        or request.accept_encodings["gzip"] <= 0
    ):
        return response
    data = response.get_data()
    if len(data) < threshold:
        return response
    response.set_data(gzip.compress(data, compresslevel=GZIP_LEVEL))
    response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    return response
