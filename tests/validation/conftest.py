"""One validator over the official package (and, separately, with the ILP profiles) per session:
compiled definitions and expansions are cached inside, as in the server."""

from __future__ import annotations

import pytest

from server.fhir.packages import R4_EXAMPLES, package_folder
from server.fhir.validation import ConformanceSet, Validator
from server.fhir.validation.snapshot import generate_snapshot
from tests.conftest import PACKAGE_CACHE, ROOT

CORE_FOLDER = package_folder(PACKAGE_CACHE, R4_EXAMPLES)
PROFILES_FOLDER = ROOT / "profiles"


def conformance_set(*folders) -> ConformanceSet:
    if not (CORE_FOLDER / "package.json").exists():
        pytest.fail(f"{R4_EXAMPLES} is not in {CORE_FOLDER}; run `make fhir-package`")
    conformance = ConformanceSet.from_folders([CORE_FOLDER, *folders])
    conformance.snapshot_builder = generate_snapshot
    return conformance


@pytest.fixture(scope="session")
def core_validator() -> Validator:
    return Validator(conformance_set())


@pytest.fixture(scope="session")
def ilp_validator() -> Validator:
    return Validator(conformance_set(PROFILES_FOLDER))
