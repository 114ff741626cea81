"""Snapshots generated from differentials, checked against the ones the R4 specification ships.

Every constraint StructureDefinition of ``hl7.fhir.r4.examples`` 4.0.1 (vital signs, lipid
profiles, ~390 extensions, ...) carries its differential and the snapshot the FHIR publisher
made from it.  Each one is generated again from its differential, against the published
snapshots of its bases, and compared on what validation reads: the ordered ids and paths,
cardinality, types with profiles, fixed/pattern values, bindings, slicing, constraint keys.
``KNOWN_DIFFERENCES`` lists the few published snapshots the generator does not reproduce,
why, and exactly how they differ.  Rules the package does not exercise (re-slicing, diving
into a contentReference, differentials without ids, ...) are checked on small profiles.
"""

from __future__ import annotations

import re

import pytest

from server.cli import main
from server.fhir import jsonio
from server.fhir.packages import R4_EXAMPLES, package_folder
from server.fhir.validation.conformance import ConformanceSet
from server.fhir.validation.snapshot import SnapshotError, generate_snapshot, regenerate_folder
from tests.conftest import PACKAGE_CACHE, ROOT

FOLDER = package_folder(PACKAGE_CACHE, R4_EXAMPLES)
PROFILES = ROOT / "profiles"
SD = "http://hl7.org/fhir/StructureDefinition/"
TEST = "http://example.org/fhir/StructureDefinition/"


def _constraints(folder):
    if not folder.exists():
        return []
    found = []
    for path in sorted(folder.glob("StructureDefinition-*.json")):
        data = jsonio.loads(path.read_bytes())
        if data.get("derivation") == "constraint" and data.get("snapshot"):
            found.append(path)
    return found


OFFICIAL = _constraints(FOLDER)


def _without_published_component_value_slices(published, generated):
    generated = [
        e for e in generated if not re.fullmatch(r"Observation\.component:\w+\.value\[x\]", e["id"])
    ]
    for element in generated:
        if re.match(r"Observation\.component:\w+\.value\[x\]:valueQuantity", element["id"]):
            element["id"] = element["id"].replace(":valueQuantity", "")
            if element.get("sliceName") == "valueQuantity":
                del element["sliceName"]
    return published, generated


def _without_unfolded_extension_slices(published, generated):
    unfolded = (
        "ElementDefinition.extension:Question.",
        "ElementDefinition.extension:AllowedUnits.",
    )
    return [e for e in published if not e["id"].startswith(unfolded)], generated


def _with_agent_reference(published, generated):
    for element in published:
        if element["id"] == "Provenance.entity.agent":
            element["contentReference"] = "#Provenance.agent"
    return published, generated


# file -> (why the published snapshot differs, what turns both into the same thing)
KNOWN_DIFFERENCES = {
    "StructureDefinition-bp.json": (
        "the publisher made the renamed choice Observation.component:SystolicBP.valueQuantity "
        "(and DiastolicBP) a constraint on value[x] itself, while it made the same renaming "
        "at the top (Observation.valueQuantity) a type slice value[x]:valueQuantity; the "
        "generator makes a type slice in both places (same types, cardinality and children)",
        _without_published_component_value_slices,
    ),
    "StructureDefinition-elementdefinition-de.json": (
        "the publisher copied the elements of the extension definitions under the new "
        "extension slices of ElementDefinition.extension (a workaround it applies only to "
        "elements the base already slices); the generator leaves the extension folded, its "
        "definition holds the same elements",
        _without_unfolded_extension_slices,
    ),
    "StructureDefinition-provenance-relevant-history.json": (
        "the published Provenance.entity.agent refers to #Provenance.agent:Author, the slice "
        "the profile adds, instead of #Provenance.agent as in the base: an error of the "
        "publisher, entity.agent is any agent",
        _with_agent_reference,
    ),
}


def _summary(element):
    slicing = element.get("slicing")
    binding = element.get("binding") or {}
    return {
        "id": element.get("id"),
        "path": element["path"],
        "sliceName": element.get("sliceName"),
        "min": element.get("min"),
        "max": element.get("max"),
        "type": [
            (t.get("code"), t.get("profile", []), t.get("targetProfile", []))
            for t in element.get("type", [])
        ],
        "values": {
            k: v
            for k, v in element.items()
            if k.startswith(("fixed", "pattern", "minValue", "maxValue")) or k == "maxLength"
        },
        "binding": (binding.get("strength"), binding.get("valueSet")),
        "slicing": slicing
        and (
            [(d["type"], d["path"]) for d in slicing.get("discriminator", [])],
            slicing.get("rules"),
            slicing.get("ordered", False),
        ),
        "constraints": sorted({c["key"] for c in element.get("constraint", [])}),
        "contentReference": element.get("contentReference"),
        "mustSupport": element.get("mustSupport", False),
        "isModifier": element.get("isModifier", False),
    }


