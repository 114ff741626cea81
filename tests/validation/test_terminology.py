"""Binding checks against the official R4 terminology (hl7.fhir.r4.examples 4.0.1).

Answers are the ones a FHIR user expects from the published value sets; the rules the
package does not exercise (case-insensitive systems, property filters, expansion-only
value sets, ...) are checked on small resources added to a ConformanceSet.
"""

from __future__ import annotations

import threading

import pytest

from server.fhir.packages import R4_EXAMPLES, package_folder
from server.fhir.validation.conformance import ConformanceSet
from server.fhir.validation.terminology import UCUM, Terminology, is_ucum_syntax
from tests.conftest import PACKAGE_CACHE

FOLDER = package_folder(PACKAGE_CACHE, R4_EXAMPLES)
VS = "http://hl7.org/fhir/ValueSet/"
THO_VS = "http://terminology.hl7.org/ValueSet/"
THO_CS = "http://terminology.hl7.org/CodeSystem/"
GENDER = "http://hl7.org/fhir/administrative-gender"
ACT_CODE = THO_CS + "v3-ActCode"
LOINC = "http://loinc.org"


@pytest.fixture(scope="module")
def package():
    if not (FOLDER / "package.json").exists():
        pytest.fail(f"{R4_EXAMPLES} is not in {FOLDER}; run `make fhir-package`")
    return ConformanceSet.from_folders([FOLDER])


@pytest.fixture(scope="module")
def terminology(package):
    return Terminology(package)


def _codes(terminology, url):
    expansion = terminology.expansion(url)
    assert expansion is not None, f"{url} should be enumerable"
    return {code for _, code in expansion}


@pytest.mark.parametrize("code", ["male", "female", "other", "unknown"])
def test_administrative_gender_holds_the_four_codes(terminology, code):
    check = terminology.check_code(VS + "administrative-gender", GENDER, code)
    assert check.status == "valid"
    assert check.display == code.capitalize()


def test_administrative_gender_refuses_m_and_names_code_system_and_value_set(terminology):
    check = terminology.check_code(VS + "administrative-gender", GENDER, "M")
    assert check.status == "invalid"
    assert "'M'" in check.message and GENDER in check.message
    assert VS + "administrative-gender" in check.message
    assert _codes(terminology, VS + "administrative-gender") == {
        "male",
        "female",
        "other",
        "unknown",
    }


def test_matching_is_case_sensitive_by_default(terminology):
    assert terminology.check_code(VS + "administrative-gender", GENDER, "Male").status == (
        "invalid"
    )


def test_a_code_of_another_system_is_not_a_member(terminology):
    check = terminology.check_code(VS + "administrative-gender", THO_CS + "v2-0001", "male")
    assert check.status == "invalid"


def test_observation_status(terminology):
    assert _codes(terminology, VS + "observation-status") == {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    }
    url, system = VS + "observation-status", "http://hl7.org/fhir/observation-status"
    assert terminology.check_code(url, system, "final").status == "valid"
    assert terminology.check_code(url, system, "done").status == "invalid"


@pytest.mark.parametrize("code", ["AMB", "EMER", "FLD", "HH", "IMP", "VR", "ACUTE"])
def test_act_encounter_code_follows_the_act_code_hierarchy(terminology, code):
    check = terminology.check_code(THO_VS + "v3-ActEncounterCode", ACT_CODE, code)
    assert check.status == "valid"


@pytest.mark.parametrize(
    "code",
    [
        "_ActEncounterCode",  # the abstract head, also excluded by name
        "_ActCareProvisionCode",  # its parent
        "ACCTRECEIVABLE",  # an ActCode from another branch
        "amb",  # ActCode is case-sensitive
    ],
)
def test_act_encounter_code_refuses_codes_outside_the_branch(terminology, code):
    check = terminology.check_code(THO_VS + "v3-ActEncounterCode", ACT_CODE, code)
    assert check.status == "invalid"
    assert code in check.message and ACT_CODE in check.message
    assert "v3-ActEncounterCode" in check.message


def test_marital_status_mixes_two_systems(terminology):
    url = VS + "marital-status"
    assert terminology.check_code(url, THO_CS + "v3-MaritalStatus", "M").status == "valid"
    assert terminology.check_code(url, THO_CS + "v3-NullFlavor", "UNK").status == "valid"
    # Only UNK is taken from NullFlavor, not the whole system.
    assert terminology.check_code(url, THO_CS + "v3-NullFlavor", "NI").status == "invalid"
    assert terminology.check_code(url, THO_CS + "v3-MaritalStatus", "UNK").status == "invalid"
    assert {system for system, _ in terminology.expansion(url)} == {
        THO_CS + "v3-MaritalStatus",
        THO_CS + "v3-NullFlavor",
    }


