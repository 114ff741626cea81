"""Every official R4 example of a supported type survives PUT then GET unchanged.

The examples come from ``hl7.fhir.r4.examples`` 4.0.1 (``make fhir-package`` fetches it
with ``npm pack``).  Each is PUT under its own id and read back; the two must be
JSON-equal apart from ``meta.versionId`` and ``meta.lastUpdated``, which the server
owns.  The few published examples that break the R4 rules themselves are listed
below with the rule; for those the test asserts that the server refuses them and
names the offending element.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from server.fhir.packages import R4_EXAMPLES, package_folder
from server.fhir.registry import SUPPORTED, supports
from tests.conftest import PACKAGE_CACHE

FOLDER = package_folder(PACKAGE_CACHE, R4_EXAMPLES)

_NO_BASE = "SearchParameter.base is 1..* in R4 and this published example has none"
_NBSP = "concept codes end in a non-breaking space, which the R4 code type forbids"
# file name -> (reason, FHIRPath the server must name when refusing it)
INVALID_EXAMPLES = {
    **{
        f"SearchParameter-{kind}-extensions-{base}-{code}.json": (_NO_BASE, "SearchParameter.base")
        for kind, base in (("codesystem", "CodeSystem"), ("valueset", "ValueSet"))
        for code in ("author", "effective", "end", "keyword", "workflow")
    },
    "CodeSystem-v2-0550.json": (_NBSP, "CodeSystem.concept[74].code"),
    "SearchParameter-questionnaireresponse-extensions-QuestionnaireResponse-item-subject.json": (
        "its id has 67 characters; the R4 id type allows at most 64",
        "SearchParameter.id",
    ),
    "Bundle-v2-valuesets.json": (_NBSP, "Bundle.entry[814].resource.concept[74].code"),
}


def _examples():
    if not (FOLDER / "package.json").exists():
        pytest.fail(f"{R4_EXAMPLES} is not in {FOLDER}; run `make fhir-package`")
    found = []
    for path in sorted(FOLDER.glob("*-*.json")):
        resource_type = path.name.split("-", 1)[0]
        if resource_type in SUPPORTED:
            found.append(path)
    return found


EXAMPLES = _examples() if (FOLDER / "package.json").exists() else []


def _comparable(resource):
    meta = {
        k: v for k, v in resource.get("meta", {}).items() if k not in ("versionId", "lastUpdated")
    }
    trimmed = {k: v for k, v in resource.items() if k != "meta"}
    return {**trimmed, "meta": meta} if meta else trimmed


def test_the_official_package_is_present():
    assert len(EXAMPLES) > 4000, f"expected the {R4_EXAMPLES} examples in {FOLDER}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_round_trips(conformance_client, path: Path):
    raw = path.read_bytes()
    example = orjson.loads(raw)
    url = f"/fhir/{example['resourceType']}/{example['id']}"
    response = conformance_client.put(
        url, data=raw, headers={"Content-Type": "application/fhir+json"}
    )
    if not supports(example["resourceType"], "update"):  # the audit trail: server-written only
        assert response.status_code == 405
        assert response.get_json()["issue"][0]["code"] == "not-supported"
        return
    if path.name in INVALID_EXAMPLES:
        _, expression = INVALID_EXAMPLES[path.name]
        assert response.status_code == 400
        assert [expression] in [i.get("expression") for i in response.get_json()["issue"]]
        return
    assert response.status_code in (200, 201), response.get_data(as_text=True)[:500]
    stored = conformance_client.get(url)
    assert stored.status_code == 200
    assert _comparable(orjson.loads(stored.data)) == _comparable(example)