def _summaries(elements):
    return [_summary(e) for e in elements]


def _ids(elements):
    return [e["id"] for e in elements]


@pytest.fixture(scope="module")
def official():
    if not (FOLDER / "package.json").exists():
        pytest.fail(f"{R4_EXAMPLES} is not in {FOLDER}; run `make fhir-package`")
    conformance = ConformanceSet.from_folders([FOLDER])
    conformance.snapshot_builder = generate_snapshot
    return conformance


def _published(name):
    definition = jsonio.loads((FOLDER / name).read_bytes())
    return definition, definition.pop("snapshot")["element"]


def test_the_package_has_the_constraint_profiles():
    assert len(OFFICIAL) == 439  # 441 constraints, 2 of them published without a snapshot


@pytest.mark.parametrize("path", OFFICIAL, ids=lambda p: p.name)
def test_generated_snapshot_matches_published(official, path):
    definition, published = _published(path.name)
    generated = generate_snapshot(definition, official)
    if path.name in KNOWN_DIFFERENCES:
        assert _summaries(generated) != _summaries(published), "no longer differs: unlist it"
        published, generated = KNOWN_DIFFERENCES[path.name][1](published, generated)
    assert _ids(generated) == _ids(published)
    assert _summaries(generated) == _summaries(published)


def test_a_base_without_snapshot_is_generated_first(official):
    vitalsigns, vitalsigns_published = _published("StructureDefinition-vitalsigns.json")
    bodyweight, bodyweight_published = _published("StructureDefinition-bodyweight.json")
    conformance = ConformanceSet.from_folders([FOLDER])
    conformance.add(vitalsigns)  # shadows the packaged one, snapshot removed
    conformance.snapshot_builder = generate_snapshot

    assert _summaries(generate_snapshot(bodyweight, conformance)) == _summaries(
        bodyweight_published
    )
    assert _summaries(conformance.snapshot(SD + "vitalsigns")) == _summaries(vitalsigns_published)


def test_a_published_profile_without_snapshot(official):
    elements = official.snapshot(SD + "example-section-library")
    ids = _ids(elements)
    procedure = ids.index("Composition.section:procedure")
    assert ids.index("Composition.section") < procedure < ids.index("Composition.section:plan")
    title = elements[ids.index("Composition.section:procedure.title")]
    assert (title["path"], title["min"], title["fixedString"]) == (
        "Composition.section.title",
        1,
        "Procedures Performed",
    )
    assert elements[ids.index("Composition.section")]["slicing"]["rules"] == "closed"


def _profile(name, base, elements, **extra):
    return {
        "resourceType": "StructureDefinition",
        "url": TEST + name,
        "name": name,
        "status": "draft",
        "kind": extra.pop("kind", "resource"),
        "abstract": False,
        "type": extra.pop("type", "Observation"),
        "baseDefinition": base,
        "derivation": "constraint",
        "differential": {"element": elements},
        **extra,
    }


def test_a_differential_without_ids_gives_the_same_snapshot(official):
    definition, published = _published("StructureDefinition-bp.json")
    for element in definition["differential"]["element"]:
        del element["id"]
    assert _ids(generate_snapshot(definition, official)) == _ids(
        generate_snapshot(_published("StructureDefinition-bp.json")[0], official)
    )


def test_an_explicit_type_slice_equals_the_renamed_choice(official):
    renamed, _ = _published("StructureDefinition-bodyweight.json")
    explicit = jsonio.loads(jsonio.dumps(renamed))
    for element in explicit["differential"]["element"]:
        element["id"] = element["id"].replace("valueQuantity", "value[x]:valueQuantity")
        element["path"] = element["path"].replace("valueQuantity", "value[x]")
        if element["id"] == "Observation.value[x]:valueQuantity":
            element["sliceName"] = "valueQuantity"
    assert generate_snapshot(explicit, official) == generate_snapshot(renamed, official)


def test_a_renamed_choice_narrows_the_types_by_a_closed_type_slicing(official):
    profile = _profile(
        "effective",
        SD + "Observation",
        [
            {
                "id": "Observation.effectivePeriod.start",
                "path": "Observation.effectivePeriod.start",
                "min": 1,
            }
        ],
    )
    elements = {e["id"]: e for e in generate_snapshot(profile, official)}
    choice = elements["Observation.effective[x]"]
    assert [t["code"] for t in choice["type"]] == ["Period"]
    assert choice["slicing"] == {
        "discriminator": [{"type": "type", "path": "$this"}],
        "ordered": False,
        "rules": "closed",
    }
    start = elements["Observation.effective[x]:effectivePeriod.start"]
    assert (start["path"], start["min"]) == ("Observation.effective[x].start", 1)


