"""The ILP implementation guide's examples (``profiles/examples/``) against its profiles.

Every example validates, against the profiles in its ``meta.profile``, with no error and no
warning but ``dom-6`` (no narrative); every example claims an ILP profile, and every ILP
resource profile has an example.  The broken variants of the examples, each failing with
the rule it breaks, are in test_ilp_profiles_admin.py (Organization, Location, Patient,
Encounter, administrativeCode) and test_ilp_profiles_observations.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from server.errors import Issue
from tests.validation.conftest import PROFILES_FOLDER
from tests.validation.ilp_variants import EXAMPLES_FOLDER, describe

EXAMPLE_FILES = sorted(EXAMPLES_FOLDER.glob("*.json"))
NO_PROFILE_YET = {  # file -> why it claims no ILP profile
    f"Practitioner-ilp-{who}-example.json": (
        "no ILP Practitioner profile yet (docs/profiles.md, 'Left for later'); "
        "the example only supports the Encounters' participants"
    )
    for who in ("bidan", "dokter", "kader")
}


def _read(path: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return found


DEFINITIONS = [_read(path) for path in sorted(PROFILES_FOLDER.glob("StructureDefinition-*.json"))]
ILP_URLS = {definition["url"] for definition in DEFINITIONS}
RESOURCE_PROFILES = [
    definition
    for definition in DEFINITIONS
    if definition["kind"] == "resource"
    and definition.get("derivation") == "constraint"
    and not definition.get("abstract", False)
]
BASE_OF = {definition["url"]: definition.get("baseDefinition") for definition in DEFINITIONS}


def _claimed(resource: dict[str, Any]) -> list[str]:
    profiles: list[str] = resource.get("meta", {}).get("profile", [])
    return [url.split("|", 1)[0] for url in profiles]


def _with_ancestors(url: str) -> list[str]:
    """``url`` and the ILP profiles it derives from, nearest first."""
    chain = []
    while url in ILP_URLS:
        chain.append(url)
        url = BASE_OF[url] or ""
    return chain


def _problems(issues: list[Issue]) -> list[Issue]:
    """Errors, and warnings other than dom-6 (no narrative)."""
    return [
        issue
        for issue in issues
        if issue.severity in ("fatal", "error")
        or (issue.severity == "warning" and "dom-6" not in issue.diagnostics)
    ]


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.stem)
def test_example_validates_against_its_profiles(ilp_validator, path):
    resource = _read(path)
    assert set(_claimed(resource)) <= ILP_URLS, "claims a profile that profiles/ does not hold"
    problems = _problems(ilp_validator.validate(resource))  # checks meta.profile itself
    assert not problems, describe(problems)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            path,
            id=path.stem,
            marks=[pytest.mark.xfail(strict=True, reason=NO_PROFILE_YET[path.name])]
            if path.name in NO_PROFILE_YET
            else [],
        )
        for path in EXAMPLE_FILES
    ],
)
def test_example_claims_an_ilp_profile(path):
    assert set(_claimed(_read(path))) & ILP_URLS


@pytest.mark.parametrize("definition", RESOURCE_PROFILES, ids=lambda definition: definition["id"])
def test_resource_profile_has_an_example(ilp_validator, definition):
    """An example claims the profile, or a profile derived from it (ilp-obs-measurement and
    ilp-obs-zscore are bases whose examples are those of the measurement profiles); each
    such example is then also validated against this profile explicitly."""
    url = definition["url"]
    covering = [
        path
        for path in EXAMPLE_FILES
        if any(url in _with_ancestors(claimed) for claimed in _claimed(_read(path)))
    ]
    assert covering, f"no example in {EXAMPLES_FOLDER} claims {url} or a profile derived from it"
    for path in covering:
        problems = _problems(ilp_validator.validate(_read(path), profiles=[url]))
        assert not problems, f"{path.name} against {url}:\n{describe(problems)}"
