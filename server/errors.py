"""Typed FHIR errors, raised in services and rendered once as OperationOutcome.

Each subclass sets only ``status`` and ``issue_code`` (Werkzeug's exception style);
``http/error_handlers.py`` turns any ``FhirError`` into its response.
See https://hl7.org/fhir/R4/operationoutcome.html and http.html#2.21.0.17.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: what went wrong and where (FHIRPath in ``expression``)."""

    severity: str
    code: str
    diagnostics: str
    expression: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    """An OperationOutcome resource (as JSON) holding ``issues``."""
    return {"resourceType": "OperationOutcome", "issue": [issue.to_json() for issue in issues]}


class FhirError(Exception):
    """Base of every error a client can be told about."""

    status: ClassVar[int] = 400
    issue_code: ClassVar[str] = "processing"

    def __init__(
        self,
        diagnostics: str,
        expression: tuple[str, ...] | str = (),
        *,
        issues: list[Issue] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        if isinstance(expression, str):
            expression = (expression,)
        self.issues = issues or [Issue("error", self.issue_code, diagnostics, expression)]
        self.headers = headers or {}

    def to_operation_outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


class InvalidRequest(FhirError):
    """Malformed request: bad JSON, bad parameter value, id mismatch."""

    status, issue_code = 400, "invalid"


class InvalidResource(FhirError):
    """The resource breaks the structure of the base specification."""

    status, issue_code = 400, "structure"


class UnprocessableEntity(FhirError):
    """Well formed, but cannot be processed (a JSON Patch that does not apply)."""

    status, issue_code = 422, "processing"


class ProfileViolation(FhirError):
    """The resource is well formed but breaks a profile it must meet (docs/validation-usage.md)."""

    status, issue_code = 422, "invariant"


class NotSupported(FhirError):
    """A type, interaction or parameter this server does not offer."""

    status, issue_code = 400, "not-supported"


class Unauthorized(FhirError):
    """No valid access token where one is required (ILP_AUTH, national mode's /fhir-r4/v1)."""

    status, issue_code = 401, "login"


class Forbidden(FhirError):
    """A valid client without the scope, or outside the facilities it is bound to."""

    status, issue_code = 403, "forbidden"


class NotFound(FhirError):
    status, issue_code = 404, "not-found"


class MethodNotAllowed(FhirError):
    status, issue_code = 405, "not-supported"


class NotAcceptable(FhirError):
    """No representation the client accepts (e.g. XML)."""

    status, issue_code = 406, "not-supported"


class Gone(FhirError):
    status, issue_code = 410, "deleted"


class VersionConflict(FhirError):
    """A concurrent write changed the resource first."""

    status, issue_code = 409, "conflict"


class PreconditionFailed(FhirError):
    """``If-Match`` did not match the current version."""

    status, issue_code = 412, "conflict"


class MultipleMatches(FhirError):
    """A conditional interaction matched more than one resource."""

    status, issue_code = 412, "multiple-matches"


class PayloadTooLarge(FhirError):
    status, issue_code = 413, "too-costly"


class UnsupportedMediaType(FhirError):
    status, issue_code = 415, "not-supported"


class TooManyRequests(FhirError):
    """A client over its rate limit; ``Retry-After`` says when to come back."""

    status, issue_code = 429, "throttled"