def test_a_profile_on_a_profile_constrains_the_slices_of_its_base(official):
    profile = _profile(
        "adult-weight",
        SD + "bodyweight",
        [
            {
                "id": "Observation.valueQuantity.value",
                "path": "Observation.valueQuantity.value",
                "maxValueDecimal": 500,
            },
            {
                "id": "Observation.code.coding:BodyWeightCode.display",
                "path": "Observation.code.coding.display",
                "min": 1,
            },
        ],
    )
    _, bodyweight = _published("StructureDefinition-bodyweight.json")
    elements = generate_snapshot(profile, official)
    assert _ids(elements) == _ids(bodyweight)
    by_id = {e["id"]: e for e in elements}
    value = by_id["Observation.value[x]:valueQuantity.value"]
    assert (value["min"], value["maxValueDecimal"]) == (1, 500)
    assert by_id["Observation.code.coding:BodyWeightCode.display"]["min"] == 1
    assert by_id["Observation.code.coding:BodyWeightCode.code"]["fixedCode"] == "29463-7"


def test_new_slices_follow_the_base_slices_and_re_slices_follow_their_slice(official):
    profile = _profile(
        "reslice",
        SD + "vitalsigns",
        [
            {
                "id": "Observation.category:VSCat",
                "path": "Observation.category",
                "sliceName": "VSCat",
                "slicing": {"discriminator": [{"type": "value", "path": "text"}], "rules": "open"},
            },
            {
                "id": "Observation.category:VSCat/triage",
                "path": "Observation.category",
                "sliceName": "VSCat/triage",
                "max": "1",
            },
            {
                "id": "Observation.category:VSCat/triage.text",
                "path": "Observation.category.text",
                "fixedString": "triage",
            },
            {
                "id": "Observation.category:local",
                "path": "Observation.category",
                "sliceName": "local",
            },
        ],
    )
    elements = generate_snapshot(profile, official)
    ids = _ids(elements)
    order = [
        "Observation.category",
        "Observation.category:VSCat",
        "Observation.category:VSCat.coding.system",
        "Observation.category:VSCat.text",
        "Observation.category:VSCat/triage",
        "Observation.category:VSCat/triage.coding.code",
        "Observation.category:VSCat/triage.text",
        "Observation.category:local",
        "Observation.code",
    ]
    assert [ids.index(i) for i in order] == sorted(ids.index(i) for i in order)
    triage = elements[ids.index("Observation.category:VSCat/triage")]
    assert (triage["sliceName"], triage["path"], triage["max"]) == (
        "VSCat/triage",
        "Observation.category",
        "1",
    )
    # a re-slice starts from its slice; a new slice from the base element, optional
    assert (
        elements[ids.index("Observation.category:VSCat/triage.coding.code")]["fixedCode"]
        == "vital-signs"
    )
    assert elements[ids.index("Observation.category:local")]["min"] == 0
    assert "fixedString" in elements[ids.index("Observation.category:VSCat/triage.text")]


def test_a_content_reference_is_unfolded_only_where_the_differential_dives(official):
    profile = _profile(
        "nested",
        SD + "Questionnaire",
        [{"id": "Questionnaire.item.item.text", "path": "Questionnaire.item.item.text", "min": 1}],
        type="Questionnaire",
    )
    elements = {e["id"]: e for e in generate_snapshot(profile, official)}
    nested = elements["Questionnaire.item.item"]
    assert "contentReference" not in nested
    assert [t["code"] for t in nested["type"]] == ["BackboneElement"]
    assert elements["Questionnaire.item.item.text"]["min"] == 1
    assert elements["Questionnaire.item.item.linkId"]["path"] == "Questionnaire.item.item.linkId"
    assert elements["Questionnaire.item.item.item"]["contentReference"] == "#Questionnaire.item"


def test_constraints_add_to_the_base_ones_and_bindings_replace(official):
    rule = {"key": "test-1", "severity": "error", "human": "odd", "expression": "true"}
    binding = {"strength": "required", "valueSet": "http://example.org/fhir/ValueSet/codes"}
    profile = _profile(
        "merge",
        SD + "Observation",
        [
            {
                "id": "Observation.code",
                "path": "Observation.code",
                "constraint": [rule],
                "binding": binding,
            }
        ],
    )
    code = {e["id"]: e for e in generate_snapshot(profile, official)}["Observation.code"]
    assert [c["key"] for c in code["constraint"]] == ["ele-1", "test-1"]
    assert code["constraint"][1]["source"] == TEST + "merge"
    assert code["binding"] == binding


