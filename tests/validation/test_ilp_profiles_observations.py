"""Broken variants of the ILP Observation examples (docs/profiles-observations.md).

Each variant breaks one rule of a measurement profile and must get that rule's issue at the
element at fault (its parent for a missing element or slice).  Helpers: ilp_variants.py.
"""

from __future__ import annotations

import pytest

from tests.validation.ilp_variants import (
    VARIANT_ARGS,
    append,
    both,
    check_variant,
    drop,
    put,
    variants_of,
)


def obs(name):
    return variants_of(f"Observation-ilp-obs-{name}-example")


weight = obs("body-weight")
length = obs("body-length")  # lying: code.coding 0 = 8302-2, 1 = 8306-3
glucose = obs("blood-glucose")
panel = obs("bp-panel")  # component: 0 systolic, 1 diastolic
hfa = obs("zscore-height-for-age")
wfa = obs("zscore-weight-for-age")
wfh = obs("zscore-weight-for-height")  # derivedFrom: 0 weight, 1 length

QUANTITY = "Observation.value.ofType(Quantity)"
MIN_1 = ": minimum required = 1"
OBS_CODES = "https://fhir.ilp-gateway.id/ValueSet/ilp-obs-codes"
UCUM = "http://unitsofmeasure.org"
WARNING = "warning"


def value(number):
    return put("valueQuantity.value", number)


COMMON = [  # ilp-obs-measurement, on the body-weight example
    weight("no-status", drop("status"), "Observation.status" + MIN_1, "Observation"),
    weight("no-category", drop("category"), "Observation.category" + MIN_1, "Observation"),
    weight(
        "category-exam-only", put("category.0.coding.0.code", "exam"), "ilp-obs-1", "Observation"
    ),
    weight(
        "category-laboratory",
        put("category.0.coding.0.code", "laboratory"),
        "Observation.category:VSCat",
        "Observation",
    ),
    weight(
        "code-of-body-height",
        put("code.coding.0.code", "8302-2"),
        "Observation.code.coding:loinc",
        "Observation.code",
    ),
    weight(
        "code-text-only",
        put("code", {"text": "Berat badan"}),
        "Observation.code.coding" + MIN_1,
        "Observation.code",
    ),
    weight(
        "coding-without-system",
        drop("code.coding.0.system"),
        "coding.system" + MIN_1,
        "Observation.code.coding[0]",
    ),
    weight("no-subject", drop("subject"), "Observation.subject" + MIN_1, "Observation"),
    weight(
        "subject-a-group",
        put("subject", {"reference": "Group/x"}),
        "Found Group",
        "Observation.subject",
    ),
    weight(
        "subject-display-only",
        put("subject", {"display": "x"}),
        "subject.reference" + MIN_1,
        "Observation.subject",
    ),
    weight("no-encounter", drop("encounter"), "Observation.encounter" + MIN_1, "Observation"),
    weight(
        "encounter-display-only",
        put("encounter", {"display": "x"}),
        "encounter.reference" + MIN_1,
        "Observation.encounter",
    ),
    weight(
        "no-effective", drop("effectiveDateTime"), "Observation.effective[x]" + MIN_1, "Observation"
    ),
    weight("no-performer", drop("performer"), "Observation.performer" + MIN_1, "Observation"),
    weight(
        "performer-a-patient",
        put("performer.0", {"reference": "Patient/x"}),
        "Found Patient",
        "Observation.performer[0]",
    ),
    weight("no-value", drop("valueQuantity"), "ilp-obs-2", "Observation"),
    weight(
        "value-as-string",
        both(drop("valueQuantity"), put("valueString", "8.6")),
        "valueString",
        "Observation.value.ofType(string)",
    ),
    weight(
        "quantity-without-value", drop("valueQuantity.value"), "value[x].value" + MIN_1, QUANTITY
    ),
    weight("quantity-without-unit", drop("valueQuantity.unit"), "value[x].unit" + MIN_1, QUANTITY),
    weight(
        "quantity-without-system", drop("valueQuantity.system"), "value[x].system" + MIN_1, QUANTITY
    ),
    weight("quantity-without-code", drop("valueQuantity.code"), "value[x].code" + MIN_1, QUANTITY),
    weight(
        "quantity-not-ucum",
        put("valueQuantity.system", "http://example.org"),
        f"must be exactly '{UCUM}'",
        QUANTITY + ".system",
    ),
]

MEASUREMENTS = [  # units, and the ranges that catch unit mistakes
    weight(
        "weight-in-grams",
        put("valueQuantity.code", "g"),
        "must be exactly 'kg'",
        QUANTITY + ".code",
    ),
    weight("weight-negative", value(-1), "ilp-obs-weight-1", QUANTITY),
    weight("weight-3300-kg", value(3300), "ilp-obs-weight-1", QUANTITY),
    length("length-0", value(0), "ilp-obs-height-1", QUANTITY),
    length("length-without-position", drop("code.coding.1"), "ilp-obs-height-2", "Observation"),
    length(
        "length-both-positions",
        append("code.coding", {"system": "http://loinc.org", "code": "8308-9"}),
        "ilp-obs-height-2",
        "Observation",
    ),
    obs("head-circumference")("head-120-cm", value(120), "ilp-obs-head-1", QUANTITY),
    obs("muac")("muac-100-cm", value(100), "ilp-obs-muac-1", QUANTITY),
    obs("waist-circumference")("waist-400-cm", value(400), "ilp-obs-waist-1", QUANTITY),
    obs("bmi")("bmi-250", value(250), "ilp-obs-bmi-1", QUANTITY),
    obs("bp-systolic")("systolic-400", value(400), "ilp-obs-sbp-1", QUANTITY),
    obs("bp-diastolic")("diastolic-0", value(0), "ilp-obs-dbp-1", QUANTITY),
    obs("hemoglobin")("hemoglobin-in-g-per-L", value(130), "ilp-obs-hemoglobin-1", QUANTITY),
    glucose("glucose-5000", value(5000), "ilp-obs-glucose-1", QUANTITY),
    glucose("glucose-in-mmol-per-L", value(6.2), "ilp-obs-glucose-2", QUANTITY, severity=WARNING),
    glucose(
        "glucose-code-unknown", put("code.coding.0.code", "9999-9"), OBS_CODES, "Observation.code"
    ),
    glucose(
        "glucose-vital-signs",
        put("category.0.coding.0.code", "vital-signs"),
        "Observation.category:LabCat",
        "Observation",
    ),
]

