"""The HL7 validator test suite (R4 JSON subset) run against our validator.

``tests/data/fhir-test-cases`` holds cases of FHIR/fhir-test-cases with the outcomes of the
Java reference validator.  Each case is validated against the base definitions and, when it
names a profile, against that profile too; each such run is compared with the reference on
two counts: valid/invalid (any error or fatal issue) and the FHIRPath expressions of the
errors.  A file our JSON reader rejects counts as one fatal issue, as the reference reports
a parse failure.  ``python -m tests.validation.fhir_test_cases`` prints the per-run table;
``test_fhir_test_cases.py`` pins the rates and the list of disagreements.
See https://github.com/FHIR/fhir-test-cases/tree/master/validator.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from server.errors import Issue
from server.fhir import jsonio
from server.fhir.packages import R4_EXAMPLES, package_folder
from server.fhir.validation import ConformanceSet, Validator
from server.fhir.validation.snapshot import generate_snapshot

ROOT = Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "tests" / "data" / "fhir-test-cases"
PACKAGE = package_folder(ROOT / ".cache" / "fhir", R4_EXAMPLES)
ERRORS = ("fatal", "error")
_COMMENT = re.compile(r"/\*.*?\*/")


@dataclass(frozen=True)
class Case:
    """One entry of manifest.json: what to load, what to validate, what the reference said."""

    name: str
    module: str
    file: str
    supporting: tuple[str, ...]
    profile: str | None
    expected: dict[str, Any]


@dataclass(frozen=True)
class Run:
    """One validation of a case (``kind`` base or profile) beside the reference's outcome."""

    case: Case
    kind: str
    issues: tuple[Issue, ...]

    @property
    def label(self) -> str:
        return self.case.name if self.kind == "base" else f"{self.case.name} (profile)"

    @property
    def reference(self) -> dict[str, Any]:
        outcome: dict[str, Any] = self.case.expected[self.kind]
        return outcome

    @property
    def expected_errors(self) -> int:
        return int(self.reference["errors"])

    @cached_property
    def errors(self) -> tuple[Issue, ...]:
        return tuple(issue for issue in self.issues if issue.severity in ERRORS)

    @property
    def agrees(self) -> bool:
        """Valid/invalid as the reference: errors exactly when it found some."""
        return bool(self.errors) == (self.expected_errors > 0)

    @cached_property
    def expected_expressions(self) -> frozenset[str]:
        return frozenset(
            normalise(expression)
            for issue in self.reference["issues"]
            if issue["severity"] in ERRORS
            for expression in issue.get("expression") or ()
        )

    @cached_property
    def expressions(self) -> frozenset[str]:
        return frozenset(normalise(e) for issue in self.errors for e in issue.expression)

    @property
    def matched(self) -> frozenset[str]:
        return self.expected_expressions & self.expressions


@dataclass(frozen=True)
class Summary:
    """Agreement over every run of the suite."""

    runs: tuple[Run, ...]

    @property
    def agreement(self) -> float:
        return sum(run.agrees for run in self.runs) / len(self.runs)

    @property
    def expected_expressions(self) -> int:
        return sum(len(run.expected_expressions) for run in self.runs)

    @property
    def matched_expressions(self) -> int:
        return sum(len(run.matched) for run in self.runs)

    @property
    def expression_agreement(self) -> float:
        """Share of the reference's error expressions that we report as errors too."""
        return self.matched_expressions / max(1, self.expected_expressions)

    @property
    def disagreements(self) -> list[Run]:
        return [run for run in self.runs if not run.agrees]


def normalise(expression: str) -> str:
    """The reference's FHIRPath without its ``/*Type/id*/`` comments."""
    return _COMMENT.sub("", expression).strip()


def load_cases(data: Path = DATA) -> list[Case]:
    manifest = jsonio.loads((data / "manifest.json").read_bytes())
    return [
        Case(
            name=entry["name"],
            module=entry["module"],
            file=entry["file"],
            supporting=tuple(entry.get("supporting") or ()),
            profile=entry.get("profile"),
            expected=entry["expected"],
        )
        for entry in manifest["cases"]
    ]