def test_a_code_without_system_is_valid_when_one_system_holds_it(terminology):
    assert terminology.check_code(VS + "marital-status", None, "M").status == "valid"
    assert terminology.check_code(VS + "marital-status", None, "UNK").display == "unknown"
    check = terminology.check_code(VS + "administrative-gender", None, "M")
    assert check.status == "invalid" and "no system" in check.message


def test_exclude_removes_codes_from_an_include(terminology):
    url, system = VS + "encounter-participant-type", THO_CS + "v3-ParticipationType"
    # is-a _ParticipationAncillary plus SPRF/PPRF/PART and participant-type, minus the head
    assert terminology.check_code(url, system, "ADM").status == "valid"
    assert terminology.check_code(url, system, "SPRF").status == "valid"
    assert terminology.check_code(url, THO_CS + "participant-type", "translator").status == (
        "valid"
    )
    assert terminology.check_code(url, system, "_ParticipationAncillary").status == "invalid"
    assert terminology.check_code(url, system, "AUT").status == "invalid"


def test_an_exclude_by_name_is_certain_even_when_the_rest_is_not(terminology):
    # LOINC parent = LP43571-6 (not enumerable here) minus 5932-9
    url = VS + "example-intensional"
    assert terminology.check_code(url, LOINC, "5932-9").status == "invalid"
    assert terminology.check_code(url, LOINC, "2093-3").status == "unknown"


def test_is_not_a_filter(terminology):
    # v2-0131 without O (other) and its descendants
    codes = _codes(terminology, VS + "patient-contactrelationship")
    assert {"C", "E", "F", "N", "S", "U"} <= codes
    assert "O" not in codes


def test_a_value_set_including_another_value_set(terminology):
    url = VS + "yesnodontknow"  # v2-0136 plus data-absent-reason#asked-unknown
    assert terminology.check_code(url, THO_CS + "v2-0136", "Y").status == "valid"
    assert terminology.check_code(url, THO_CS + "v2-0136", "N").status == "valid"
    dar = THO_CS + "data-absent-reason"
    assert terminology.check_code(url, dar, "asked-unknown").status == "valid"
    assert terminology.check_code(url, dar, "not-asked").status == "invalid"
    assert len(terminology.expansion(url)) == 3


def test_listed_loinc_codes_are_enumerable_without_loinc(terminology):
    url = VS + "observation-vitalsignresult"
    codes = _codes(terminology, url)
    assert {"8867-4", "8480-6", "8462-4", "29463-7", "8302-2", "85354-9"} <= codes
    assert len(codes) == 13
    assert terminology.check_code(url, LOINC, "8867-4").status == "valid"
    check = terminology.check_code(url, LOINC, "2339-0")  # glucose: a real LOINC code
    assert check.status == "invalid" and "2339-0" in check.message


def test_whole_loinc_is_unknown(terminology):
    url = VS + "observation-codes"
    assert terminology.expansion(url) is None
    check = terminology.check_code(url, LOINC, "8867-4")
    assert check.status == "unknown"
    assert LOINC in check.message and url in check.message and "8867-4" in check.message
    assert terminology.check_coding_in_system(LOINC, "8867-4").status == "unknown"


def test_a_stored_expansion_answers_when_compose_cannot(terminology):
    # compose is a LOINC filter; the published expansion lists its eight codes
    url = VS + "example-expansion"
    assert terminology.check_code(url, LOINC, "2093-3").status == "valid"
    assert terminology.check_code(url, LOINC, "8867-4").status == "invalid"
    assert len(terminology.expansion(url)) == 8


@pytest.mark.parametrize("unit", ["kg", "cm", "mm[Hg]", "/min", "Cel", "kg/m2", "[in_i]"])
def test_ucum_common_units(terminology, unit):
    check = terminology.check_code(VS + "ucum-common", UCUM, unit)
    assert check.status == "valid"


@pytest.mark.parametrize("unit", ["furlong", "KG", "mmHg"])
def test_ucum_common_refuses_units_it_does_not_list(terminology, unit):
    assert terminology.check_code(VS + "ucum-common", UCUM, unit).status == "invalid"


