"""``$validate`` on a type or an instance: an OperationOutcome, valid or not.

``POST [type]/$validate`` and ``POST [type]/[id]/$validate`` take a Parameters resource
(``resource``, ``mode``, ``profile``) or the resource itself, with ``mode`` and ``profile``
then in the query.  Without a resource, the instance form validates the stored resource.
``mode=delete`` only checks that the resource exists.  The checks are those of
``ProfileValidation.validate``: base R4, the profiles the resource claims, and the given
``profile`` or, without one, the ILP profiles a write would apply.
See https://hl7.org/fhir/R4/resource-operation-validate.html.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from server.errors import InvalidRequest, Issue, operation_outcome
from server.fhir import jsonio
from server.fhir.structure import MAX_DEPTH
from server.services import resources
from server.services.context import ServiceContext
from server.services.validation import outcome_issues, parse_json

MODES = ("create", "update", "delete")
_PARAMETERS = {"resource", "mode", "profile"}


@dataclass(frozen=True)
class ValidateRequest:
    """The inputs of one ``$validate`` call, from the body and the query."""

    resource: dict[str, Any] | None = None
    mode: str | None = None
    profile: str | None = None


def validate(
    ctx: ServiceContext,
    resource_type: str,
    res_id: str | None,
    raw: bytes,
    query: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The OperationOutcome of ``$validate``; raises for a request that cannot be answered.

    InvalidRequest (400) for bad JSON, a wrong resourceType, an unknown mode or profile, or
    a missing resource; NotFound/Gone when the instance to validate (or delete) is absent.
    """
    resources.require_type(resource_type, "read")
    request = read_request(raw, query)
    if request.mode == "delete":
        if res_id is None:
            raise InvalidRequest(
                "mode=delete needs an instance: POST [type]/[id]/$validate", "mode"
            )
        with ctx.unit_of_work() as uow:
            resources.read(uow, resource_type, res_id)
        message = f"No issues detected: {resource_type}/{res_id} exists and may be deleted"
        return operation_outcome([Issue("information", "informational", message)])
    resource = request.resource
    if resource is None:
        if res_id is None:
            raise InvalidRequest("$validate needs a resource: the body, or a resource parameter")
        with ctx.unit_of_work() as uow:
            resource = resources.read(uow, resource_type, res_id).content
        assert resource is not None
    elif resource.get("resourceType") != resource_type:
        raise InvalidRequest(
            f"resourceType {resource.get('resourceType')!r} does not match the type in the "
            f"URL, {resource_type!r}",
            "resourceType",
        )
    issues = _mode_issues(request.mode, resource, resource_type, res_id)
    issues += ctx.validation.validate(resource, request.profile)
    return operation_outcome(outcome_issues(_errors_first(issues)))


def read_request(raw: bytes, query: Sequence[tuple[str, str]]) -> ValidateRequest:
    """The resource, mode and profile of a call: a Parameters body, or a resource and the query.

    InvalidRequest for bad JSON, an unknown parameter or mode, or a repeated parameter.
    """
    values: dict[str, Any] = {name: value for name, value in query if name in ("mode", "profile")}
    resource: dict[str, Any] | None = None
    if raw.strip():
        body = parse_json(raw)
        if not isinstance(body, dict):
            raise InvalidRequest("The request body must be a JSON object (a FHIR resource)")
        if body.get("resourceType") == "Parameters":
            values |= _parameters(body)
            resource = values.pop("resource", None)
        else:
            resource = body
    if resource is not None and jsonio.deeper_than(resource, MAX_DEPTH):
        raise InvalidRequest(  # the validators would exhaust Python's stack
            f"The resource nests JSON objects and arrays deeper than {MAX_DEPTH} levels"
        )
    mode = values.get("mode")
    if mode is not None and mode not in MODES:
        raise InvalidRequest(f"mode must be one of {', '.join(MODES)}, got {mode!r}", "mode")
    profile = values.get("profile")
    if profile is not None and not (isinstance(profile, str) and profile):
        raise InvalidRequest("profile must be a canonical URL", "profile")
    return ValidateRequest(resource, mode, profile)


def _parameters(body: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for index, parameter in enumerate(body.get("parameter") or []):
        where = f"Parameters.parameter[{index}]"
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if name not in _PARAMETERS:
            raise InvalidRequest(
                f"$validate takes the parameters resource, mode and profile, not {name!r}",
                f"{where}.name",
            )
        if name in found:
            raise InvalidRequest(f"The parameter {name} is given twice", f"{where}.name")
        if name == "resource":
            value = parameter.get("resource")
            if not isinstance(value, dict):
                raise InvalidRequest("The resource parameter needs a resource", where)
        else:
            value = next((v for k, v in parameter.items() if k.startswith("value")), None)
            if not isinstance(value, str):
                raise InvalidRequest(f"The {name} parameter needs a value", where)
        found[name] = value
    return found


def _mode_issues(
    mode: str | None, resource: dict[str, Any], resource_type: str, res_id: str | None
) -> list[Issue]:
    """What an update would refuse before validating: a missing or different id."""
    if mode != "update":
        return []
    body_id = resource.get("id")
    if body_id is None:
        message = "The resource in an update must have an id"
    elif res_id is not None and body_id != res_id:
        message = f"The id in the resource ({body_id!r}) differs from the URL's ({res_id!r})"
    else:
        return []
    return [Issue("error", "invalid", message, (f"{resource_type}.id",))]


def _errors_first(issues: list[Issue]) -> list[Issue]:
    order = {"fatal": 0, "error": 1, "warning": 2, "information": 3}
    return sorted(issues, key=lambda issue: order.get(issue.severity, 4))
