"""Every FhirError subclass has a unique (status, issue code) and renders a valid outcome."""

from __future__ import annotations

from fhir.resources.R4B.operationoutcome import OperationOutcome

from server import errors


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_status_and_issue_code_pairs_are_unique():
    # A subclass that keeps its parent's pair (SnapshotError(UnprocessableEntity)) is a
    # specialisation of that category, not a second one.
    pairs = [
        (c.status, c.issue_code)
        for c in _subclasses(errors.FhirError)
        if "status" in vars(c) or "issue_code" in vars(c)
    ]
    assert len(pairs) == len(set(pairs)), pairs


def test_each_error_renders_a_valid_operation_outcome():
    for cls in _subclasses(errors.FhirError):
        error = cls("something went wrong", "Patient.name")
        outcome = error.to_operation_outcome()
        OperationOutcome.model_validate(outcome)
        assert outcome["issue"][0]["code"] == cls.issue_code
        assert outcome["issue"][0]["expression"] == ["Patient.name"]
        assert 400 <= cls.status < 600