def test_whole_ucum_is_unknown_but_malformed_units_are_not(terminology):
    url = VS + "ucum-units"
    assert terminology.expansion(url) is None
    assert terminology.check_code(url, UCUM, "mm[Hg]").status == "unknown"
    check = terminology.check_code(url, UCUM, "mm Hg")
    assert check.status == "invalid" and "UCUM syntax" in check.message
    assert terminology.check_coding_in_system(UCUM, "kg/(m.s").status == "invalid"
    assert terminology.check_coding_in_system(UCUM, "kg").status == "unknown"


@pytest.mark.parametrize(
    "unit",
    ["kg", "mm[Hg]", "/min", "10*3/uL", "kg/m2", "{score}", "mg{total}", "(m.s)/kg", "m-1", "%"],
)
def test_ucum_syntax_accepts_well_formed_units(unit):
    assert is_ucum_syntax(unit)


@pytest.mark.parametrize(
    "unit", ["", "mm Hg", "kg..m", "kg/", "/", "(kg", "kg)", "m[Hg", "{a", "()", "µg", "kg{a}b"]
)
def test_ucum_syntax_refuses_malformed_units(unit):
    assert not is_ucum_syntax(unit)


def test_code_systems_not_held_or_not_complete_are_unknown(terminology):
    url = VS + "iso3166-1-3"  # regex over urn:iso:std:iso:3166, which is not held
    assert terminology.check_code(url, "urn:iso:std:iso:3166", "IDN").status == "unknown"
    sct = terminology.check_coding_in_system("http://snomed.info/sct", "22298006")
    assert sct.status == "unknown" and "not-present" in sct.message


def test_check_coding_in_system(terminology):
    assert terminology.check_coding_in_system(ACT_CODE, "AMB").display == "ambulatory"
    # existence in the system, abstract or not
    assert terminology.check_coding_in_system(ACT_CODE, "_ActEncounterCode").status == "valid"
    check = terminology.check_coding_in_system(ACT_CODE, "NOPE")
    assert check.status == "invalid" and ACT_CODE in check.message


def test_a_code_system_value_set_without_its_own_resource(terminology):
    # CodeSystem restful-interaction names this implicit value set; no ValueSet file has it
    url = VS + "restful-interaction"
    system = "http://hl7.org/fhir/restful-interaction"
    assert terminology.check_code(url, system, "vread").status == "valid"
    assert terminology.check_code(url, system, "upsert").status == "invalid"


def test_a_value_set_not_held_is_unknown(terminology):
    check = terminology.check_code("http://example.org/ValueSet/nowhere", GENDER, "male")
    assert check.status == "unknown" and "nowhere" in check.message
    assert terminology.expansion("http://example.org/ValueSet/nowhere") is None


def test_versioned_value_set_url(terminology):
    url = VS + "administrative-gender|4.0.1"
    assert terminology.check_code(url, GENDER, "female").status == "valid"


def test_retired_codes_are_not_members(terminology):
    # v2-0532 lists NullFlavor NP, which NullFlavor marks retired
    url = THO_VS + "v2-0532"
    null_flavor = THO_CS + "v3-NullFlavor"
    assert terminology.check_code(url, null_flavor, "ASKU").status == "valid"
    assert terminology.check_code(url, THO_CS + "v2-0136", "Y").status == "valid"
    assert terminology.check_code(url, null_flavor, "NP").status == "invalid"
    assert terminology.check_coding_in_system(null_flavor, "NP").status == "valid"


def test_most_package_value_sets_are_enumerable(terminology, package):
    urls = [url for url in package.urls("ValueSet") if "|" not in url]
    enumerable = [url for url in urls if terminology.expansion(url) is not None]
    assert len(urls) == 1316
    assert len(enumerable) > 1200


class _CountingSet(ConformanceSet):
    def __init__(self):
        super().__init__()
        self.value_set_reads: list[str] = []

    def value_set(self, url):
        self.value_set_reads.append(url)
        return super().value_set(url)


def test_an_expansion_is_built_once_per_url():
    conformance = _CountingSet()
    conformance.add_folder(FOLDER)
    terminology = Terminology(conformance)
    url = THO_VS + "v3-ActEncounterCode"
    assert terminology.check_code(url, ACT_CODE, "AMB").status == "valid"
    assert conformance.value_set_reads == [url]
    assert terminology.check_code(url, ACT_CODE, "EMER").status == "valid"
    assert terminology.check_code(url, ACT_CODE, "XYZ").status == "invalid"
    assert terminology.expansion(url) is not None
    assert conformance.value_set_reads == [url]