class Suite:
    """Runs cases; the official definitions are shared by the cases that add none."""

    def __init__(self, data: Path = DATA, package: Path = PACKAGE) -> None:
        if not (package / "package.json").exists():
            raise FileNotFoundError(f"{R4_EXAMPLES} is not in {package}; run `make fhir-package`")
        self.data, self.package = data, package
        self.cases = load_cases(data)
        self._shared: Validator | None = None

    def validator(self, definitions: list[dict[str, Any]]) -> Validator:
        """A validator over the official package plus ``definitions`` (a fresh set if any)."""
        if not definitions and self._shared is not None:
            return self._shared
        conformance = ConformanceSet.from_folders([self.package])
        conformance.snapshot_builder = generate_snapshot
        conformance.lenient_snapshots = True  # third-party profiles, as the reference treats them
        for definition in definitions:
            conformance.add(definition)
        validator = Validator(conformance)
        if not definitions:
            self._shared = validator
        return validator

    def read(self, name: str) -> Any:
        return jsonio.loads((self.data / "files" / name).read_bytes())

    def run(self, case: Case) -> Iterator[Run]:
        """The base run of ``case`` and, when it names a profile, the profile run."""
        try:
            resource = self.read(case.file)
        except jsonio.JSONDecodeError as exc:
            fatal = (Issue("fatal", "invalid", f"Error parsing JSON: {exc}"),)
            yield Run(case, "base", fatal)
            if case.profile:
                yield Run(case, "profile", fatal)
            return
        supporting = [self.read(name) for name in case.supporting]
        yield Run(case, "base", _validate(self.validator(supporting), resource, ()))
        if case.profile:
            profile = self.read(case.profile)
            validator = self.validator([*supporting, profile])
            yield Run(case, "profile", _validate(validator, resource, (profile["url"],)))

    def summary(self) -> Summary:
        return Summary(tuple(run for case in self.cases for run in self.run(case)))


def _validate(validator: Validator, resource: Any, profiles: tuple[str, ...]) -> tuple[Issue, ...]:
    """The validator's issues; an exception (e.g. a profile it cannot snapshot) is a fatal
    issue, as the server turns it into an error outcome rather than accepting the resource."""
    try:
        return tuple(validator.validate(resource, profiles=profiles))
    except Exception as exc:  # noqa: BLE001 - any crash is an outcome to report
        return (Issue("fatal", "exception", f"{type(exc).__name__}: {exc}"),)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def table(summary: Summary, *, only_disagreements: bool = False) -> str:
    """One row per run: error counts, agreement, and error expressions matched/expected."""
    lines = [
        f"{'run':<48} {'ref':>4} {'ours':>4} {'agree':>5} {'expr':>7}",
        "-" * 72,
    ]
    for run in summary.runs:
        if only_disagreements and run.agrees:
            continue
        expressions = f"{len(run.matched)}/{len(run.expected_expressions)}"
        mark = "yes" if run.agrees else "NO"
        lines.append(
            f"{_shorten(run.label, 48):<48} {run.expected_errors:>4} {len(run.errors):>4}"
            f" {mark:>5} {expressions:>7}"
        )
    lines += [
        "-" * 72,
        f"valid/invalid agreement: {sum(r.agrees for r in summary.runs)}/{len(summary.runs)}"
        f" runs = {summary.agreement:.1%}",
        f"error expression agreement: {summary.matched_expressions}/"
        f"{summary.expected_expressions} = {summary.expression_agreement:.1%}",
    ]
    return "\n".join(lines)


def details(run: Run) -> str:
    """The reference's issues and ours for one run, for finding why they differ."""
    lines = [f"== {run.label}: {run.case.file} (reference {run.expected_errors} errors)"]
    for issue in run.reference["issues"]:
        where = ", ".join(normalise(e) for e in issue.get("expression") or ())
        lines.append(f"  ref  {issue['severity']:<11} {where}: {_shorten(issue['text'], 160)}")
    for issue in run.issues:
        where = ", ".join(issue.expression)
        lines.append(f"  ours {issue.severity:<11} {where}: {_shorten(issue.diagnostics, 160)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="only these cases (by name)")
    parser.add_argument("--disagreements", action="store_true", help="only the runs that differ")
    parser.add_argument("--details", action="store_true", help="print both sides' issues")
    args = parser.parse_args(argv)
    suite = Suite()
    if args.names:
        suite.cases = [case for case in suite.cases if case.name in args.names]
    summary = suite.summary()
    print(table(summary, only_disagreements=args.disagreements))
    if args.details:
        for run in summary.runs:
            if not args.disagreements or not run.agrees:
                print(details(run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
