"""The HL7 validator test suite (R4 JSON subset): our validator against the Java reference.

Every case of tests/data/fhir-test-cases runs against the base definitions and, when it
names one, its profile (``fhir_test_cases.py``).  The agreement rates may not fall below the
figures pinned here, and the runs where we disagree with the reference on valid/invalid must
be exactly those of ``EXPECTED_DISAGREEMENTS``: a fixed case is removed from the table, a new
disagreement fails.  docs/validation.md explains each one; to see both sides' issues:
``python -m tests.validation.fhir_test_cases --disagreements --details``.
"""

from __future__ import annotations

import pytest

from tests.validation.fhir_test_cases import DATA, PACKAGE, Suite, load_cases, normalise

AIM = 0.95  # valid/invalid agreement the issue asks for
# Measured 2026-11-23 (118/130 runs, 92/195 expressions): floors, so that a regression fails.
# Raise them when the validator improves; the agreement floor stops at AIM.  Seven runs
# cannot agree without a LOINC/CVX terminology server or the reference's run options.
AGREEMENT_FLOOR = min(AIM, 0.907)
EXPRESSION_FLOOR = 0.470

_DISPLAY = (
    "only the reference's terminology server knows it: wrong display names for LOINC/CVX"
    " codes; we hold no LOINC or CVX"
)
_EXTENSION_PACK = (
    "the reference's error comes from aggregation=bundled on Organization.endpoint (a"
    " reference that must resolve inside the Bundle), a rule we do not check, and uab-1 uses"
    " the portal extension of the HL7 extensions pack, which R4 core lacks"
)

# run label (case name, "+ (profile)" for the profile run) -> why we disagree
EXPECTED_DISAGREEMENTS = {
    "fixed-quantity-binding-observation": (
        "the reference loaded the case's profile before the base run (upstream 'profiles'),"
        " the manifest does not say so: its meta.profile is unknown to our base run"
    ),
    "dr-example-org": (
        "run upstream with examples=false (no example.org URLs); the manifest does not carry"
        " the option and dr-example-org-2, the same file with the default, agrees"
    ),
    "obs-temp-bad": (
        "the reference validates a vital-sign Observation (here SNOMED CT 276885007) against"
        " the core vital-signs profile (bodytemp) its code implies, from a table of its own;"
        " we apply meta.profile and the profiles asked for"
    ),
    "sdoh-type-slice": _DISPLAY,
    "sdoh-type-slice (profile)": _DISPLAY,
    "bundle-id-5": _DISPLAY,
    "contained-resource-bad-id-ignore": (
        "run upstream with validateContains=IGNORE; the manifest does not carry the option and"
        " contained-resource-bad-id, the same file with the default, agrees"
    ),
    "StructureDefinition-Slice23": (
        "the reference checks a StructureDefinition's differential against its base (slicing"
        " discriminator paths); we validate it only as a resource"
    ),
    "contained-invariant": (
        "FHIRPath invariants get %resource/%rootResource as plain JSON and the element path"
        " as node type, so type().name is 'Object'"
    ),
    "res-inv-example-bad (profile)": _EXTENSION_PACK,
    "ips-nz-pj": _DISPLAY,
    "ab-list-slicing": (
        "the reference's only error is a narrative hyperlink (<a href='#...'>) that resolves to"
        " nothing in the resource; we do not check narrative links"
    ),
}


@pytest.fixture(scope="module")
def summary():
    if not (PACKAGE / "package.json").exists():
        pytest.fail(f"the R4 package is not in {PACKAGE}; run `make fhir-package`")
    return Suite().summary()


def test_every_case_file_is_there():
    cases = load_cases()
    assert len(cases) == 106
    for case in cases:
        for name in (case.file, *case.supporting, *([case.profile] if case.profile else [])):
            assert (DATA / "files" / name).is_file(), f"{case.name}: {name} is missing"


def test_reference_expressions_lose_their_comments():
    expression = "Bundle.entry[0].resource/*Composition/1*/.section[0]"
    assert normalise(expression) == "Bundle.entry[0].resource.section[0]"
    assert normalise("Observation.value.ofType(Quantity)") == "Observation.value.ofType(Quantity)"


def test_valid_invalid_agreement(summary):
    assert summary.agreement >= AGREEMENT_FLOOR, f"agreement fell to {summary.agreement:.1%}"


def test_error_expression_agreement(summary):
    rate = summary.expression_agreement
    assert rate >= EXPRESSION_FLOOR, f"error expression agreement fell to {rate:.1%}"


def test_disagreements_are_the_known_ones(summary):
    found = {run.label for run in summary.disagreements}
    new = sorted(found - EXPECTED_DISAGREEMENTS.keys())
    fixed = sorted(EXPECTED_DISAGREEMENTS.keys() - found)
    assert not new, f"new disagreements with the reference validator: {new}"
    assert not fixed, f"these now agree; remove them from EXPECTED_DISAGREEMENTS: {fixed}"