def test_concurrent_first_checks_agree_and_expand_once():
    conformance = _CountingSet()
    conformance.add_folder(FOLDER)
    terminology = Terminology(conformance)
    url = VS + "encounter-participant-type"
    results = []

    def check():
        results.append(terminology.check_code(url, THO_CS + "v3-ParticipationType", "ADM"))

    threads = [threading.Thread(target=check) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {result.status for result in results} == {"valid"}
    assert conformance.value_set_reads.count(url) == 1


# Rules the package does not exercise, on small resources.

CS = "http://example.org/CodeSystem/"


def _code_system(name, concepts, **extra):
    return {
        "resourceType": "CodeSystem",
        "url": CS + name,
        "status": "active",
        "content": "complete",
        "concept": concepts,
        **extra,
    }


def _value_set(name, compose=None, expansion=None):
    resource = {"resourceType": "ValueSet", "url": VS + name, "status": "active"}
    if compose is not None:
        resource["compose"] = compose
    if expansion is not None:
        resource["expansion"] = expansion
    return resource


def _prop(code, **value):
    return {"code": code, **value}


@pytest.fixture
def small():
    conformance = ConformanceSet()
    conformance.add(
        _code_system(
            "shapes",
            [
                {
                    "code": "shape",
                    "property": [_prop("notSelectable", valueBoolean=True)],
                    "concept": [
                        {
                            "code": "polygon",
                            "property": [_prop("sides", valueInteger=0)],
                            "concept": [
                                {"code": "triangle", "property": [_prop("sides", valueInteger=3)]},
                                {"code": "square", "property": [_prop("sides", valueInteger=4)]},
                            ],
                        },
                        {"code": "circle", "display": "Circle"},
                    ],
                },
                # hierarchy by property instead of nesting
                {"code": "rhombus", "property": [_prop("subsumedBy", valueCode="polygon")]},
                {"code": "kite", "property": [_prop("parent", valueCode="polygon")]},
                {"code": "oval", "property": [_prop("status", valueCode="retired")]},
                {"code": "blob", "property": [_prop("inactive", valueBoolean=True)]},
            ],
            property=[{"code": "sides", "type": "integer"}, {"code": "status", "type": "code"}],
        )
    )
    conformance.add(
        _code_system(
            "letters",
            [{"code": "A"}, {"code": "b"}],
            caseSensitive=False,
            valueSet=VS + "all-letters",
        )
    )
    conformance.add(_code_system("fragment", [{"code": "x"}], content="fragment"))
    return conformance


def _members(conformance, *include, exclude=(), inactive=None):
    compose = {"include": list(include)}
    if exclude:
        compose["exclude"] = list(exclude)
    if inactive is not None:
        compose["inactive"] = inactive
    conformance.add(_value_set("probe", compose))
    expansion = Terminology(conformance).expansion(VS + "probe")
    return None if expansion is None else {code for _, code in expansion}


def _filter(prop, op, value):
    return {"system": CS + "shapes", "filter": [{"property": prop, "op": op, "value": value}]}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (("concept", "is-a", "polygon"), {"polygon", "triangle", "square", "rhombus", "kite"}),
        (("concept", "descendent-of", "polygon"), {"triangle", "square", "rhombus", "kite"}),
        (("concept", "is-not-a", "polygon"), {"circle"}),
        (("concept", "generalizes", "square"), {"polygon", "square"}),
        (("concept", "=", "circle"), {"circle"}),
        (("concept", "in", "circle,square"), {"circle", "square"}),
        (("concept", "regex", "[a-z]*le"), {"triangle", "circle"}),
        (("parent", "=", "polygon"), {"triangle", "square", "rhombus", "kite"}),
        (("child", "=", "square"), {"polygon"}),
        (("sides", "=", "4"), {"square"}),
        (("sides", "in", "3,4"), {"triangle", "square"}),
        (("sides", "regex", "[34]"), {"triangle", "square"}),
        (("sides", "exists", "true"), {"polygon", "triangle", "square"}),
        (("sides", "exists", "false"), {"circle", "rhombus", "kite"}),
    ],
)
def test_filters(small, rule, expected):
    # shape is notSelectable, oval retired and blob inactive: never members
    assert _members(small, _filter(*rule)) == expected


@pytest.mark.parametrize(
    "rule", [("sides", "is-a", "4"), ("acme-plasma", "=", "true"), ("concept", "regex", "(")]
)
def test_unsupported_filters_are_unknown(small, rule):
    assert _members(small, _filter(*rule)) is None
    small.add(_value_set("probe", {"include": [_filter(*rule)]}))
    check = Terminology(small).check_code(VS + "probe", CS + "shapes", "square")
    assert check.status == "unknown" and "not supported" in check.message