BLOOD_PRESSURE_PANEL = [
    panel(
        "systolic-below-diastolic",
        put("component.0.valueQuantity.value", 70),
        "ilp-obs-bp-1",
        "Observation",
    ),
    panel("no-diastolic", drop("component.1"), "Observation.component:DiastolicBP", "Observation"),
    panel(
        "two-systolic",
        put("component.1.code.coding.0.code", "8480-6"),
        "SystolicBP: max allowed = 1",
        "Observation",
    ),
    panel("no-components", drop("component"), "ilp-obs-2", "Observation"),
    panel(
        "diastolic-in-mmHg",
        put("component.1.valueQuantity.code", "mmHg"),
        "must be exactly 'mm[Hg]'",
        "Observation.component[1].value.ofType(Quantity).code",
    ),
    panel(
        "systolic-400",
        put("component.0.valueQuantity.value", 400),
        "ilp-obs-sbp-1",
        "Observation.component[0].value.ofType(Quantity)",
    ),
    panel(
        "panel-with-value",
        put("valueQuantity", {"value": 1, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}),
        "Observation.value[x]: max allowed = 0",
        "Observation",
    ),
]

Z_SCORES = [
    wfh("wfh-minus-7", value(-7), "ilp-obs-zscore-wfh-1", QUANTITY, severity=WARNING),
    hfa("hfa-plus-6.5", value(6.5), "ilp-obs-zscore-hfa-1", QUANTITY, severity=WARNING),
    wfa("wfa-plus-5.5", value(5.5), "ilp-obs-zscore-wfa-1", QUANTITY, severity=WARNING),
    wfh(
        "wfh-one-derivedFrom",
        drop("derivedFrom.1"),
        "derivedFrom: minimum required = 2",
        "Observation",
    ),
    hfa(
        "hfa-no-derivedFrom", drop("derivedFrom"), "Observation.derivedFrom" + MIN_1, "Observation"
    ),
    wfh(
        "wfh-coded-weight-for-age",
        put("code.coding.0.code", "weight-for-age"),
        "coding:indicator",
        "Observation.code",
    ),
    wfh(
        "wfh-coded-arm-for-age",  # a WHO indicator the ILP code system does not define
        put("code.coding.0.code", "arm-circumference-for-age"),
        OBS_CODES,
        "Observation.code",
    ),
    wfh(
        "wfh-unit-1",
        put("valueQuantity.code", "1"),
        "must be exactly '{Z-score}'",
        QUANTITY + ".code",
    ),
]


@pytest.mark.parametrize(VARIANT_ARGS, COMMON)
def test_broken_measurement(ilp_validator, name, mutation, words, expression, severity):
    check_variant(ilp_validator, name, mutation, words, expression, severity)


@pytest.mark.parametrize(VARIANT_ARGS, MEASUREMENTS)
def test_broken_unit_or_range(ilp_validator, name, mutation, words, expression, severity):
    check_variant(ilp_validator, name, mutation, words, expression, severity)


@pytest.mark.parametrize(VARIANT_ARGS, BLOOD_PRESSURE_PANEL)
def test_broken_blood_pressure_panel(ilp_validator, name, mutation, words, expression, severity):
    check_variant(ilp_validator, name, mutation, words, expression, severity)


@pytest.mark.parametrize(VARIANT_ARGS, Z_SCORES)
def test_broken_z_score(ilp_validator, name, mutation, words, expression, severity):
    check_variant(ilp_validator, name, mutation, words, expression, severity)


def test_a_conditional_reference_is_typed_by_what_comes_before_its_criteria(ilp_validator):
    """A visit number such as 001/XI/2026 in the criteria is part of a value, not a path."""
    import json

    from tests.validation.conftest import PROFILES_FOLDER

    path = PROFILES_FOLDER / "examples" / "Observation-ilp-obs-body-weight-example.json"
    observation = json.loads(path.read_text())
    observation["encounter"] = {
        "reference": "Encounter?identifier=https://x.id/kunjungan|001/XI/2026"
    }
    observation["subject"] = {"reference": "Patient?identifier=https://x.id/rm|RM/2026/7"}
    assert [i for i in ilp_validator.validate(observation) if i.severity == "error"] == []
    observation["subject"] = {"reference": "Group?identifier=https://x.id/rm|RM/2026/7"}
    errors = [i for i in ilp_validator.validate(observation) if i.severity == "error"]
    assert [i.expression for i in errors] == [("Observation.subject",)]
