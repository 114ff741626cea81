"""Validation of incoming resources: parsing, structure, and the profiles a write must meet.

Every write is parsed and checked against the structure of the base R4 specification
(``fhir/structure.py``).  ``ProfileValidation`` adds the profile validator
(``fhir/validation``): resources of the types in ILP_ENFORCE_PROFILES must meet the ILP
profiles that apply to them (``fhir/profile_selection.py``), and, with
ILP_ENFORCE_CLAIMED_PROFILES, every resource must meet the profiles it claims in
``meta.profile``.  ``$validate`` and ``ilp validate`` use the same object.
See docs/validation-usage.md and https://hl7.org/fhir/R4/validation.html.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.config import ConfigError, Settings
from server.errors import FhirError, InvalidRequest, InvalidResource, Issue, ProfileViolation
from server.fhir import jsonio, packages
from server.fhir.profile_selection import ProfileSelector
from server.fhir.structure import check_resource
from server.fhir.validation import ConformanceSet, Validator
from server.fhir.validation.conformance import KINDS
from server.fhir.validation.snapshot import generate_snapshot

_FAILING = ("fatal", "error")
_SEVERITY_ORDER = {"fatal": 0, "error": 1, "warning": 2, "information": 3}


def parse_json(raw: bytes) -> Any:
    """Decode a request body; InvalidRequest when it is not JSON."""
    if not raw.strip():
        raise InvalidRequest("The request body is empty; a FHIR JSON resource was expected")
    try:
        return jsonio.loads(raw)
    except jsonio.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None


def parse_resource(raw: bytes, expected_type: str) -> dict[str, Any]:
    """Decode and structurally validate a resource of ``expected_type``.

    Raises InvalidRequest for bad JSON or a type mismatch, InvalidResource with one
    issue per problem (each with its FHIRPath) for structural errors.
    """
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object (a FHIR resource)")
    actual = data.get("resourceType")
    if actual != expected_type:
        raise InvalidRequest(
            f"resourceType {actual!r} does not match the type in the URL, {expected_type!r}",
            "resourceType",
        )
    check_structure(data)
    return data


def check_structure(data: dict[str, Any]) -> None:
    """Raise InvalidResource listing every structural issue of ``data``."""
    issues = check_resource(data)
    if issues:
        raise InvalidResource(issues[0].diagnostics, issues=issues)


class ProfileValidation:
    """Profile checks for one application; the validator is built on first use and reused.

    ``extra`` adds conformance resources (StructureDefinitions, ValueSets, CodeSystems) to
    those of the official package and ILP_PROFILES_DIR, as ``ilp validate --with`` does.
    """

    def __init__(self, settings: Settings, extra: Iterable[dict[str, Any]] = ()) -> None:
        self.enforced_types = settings.enforced_types
        self.check_claims = settings.enforce_claimed_profiles
        self._official = packages.package_folder(settings.package_cache, packages.R4_EXAMPLES)
        self._profiles_dir = Path(settings.profiles_dir)
        self._extra = list(extra)
        self._lock = threading.Lock()
        self._built: tuple[Validator, ProfileSelector] | None = None

    @property
    def on_write(self) -> bool:
        """Whether writes are profile-checked at all."""
        return bool(self.enforced_types) or self.check_claims

    def require_definitions(self) -> None:
        """ConfigError when the definitions the validator reads are missing."""
        if not (self._official / "package.json").exists():
            raise ConfigError(
                f"Profile validation needs {packages.R4_EXAMPLES} in {self._official}: run "
                "`ilp package fetch` (or set ILP_ENFORCE_PROFILES= and "
                "ILP_ENFORCE_CLAIMED_PROFILES=false)"
            )
        if self.enforced_types and not self._profiles_dir.is_dir():
            raise ConfigError(
                f"ILP_ENFORCE_PROFILES needs the ILP profiles, but ILP_PROFILES_DIR "
                f"({self._profiles_dir}) is not a folder"
            )

    @property
    def validator(self) -> Validator:
        return self._build()[0]

    def profiles_for(self, resource: dict[str, Any]) -> tuple[str, ...]:
        """The ILP profiles a write of ``resource`` must meet (none for other types)."""
        if resource.get("resourceType") not in self.enforced_types:
            return ()
        return self._build()[1].profiles_for(resource)

    def check_write(self, resource: dict[str, Any]) -> list[Issue]:
        """The warnings of a resource about to be written; ProfileViolation (422) on errors.

        Resources of an enforced type without an applicable ILP profile, and resources of
        other types that claim no profile, are not run through the validator at all.
        """
        if not self.on_write:
            return []
        required = self.profiles_for(resource)
        claims = _claimed_profiles(resource)
        if not required and not (claims and self.check_claims):
            return []
        subject = resource if self.check_claims or not claims else _without_claims(resource)
        issues = self.validator.validate(subject, required)
        errors = [issue for issue in issues if issue.severity in _FAILING]
        if errors:
            raise ProfileViolation(errors[0].diagnostics, issues=issues)
        return issues

    def validate(self, resource: dict[str, Any], profile: str | None = None) -> list[Issue]:
        """Every issue of ``resource``: base R4, its claimed profiles, and ``profile`` (or,
        without it, the ILP profiles a write would apply, to a Bundle's entries too).

        InvalidRequest (400, issue code not-found) when ``profile`` is not known.
        """
        validator = self.validator
        if profile is not None:
            _require_profile(validator, profile, str(resource.get("resourceType")))
            return validator.validate(resource, (profile,))
        issues = validator.validate(resource, self.profiles_for(resource))
        if resource.get("resourceType") == "Bundle":
            issues = _sorted(issues + self._entry_issues(resource, set(issues)))
        return issues

    def _entry_issues(self, bundle: dict[str, Any], seen: set[Issue]) -> list[Issue]:
        """Issues of the entries against their ILP profiles, located in the Bundle."""
        found: list[Issue] = []
        for index, entry in enumerate(_as_list(bundle.get("entry"))):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            required = self.profiles_for(resource) if isinstance(resource, dict) else ()
            if not isinstance(resource, dict) or not required:
                continue
            prefix, own = f"Bundle.entry[{index}].resource", str(resource["resourceType"])
            for issue in self.validator.validate(resource, required):
                paths = tuple(_within(path, own, prefix) for path in issue.expression)
                moved = Issue(issue.severity, issue.code, issue.diagnostics, paths)
                if moved not in seen:
                    seen.add(moved)
                    found.append(moved)
        return found

    def _build(self) -> tuple[Validator, ProfileSelector]:
        built = self._built
        if built is not None:
            return built
        with self._lock:
            if self._built is None:
                self.require_definitions()
                folders = [self._official]
                if self._profiles_dir.is_dir():
                    folders.append(self._profiles_dir)
                conformance = ConformanceSet.from_folders(folders)
                conformance.snapshot_builder = generate_snapshot
                for resource in self._extra:
                    conformance.add(resource)
                selector = ProfileSelector(
                    (d for _, d in _definitions(self._profiles_dir)), conformance.snapshot
                )
                self._built = (Validator(conformance), selector)
            return self._built


def outcome_issues(issues: list[Issue]) -> list[Issue]:
    """``issues`` for an OperationOutcome, which needs one: "No issues detected" when empty."""
    return issues or [Issue("information", "informational", "No issues detected")]


def _require_profile(validator: Validator, url: str, resource_type: str) -> None:
    """InvalidRequest (400) unless ``url`` is a known profile of ``resource_type``."""
    definition = validator.conformance.structure(url.split("|", 1)[0])
    if definition is None or definition.get("kind") != "resource":
        problem = f"Profile {url} is not known to this server"
    elif definition.get("type") != resource_type:
        problem = f"Profile {url} is for {definition.get('type')}, not {resource_type}"
    else:
        return
    raise InvalidRequest(problem, issues=[Issue("error", "not-found", problem, ("profile",))])


def _definitions(folder: Path) -> Iterable[tuple[Path, dict[str, Any]]]:
    if not folder.is_dir():
        return ()
    return packages.resources_in(folder, prefix="StructureDefinition-")


def _claimed_profiles(resource: dict[str, Any]) -> list[Any]:
    meta = resource.get("meta")
    return _as_list(meta.get("profile")) if isinstance(meta, dict) else []


def _without_claims(resource: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in resource["meta"].items() if k != "profile"}
    trimmed = {k: v for k, v in resource.items() if k != "meta"}
    return {**trimmed, "meta": meta} if meta else trimmed


def _within(path: str, resource_type: str, prefix: str) -> str:
    """``Patient.name[0]`` of an entry as ``Bundle.entry[i].resource.name[0]``."""
    if path == resource_type or path.startswith((resource_type + ".", resource_type + "[")):
        return prefix + path[len(resource_type) :]
    return path


def _sorted(issues: list[Issue]) -> list[Issue]:
    return sorted(issues, key=lambda issue: _SEVERITY_ORDER.get(issue.severity, 4))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class FileReport:
    """The issues of one file given to ``ilp validate``."""

    path: str
    issues: list[Issue]

    @property
    def failed(self) -> bool:
        return any(issue.severity in _FAILING for issue in self.issues)

    @property
    def uri(self) -> str:
        return Path(self.path).resolve().as_uri()


def validate_files(
    checks: ProfileValidation, paths: Iterable[str], profile: str | None = None
) -> list[FileReport]:
    """Validate each JSON file (``ilp validate``); a file that cannot be read is one issue."""
    reports = []
    for path in paths:
        try:
            resource = jsonio.loads(Path(path).read_bytes())
            if not isinstance(resource, dict):
                raise InvalidRequest("The file must hold a JSON object (a FHIR resource)")
            issues = checks.validate(resource, profile)
        except OSError as exc:
            issues = [Issue("fatal", "exception", f"Cannot read the file: {exc.strerror}")]
        except jsonio.JSONDecodeError as exc:
            issues = [Issue("fatal", "structure", f"The file is not valid JSON: {exc}")]
        except FhirError as error:
            issues = error.issues
        reports.append(FileReport(path, issues))
    return reports


def read_supporting(paths: Iterable[str]) -> list[dict[str, Any]]:
    """The StructureDefinitions, ValueSets and CodeSystems in files, Bundles and folders.

    A folder gives its ``*.json`` files (not its subfolders); other resources are skipped.
    ConfigError when a file cannot be read or is not JSON.
    """
    found: list[dict[str, Any]] = []
    for given in paths:
        folder = Path(given)
        files = sorted(folder.glob("*.json")) if folder.is_dir() else [folder]
        for path in files:
            try:
                data = jsonio.loads(path.read_bytes())
            except (OSError, jsonio.JSONDecodeError) as exc:
                raise ConfigError(f"--with {path}: {exc}") from None
            if isinstance(data, dict) and data.get("resourceType") == "Bundle":
                entries = [e.get("resource") for e in _as_list(data.get("entry"))]
            else:
                entries = [data]
            found += [r for r in entries if isinstance(r, dict) and r.get("resourceType") in KINDS]
    return found