def test_whole_system_leaves_out_abstract_and_inactive_concepts(small):
    everything = {"polygon", "triangle", "square", "circle", "rhombus", "kite"}
    assert _members(small, {"system": CS + "shapes"}) == everything
    assert _members(small, {"system": CS + "shapes"}, inactive=True) == everything | {
        "oval",
        "blob",
    }


def test_include_value_set_and_system_intersect(small):
    listed = [{"code": "circle"}, {"code": "oval"}, {"code": "square"}]
    small.add(_value_set("round", {"include": [{"system": CS + "shapes", "concept": listed}]}))
    both = {"valueSet": [VS + "round"], "system": CS + "shapes"}
    both["filter"] = [{"property": "concept", "op": "is-a", "value": "polygon"}]
    assert _members(small, both) == {"square"}
    assert _members(small, {"valueSet": [VS + "round", VS + "all-letters"]}) == set()


def test_a_complete_code_system_must_define_listed_codes(small):
    include = {"system": CS + "shapes", "concept": [{"code": "circle"}, {"code": "hexagon"}]}
    assert _members(small, include) == {"circle"}


def test_case_insensitive_code_system(small):
    terminology = Terminology(small)
    url = VS + "all-letters"  # the CodeSystem's implicit value set
    assert terminology.check_code(url, CS + "letters", "a").status == "valid"
    assert terminology.check_code(url, CS + "letters", "B").status == "valid"
    assert terminology.check_code(url, None, "B").status == "valid"
    assert terminology.check_code(url, CS + "letters", "c").status == "invalid"
    assert terminology.check_coding_in_system(CS + "letters", "a").status == "valid"


def test_a_code_in_two_systems_needs_its_system(small):
    small.add(_code_system("more-letters", [{"code": "A"}]))
    small.add(
        _value_set(
            "two", {"include": [{"system": CS + "letters"}, {"system": CS + "more-letters"}]}
        )
    )
    terminology = Terminology(small)
    check = terminology.check_code(VS + "two", None, "A")
    assert check.status == "unknown" and "system" in check.message
    assert terminology.check_code(VS + "two", None, "b").status == "valid"


def test_open_parts_stay_per_system(small):
    small.add(
        _value_set(
            "mixed",
            {
                "include": [
                    {"system": LOINC},
                    {"system": CS + "shapes", "concept": [{"code": "kite"}]},
                ]
            },
        )
    )
    terminology = Terminology(small)
    url = VS + "mixed"
    assert terminology.expansion(url) is None
    assert terminology.check_code(url, LOINC, "8867-4").status == "unknown"
    assert terminology.check_code(url, CS + "shapes", "kite").status == "valid"
    assert terminology.check_code(url, CS + "shapes", "circle").status == "invalid"
    assert terminology.check_code(url, None, "kite").status == "unknown"  # could be LOINC too


def test_fragment_code_systems_are_unknown(small):
    assert _members(small, {"system": CS + "fragment"}) is None
    assert Terminology(small).check_coding_in_system(CS + "fragment", "x").status == "unknown"
    listed = {"system": CS + "fragment", "concept": [{"code": "x"}, {"code": "y"}]}
    assert _members(small, listed) == {"x", "y"}


def test_expansion_only_value_set_uses_nested_contains(small):
    contains = [
        {"system": CS + "shapes", "code": "circle", "display": "Circle"},
        {
            "abstract": True,
            "display": "Polygons",
            "contains": [
                {"system": CS + "shapes", "code": "square"},
                {"system": CS + "shapes", "code": "oval", "inactive": True},
            ],
        },
    ]
    small.add(_value_set("listed", expansion={"timestamp": "2024-01-01", "contains": contains}))
    terminology = Terminology(small)
    assert terminology.expansion(VS + "listed") == {
        (CS + "shapes", "circle"),
        (CS + "shapes", "square"),
    }
    assert terminology.check_code(VS + "listed", CS + "shapes", "circle").display == "Circle"
    paged = {"timestamp": "2024-01-01", "total": 40, "contains": contains}
    small.add(_value_set("paged", expansion=paged))
    assert Terminology(small).expansion(VS + "paged") is None


def test_a_value_set_including_itself_is_unknown_not_a_hang(small):
    small.add(_value_set("loop", {"include": [{"valueSet": [VS + "loop"]}]}))
    check = Terminology(small).check_code(VS + "loop", CS + "shapes", "circle")
    assert check.status == "unknown"