@pytest.mark.parametrize(
    "elements, message",
    [
        ([{"id": "Observation.nothing", "path": "Observation.nothing"}], "has no element nothing"),
        ([{"id": "Observation.valueFoo", "path": "Observation.valueFoo"}], "allows no type Foo"),
        ([{"id": "Patient.name", "path": "Patient.name"}], "is not in Observation"),
        (
            [{"id": "Observation.value[x].value", "path": "Observation.value[x].value"}],
            "has no element value",
        ),
    ],
)
def test_a_differential_that_does_not_fit_is_refused(official, elements, message):
    with pytest.raises(SnapshotError, match=message):
        generate_snapshot(_profile("bad", SD + "Observation", elements), official)


def test_a_circular_or_missing_base_is_refused(official):
    conformance = ConformanceSet.from_folders([FOLDER])
    conformance.snapshot_builder = generate_snapshot
    conformance.add(_profile("a", TEST + "b", [{"id": "Observation", "path": "Observation"}]))
    conformance.add(_profile("b", TEST + "a", [{"id": "Observation", "path": "Observation"}]))
    with pytest.raises(SnapshotError, match="circular"):
        conformance.snapshot(TEST + "a")
    with pytest.raises(SnapshotError, match="no snapshot for the base"):
        generate_snapshot(_profile("c", TEST + "missing", []), official)


def _extension():
    return _profile(
        "test-nationality",
        SD + "Extension",
        [
            {"id": "Extension.url", "path": "Extension.url", "fixedUri": TEST + "test-nationality"},
            {
                "id": "Extension.value[x]",
                "path": "Extension.value[x]",
                "type": [{"code": "CodeableConcept"}],
            },
        ],
        kind="complex-type",
        type="Extension",
        context=[{"type": "element", "expression": "Patient"}],
    )


def _patient():
    return _profile(
        "test-patient",
        SD + "Patient",
        [
            {
                "id": "Patient.extension:nationality",
                "path": "Patient.extension",
                "sliceName": "nationality",
                "max": "1",
                "type": [{"code": "Extension", "profile": [TEST + "test-nationality"]}],
            },
            {"id": "Patient.birthDate", "path": "Patient.birthDate", "min": 1},
        ],
        type="Patient",
        snapshot={"element": [{"id": "Patient", "path": "Patient"}]},  # stale
    )


def _strict_patient():
    return _profile(
        "test-patient-strict",
        TEST + "test-patient",
        [{"id": "Patient.gender", "path": "Patient.gender", "min": 1}],
        type="Patient",
    )


def test_ilp_profiles_snapshot_writes_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ILP_PACKAGE_CACHE", str(PACKAGE_CACHE))
    for definition in (_extension(), _patient(), _strict_patient()):
        path = tmp_path / f"StructureDefinition-{definition['name']}.json"
        path.write_bytes(jsonio.dumps(definition, pretty=True) + b"\n")

    assert main(["profiles", "snapshot", str(tmp_path)]) == 0
    assert "3 snapshots written, 0 unchanged" in capsys.readouterr().out
    files = {p.name: p.read_bytes() for p in tmp_path.glob("*.json")}
    assert main(["profiles", "snapshot", str(tmp_path)]) == 0
    assert "0 snapshots written, 3 unchanged" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.json")} == files

    text = files["StructureDefinition-test-patient-strict.json"].decode()
    assert text.startswith('{\n  "resourceType": "StructureDefinition",\n  "url"')
    assert text.endswith("}\n")
    strict = jsonio.loads(text)
    assert list(strict).index("snapshot") == list(strict).index("differential") - 1
    elements = {e["id"]: e for e in strict["snapshot"]["element"]}
    assert elements["Patient.birthDate"]["min"] == 1  # from the fresh snapshot of its base
    assert elements["Patient.gender"]["min"] == 1
    assert elements["Patient.extension:nationality"]["max"] == "1"


PROFILE_FILES = sorted(
    path.name
    for path in PROFILES.glob("StructureDefinition-*.json")
    if jsonio.loads(path.read_bytes()).get("derivation") == "constraint"
)


@pytest.fixture(scope="module")
def regenerated():
    return {path.name: data for path, data in regenerate_folder(PROFILES, [FOLDER])}


@pytest.mark.parametrize("name", PROFILE_FILES)
def test_checked_in_profile_snapshots_are_current(regenerated, name):
    checked_in = jsonio.loads((PROFILES / name).read_bytes())
    assert "snapshot" in checked_in, f"profiles/{name} has no snapshot: run `ilp profiles snapshot`"
    assert checked_in == regenerated[name], f"profiles/{name} is stale: run `ilp profiles snapshot`"
