"""Request negotiation: formats (Accept, _format), body media types, Prefer, If-Match.

See https://hl7.org/fhir/R4/http.html#mime-type and #concurrency.
"""

from __future__ import annotations

from flask import Request

from server.errors import InvalidRequest, NotAcceptable, UnsupportedMediaType
from server.fhir.integers import INTEGER_MAX, parse_unsigned

FHIR_JSON = "application/fhir+json"
JSON_PATCH = "application/json-patch+json"
_JSON_TYPES = {FHIR_JSON, "application/json", "json", "text/json"}
_WILDCARDS = {"*/*", "application/*"}
_FORMAT_ALIASES = {"json": FHIR_JSON, "text/json": "application/json"}


def response_mimetype(request: Request) -> str:
    """The JSON media type to answer with; NotAcceptable when only others are accepted."""
    wanted = request.args.get("_format")
    candidates = [wanted] if wanted else _accepted(request.headers.get("Accept", ""))
    if not candidates:
        return FHIR_JSON
    for candidate in candidates:
        media = candidate.split(";", 1)[0].strip().lower()
        if media in _JSON_TYPES:
            return _FORMAT_ALIASES.get(media, media)
        if media in _WILDCARDS:
            return FHIR_JSON
    raise NotAcceptable(
        f"This server answers in FHIR JSON ({FHIR_JSON}) only, not {', '.join(candidates)}",
        "_format" if wanted else (),
    )


def _accepted(header: str) -> list[str]:
    entries = []
    for position, part in enumerate(header.split(",")):
        media, _, params = part.strip().partition(";")
        if not media:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            entries.append((-quality, position, media.strip()))
    return [media for _, _, media in sorted(entries)]


def require_media_type(request: Request, allowed: frozenset[str]) -> None:
    """UnsupportedMediaType unless the body's Content-Type is one of ``allowed``."""
    media = (request.mimetype or "").lower()
    if media not in allowed:
        shown = media or "none"
        raise UnsupportedMediaType(
            f"Content-Type {shown} is not supported here; send one of {', '.join(sorted(allowed))}"
        )


RESOURCE_MEDIA_TYPES = frozenset({FHIR_JSON, "application/json"})
PATCH_MEDIA_TYPES = frozenset({JSON_PATCH})


def if_match_version(request: Request) -> int | None:
    """The version named by If-Match (``W/"3"`` or ``"3"``); InvalidRequest if malformed."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    value = header.strip().removeprefix("W/").strip('"')
    version = parse_unsigned(value, INTEGER_MAX)
    if version is None:
        raise InvalidRequest(f'If-Match must be an ETag such as W/"3", got {header!r}', "If-Match")
    return version


def prefer_return(request: Request) -> str:
    """``representation`` (default), ``minimal`` or ``OperationOutcome`` from Prefer."""
    for token in _prefer_tokens(request):
        if token.startswith("return="):
            value = token.removeprefix("return=").strip('"')
            if value in ("minimal", "representation", "OperationOutcome"):
                return value
    return "representation"


def prefer_lenient(request: Request) -> bool:
    """Whether ``Prefer: handling=lenient`` asks to ignore unknown search parameters."""
    return "handling=lenient" in _prefer_tokens(request)


def _prefer_tokens(request: Request) -> list[str]:
    header = request.headers.get("Prefer", "")
    return [t.strip() for part in header.split(",") for t in part.split(";") if t.strip()]


def wants_pretty(request: Request) -> bool:
    return request.args.get("_pretty", "false").lower() == "true"
