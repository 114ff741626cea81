"""Every official R4 example of a supported type validates with no errors against base R4.

The examples and the definitions both come from ``hl7.fhir.r4.examples`` 4.0.1.  The few
published examples that break R4's own rules are listed with the rule; for those the test
asserts the validator reports exactly that error, at that element.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from server.fhir.registry import SUPPORTED
from tests.validation.conftest import CORE_FOLDER

_NO_BASE = "SearchParameter.base is 1..* in R4 and this published example has none"
_LOGICAL = "a logical model with abstract=false and no baseDefinition breaks sdf-4"
_FULL_URL = "a RESTful fullUrl whose id is not the id of the entry's resource"
_UNKNOWN_EXTENSION = "uses an extension whose definition is not in the R4 package"
# file name -> (reason, FHIRPath of the error, words of the message)
INVALID_EXAMPLES = {
    **{
        f"SearchParameter-{kind}-extensions-{base}-{code}.json": (
            _NO_BASE,
            "SearchParameter",
            "SearchParameter.base: minimum required = 1",
        )
        for kind, base in (("codesystem", "CodeSystem"), ("valueset", "ValueSet"))
        for code in ("author", "effective", "end", "keyword", "workflow")
    },
    "SearchParameter-questionnaireresponse-extensions-QuestionnaireResponse-item-subject.json": (
        "its id has 67 characters; the R4 id type allows at most 64",
        "SearchParameter.id",
        "Too long",
    ),
    "CodeSystem-v2-0550.json": (
        "a concept code is a lone non-breaking space",
        "CodeSystem.concept[444].code",
        "must not be empty",
    ),
    "Observation-clinical-gender.json": (
        "Observation.performer may not reference an Encounter",
        "Observation.performer[0]",
        "Found Encounter",
    ),
    "Observation-example-genetics-brcapat.json": (
        _UNKNOWN_EXTENSION + " (US Core race/ethnicity)",
        "Observation.extension[1]",
        "us-core-ethnicity could not be found",
    ),
    "Patient-dicom.json": (
        _UNKNOWN_EXTENSION + " (nema.org DICOM tags)",
        "Patient.extension[0]",
        "could not be found",
    ),
    **{
        name: (_FULL_URL + f" (entry {entry})", f"Bundle.entry[{entry}]", "correct type and id")
        for name, entry in (
            ("Bundle-10bb101f-a121-4264-a920-67be9cb82c74.json", 2),
            ("Bundle-3a0707d3-549e-4467-b8b8-5a2ab3800efe.json", 3),
            ("Bundle-lri-example.json", 1),
        )
    },
    "Bundle-hla-1.json": (
        "the glstring extension defines the sub-extensions 'url' and 'text'; the example uses"
        " 'uri'",
        "Bundle.entry[0].resource.extension[1].extension[1]",
        "Sub-extension url 'uri' is not defined",
    ),
    **{
        f"StructureDefinition-{name}.json": (_LOGICAL, "StructureDefinition", "sdf-4")
        for name in ("Definition", "Event", "FiveWs", "Request")
    },
}


def _examples() -> list[Path]:
    if not (CORE_FOLDER / "package.json").exists():
        return []
    return [
        path
        for path in sorted(CORE_FOLDER.glob("*-*.json"))
        if path.name.split("-", 1)[0] in SUPPORTED
    ]


EXAMPLES = _examples()


def test_the_examples_are_there():
    assert len(EXAMPLES) > 4000, "run `make fhir-package`"
    missing = set(INVALID_EXAMPLES) - {path.name for path in EXAMPLES}
    assert not missing


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_official_example_validates(core_validator, path: Path):
    resource = orjson.loads(path.read_bytes())
    errors = [i for i in core_validator.validate(resource) if i.severity in ("error", "fatal")]
    if path.name not in INVALID_EXAMPLES:
        assert errors == []
        return
    _, expression, words = INVALID_EXAMPLES[path.name]
    assert any(expression in i.expression and words in i.diagnostics for i in errors), errors
