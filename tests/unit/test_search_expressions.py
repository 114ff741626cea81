"""Compiled search expressions agree with fhirpathpy on every official example."""

from __future__ import annotations

import json
from typing import Any

import fhirpathpy
import pytest
from fhirpathpy.models import models

from server.fhir import fhirpath
from server.fhir.packages import R4_EXAMPLES, package_folder, resources_in
from server.fhir.registry import SUPPORTED
from server.fhir.searchparams import definitions_in, from_definitions
from tests.conftest import PACKAGE_CACHE

FOLDER = package_folder(PACKAGE_CACHE, R4_EXAMPLES)


def _comparable(part):
    # fhirpathpy lacks resolve() and hasExtension(), and roots paths at the resource type.
    return not any(s in part for s in ("resolve()", "hasExtension")) and not part.startswith(
        "Resource."
    )


def _normal(values):
    return sorted(json.dumps(v, sort_keys=True, default=float) for v in values)


def test_compiled_paths_select_what_fhirpathpy_selects():
    params = from_definitions(SUPPORTED, definitions_in(FOLDER))
    compared = 0
    compiled: dict[str, Any] = {}  # fhirpathpy parses each path once, not once per resource
    for _path, resource in resources_in(FOLDER):
        resource_type = resource["resourceType"]
        if resource_type not in SUPPORTED:
            continue
        for param in params.for_type(resource_type).values():
            parts = fhirpath.parts_for(resource_type, param.expression or "")
            for part in filter(_comparable, parts):
                try:
                    if part not in compiled:
                        compiled[part] = fhirpathpy.compile(part, models["r4"])
                    expected = compiled[part](resource, {})
                except Exception:  # fhirpathpy is stricter (e.g. singletons for 'as'), skip
                    continue
                got = fhirpath.accessor(resource_type, part)(resource)
                assert _normal(got) == _normal(expected), (resource["id"], part)
                compared += 1
    assert compared > 50_000


@pytest.mark.parametrize(
    "expression, compiled",
    [
        ("Observation.value as Quantity", True),
        ("Condition.onset.as(Age)", True),
        ("Observation.subject.where(resolve() is Patient)", True),
        ("Patient.telecom.where(system='phone')", True),
        ("Patient.deceased.exists() and Patient.deceased != false", False),
    ],
)
def test_simple_paths_avoid_the_interpreter(expression, compiled):
    head, dot, rest = expression.partition(".")
    assert (fhirpath._simple_steps(dot + rest, head) is not None) is compiled
