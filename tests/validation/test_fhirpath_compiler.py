"""The FHIRPath compiler decides every invariant exactly as fhirpathpy does.

Differential test: every constraint expression of the R4 package's StructureDefinitions and of
the ILP profiles is evaluated, compiled and by fhirpathpy (the way ``invariants.py`` calls it),
at every element it applies to in the official examples of the supported types (the four big
conformance types sampled, one file in ``_SAMPLE``) and in the ILP examples, and on hand-made
tricky inputs.  Elements are matched by path: each example is walked with the snapshots of its
type and of the datatypes below, so a node is known by all its definition paths
(``Observation.value[x]`` of type Quantity is also ``Quantity``).  A compiled evaluation may
hand over to fhirpathpy (``Undecidable``); otherwise both must fail, or return equal results.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import fhirpathpy
import orjson
import pytest
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from server.fhir.registry import SUPPORTED
from server.fhir.validation.fhirpath_compiler import Undecidable, compile_invariant
from server.fhir.validation.fhirpath_compiler.model import node_path
from server.fhir.validation.fhirpath_compiler.runtime import Failed
from tests.validation.conftest import CORE_FOLDER, PROFILES_FOLDER

_BIG = {"SearchParameter", "ValueSet", "CodeSystem", "StructureDefinition"}
_SAMPLE = 12  # one in _SAMPLE files of the big types
_PER_EXPRESSION = 60  # distinct nodes per (expression, base path)
_OPTIONS = {"traceFn": lambda *_: None}
_R4 = models["r4"]


def _load(path: Path) -> dict[str, Any]:
    return orjson.loads(path.read_bytes())


# -- definitions -----------------------------------------------------------------------------


class Definitions:
    """Element definitions by path (base types) and constraint expressions by path (all)."""

    def __init__(self) -> None:
        self.elements: dict[str, dict[str, Any]] = {}
        self.choices: dict[str, list[tuple[str, dict[str, str]]]] = defaultdict(list)
        self.constraints: dict[str, set[str]] = defaultdict(set)
        self.types: set[str] = set()
        files = sorted(CORE_FOLDER.glob("StructureDefinition-*.json"))
        for path in files + sorted(PROFILES_FOLDER.glob("StructureDefinition-*.json")):
            definition = _load(path)
            snapshot = definition.get("snapshot", {}).get("element", [])
            for element in snapshot:
                for constraint in element.get("constraint", []):
                    if constraint.get("expression"):
                        self.constraints[element["path"]].add(constraint["expression"])
            base = definition.get("derivation") != "constraint" and path.parent == CORE_FOLDER
            if base and definition.get("kind") != "logical":
                self.types.add(definition["type"])
                for element in snapshot:
                    self._add_element(element)

    def _add_element(self, element: dict[str, Any]) -> None:
        path = element["path"]
        self.elements[path] = element
        if path.endswith("[x]"):
            parent, name = path[:-3].rsplit(".", 1)
            suffixes = {t["code"][:1].upper() + t["code"][1:]: t["code"] for t in element["type"]}
            self.choices[parent].append((name, suffixes))

    @functools.cache  # noqa: B019 - one instance per test module
    def child(self, paths: tuple[str, ...], key: str) -> tuple[tuple[str, ...], str] | None:
        """The definition paths and type of ``key`` in an object known by ``paths``."""
        found = next((f for p in paths if (f := self.resolve(p, key)) is not None), None)
        if found is None:
            return None
        name, code, reference = found
        child = [f"{p}.{name}" for p in paths]
        if reference:
            child.append(reference)
        if code in self.types and code not in ("BackboneElement", "Element"):
            child.append(code)
        return tuple(child), code

    def resolve(self, path: str, key: str) -> tuple[str, str, str | None] | None:
        """(element name, type code, content reference) of ``key`` in an object at ``path``."""
        element = self.elements.get(f"{path}.{key}")
        if element is not None:
            reference = element.get("contentReference")
            if reference:
                return key, "BackboneElement", reference[1:]
            codes = [t["code"] for t in element.get("type", [])]
            return key, codes[0] if len(codes) == 1 else "Element", None
        for name, suffixes in self.choices.get(path, []):
            if key.startswith(name) and key[len(name) :] in suffixes:
                return f"{name}[x]", suffixes[key[len(name) :]], None
        return None


def _walk(defs: Definitions, resource: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """Every node of ``resource`` with its definition paths, type, resource and root."""
    kind = str(resource.get("resourceType"))
    stack: list[tuple[Any, tuple[str, ...], str, Any, Any]] = [
        (resource, (kind,), kind, resource, resource)
    ]
    while stack:
        node, paths, type_code, res, root = stack.pop()
        yield paths, type_code, node, res, root
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            if key == "resourceType" or key.startswith("_"):
                continue
            child = defs.child(paths, key)
            if child is None:
                continue
            child_paths, code = child
            for item in value if isinstance(value, list) else [value]:
                if code in ("Resource", "DomainResource") and isinstance(item, dict):
                    inner = str(item.get("resourceType"))
                    outer = root if key == "contained" else item
                    stack.append((item, (inner,), inner, item, outer))
                else:
                    stack.append((item, child_paths, code, res, root))


def _example_files() -> list[Path]:
    files = []
    for index, path in enumerate(sorted(CORE_FOLDER.glob("*.json"))):
        kind = path.name.split("-", 1)[0]
        if kind in SUPPORTED and (kind not in _BIG or index % _SAMPLE == 0):
            files.append(path)
    return files + sorted((PROFILES_FOLDER / "examples").glob("*.json"))


@pytest.fixture(scope="module")
def defs() -> Definitions:
    return Definitions()


@pytest.fixture(scope="module")
def cases(defs) -> dict[tuple[str, str], list[tuple[Any, Any, Any]]]:
    """(expression, base path) -> distinct (node, %resource, %rootResource) to evaluate at."""
    found: dict[tuple[str, str], dict[bytes, tuple[Any, Any, Any]]] = defaultdict(dict)
    for file in _example_files():
        resource = _load(file)
        for paths, code, node, res, root in _walk(defs, resource):
            node_key = None
            for definition_path in paths:
                base = code if definition_path.endswith("[x]") else definition_path
                for expression in defs.constraints.get(definition_path, ()):
                    for at in {base, node_path(base)}:  # as given, and as invariants.py has it
                        bucket = found[(expression, at)]
                        if len(bucket) >= _limit(expression, at):
                            continue
                        if node_key is None:
                            node_key = orjson.dumps(node, option=orjson.OPT_SORT_KEYS)
                        key = node_key
                        if "%" in expression:
                            key += b"|%d|%d" % (id(res), id(root))
                        bucket.setdefault(key, (node, res, root))
    return {key: list(bucket.values()) for key, bucket in found.items()}


# -- comparison ------------------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    """A value as fhirpathpy's result has it (floats as Decimals, extension-only objects
    dropped), tagged by kind so that True and 1 differ."""
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, float | int | Decimal):
        return ("number", Decimal(str(value)) if isinstance(value, float) else Decimal(value))
    if isinstance(value, dict):
        return ("object", tuple(sorted((k, _canonical(v)) for k, v in value.items())))
    if isinstance(value, list):
        kept = [v for v in value if not (isinstance(v, dict) and list(v) == ["extension"])]
        return ("list", tuple(_canonical(v) for v in kept))
    return (type(value).__name__, value)


@functools.cache
def _limit(expression: str, base: str) -> int:
    compiled = _compile(expression, base)
    return 3 if compiled is not None and compiled.always_fails else _PER_EXPRESSION


_compile = functools.cache(compile_invariant)
_parse = functools.cache(fhirpathpy.parse)


def _reference(expression: str, base: str, node: Any, resource: Any, root: Any) -> Any:
    """fhirpathpy's result, as invariants.py evaluates it; the exception when it raises."""
    try:
        return fhirpathpy.apply_parsed_path(
            ResourceNode.create_node(node, base),
            _parse(expression),
            {"resource": resource, "rootResource": root},
            _R4,
            _OPTIONS,
        )
    except Exception as error:  # noqa: BLE001 - any failure is an outcome to compare
        return error


def agree(expression: str, base: str, node: Any, resource: Any = None, root: Any = None) -> str:
    """'equal', 'failed' (both raise), 'undecided' or 'not compiled'; AssertionError if the
    compiled result, or whether the invariant holds, differs from fhirpathpy's."""
    resource = resource if resource is not None else node
    root = root if root is not None else resource
    compiled = _compile(expression, base)
    if compiled is None:
        return "not compiled"
    expected = _reference(expression, base, node, resource, root)
    where = f"{expression!r} at {base} on {orjson.dumps(node)[:300]!r}"
    try:
        holds = compiled.holds(node, resource, root)
    except Undecidable:
        pass
    else:
        passes = isinstance(expected, Exception) or expected != [False]
        assert holds == passes, f"{where}: holds() is {holds}, fhirpathpy gives {expected!r}"
    try:
        mine: Any = compiled.evaluate(node, resource, root)
    except Undecidable:
        return "undecided"
    except Failed as error:
        mine = error
    if isinstance(expected, Exception) or isinstance(mine, Exception):
        assert isinstance(expected, Exception), f"{where}: compiled raised {mine}, not fhirpathpy"
        assert isinstance(mine, Exception), f"{where}: fhirpathpy raised {expected!r}, not us"
        return "failed"
    assert _canonical(mine) == _canonical(expected), f"{where}: {mine!r} != {expected!r}"
    return "equal"


def test_compiled_invariants_agree_with_fhirpathpy_on_the_examples(cases):
    outcomes: dict[str, int] = defaultdict(int)
    problems = []
    for (expression, base), targets in sorted(cases.items()):
        for node, resource, root in targets:
            try:
                outcomes[agree(expression, base, node, resource, root)] += 1
            except AssertionError as problem:
                problems.append(str(problem))
    assert not problems, "\n".join(problems[:20])
    assert outcomes["equal"] > 5000 and outcomes["undecided"] < outcomes["equal"] / 100


def test_nearly_every_invariant_compiles(defs, cases):
    everywhere = {(e, path) for path, found in defs.constraints.items() for e in found}
    assert len({e for e, _ in everywhere}) > 240
    compiled = {e for e, path in everywhere if compile_invariant(e, path) is not None}
    assert len(compiled) >= 0.97 * len({e for e, _ in everywhere})
    evaluated = {e for e, _ in cases}
    assert len({e for e, base in cases if compile_invariant(e, base)}) >= 0.97 * len(evaluated)


# -- hand-made inputs ------------------------------------------------------------------------

_EXT = {"extension": [{"url": "http://x", "valueString": "e"}]}
_PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "active": True,
    "deceasedBoolean": False,
    "multipleBirthInteger": 2,
    "name": [
        {"given": ["Ann", "Bo", "Ann"], "_given": [None, _EXT, None], "family": "O'Neil"},
        {"given": ["Cy"]},
    ],
    "birthDate": "2001-02-03",
    "_birthDate": _EXT,
    "contained": [{"resourceType": "Organization", "id": "o1", "name": "Org"}],
    "extension": [
        {"url": "http://x", "valueString": "first"},
        {"url": "http://x", "valueString": "second"},
        {"url": "http://y", "valueInteger": -3},
    ],
}
_PLAIN_PATIENT = {
    "resourceType": "Patient",
    "id": "p2",
    "active": False,
    "gender": "female",
    "name": [{"given": ["Di"], "family": "Lu"}],
    "_birthDate": _EXT,
}
_OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}, {"code": "x"}]},
    "valueQuantity": {"value": 0.1, "unit": "kg"},
    "component": [
        {"code": {"text": "a"}, "valueQuantity": {"value": 120}},
        {"code": {"text": "b"}, "valueString": "high", "_valueString": _EXT},
        {"code": {"text": "c"}, "valueBoolean": False},
        {"code": {"text": "d"}, "valueString": "two values", "valueQuantity": {"value": 1}},
    ],
    "effectiveDateTime": "2021-05-06T07:08:09Z",
}
_QUANTITIES = [
    {"value": 0.1},
    {"value": -5},
    {"value": 300},
    {"value": 299.99999},
    {"value": 1e-7},
    {"value": 3, "_value": _EXT},
    {"_value": _EXT},
    {"value": "5"},
    {"value": True},
    {"value": None},
    {"code": "kg", "system": "http://unitsofmeasure.org"},
    {},
]
_QUANTITY_EXPRESSIONS = [
    "value.empty() or (value > 0 and value < 300)",
    "value.empty() or (value >= -6 and value <= 6)",
    "value.empty() or value >= 20",
    "(value + 0.2) = 0.3",
    "value = 0.1",
    "value <= 0.1 and value >= 0.1",
    "value < 0.10000000000000001 or value > 299.99999",
    "value ~ 0.1",
    "value * 3 > 0.3",
    "value / 3 < 1",
    "value div 2 = 0",
    "value mod 2",
    "-value < 0",
    "value.toString().length() > 2",
    "value.toInteger() = 3",
    "value.count() = 2",
    "value.exists() and code.empty()",
    "value.exists() xor code.exists()",
    "value.exists() implies system = %ucum",
    "(code.exists() or value.empty()) and (system.empty() or system = %ucum)",
    "value.hasValue().not() or value > 0",
    "value is decimal",
    "value.is(integer)",
    "value.as(decimal) > 0",
    "value.ofType(decimal).exists()",
    "$this.value | $this.code",
    "code.startsWith('k') or code.endsWith('g')",
    "%resource.code.exists()",
    "%resource.children().count()",
]
_PATIENT_EXPRESSIONS = [
    "name.given.count() = 4",
    "name.given.count()",
    "name.given > 'A'",
    "name.family > 'A'",
    "name.family.first() < 'P'",
    "id.not()",
    "where(deceased).exists()",
    "name.where(given).count()",
    "(name | name).given.count()",
    "(name | name).count()",
    "name.given.distinct()",
    "''.startsWith('') or ''.endsWith('')",
    "('a' | 'extension') < 'b'",
    "1 is Integer and 'a' is String and true is Boolean and 1.5 is Decimal",
    "'a'.is(System.String) and (1 | 2).count() = 2",
    "(1 | 2) is Integer",
    "name.where(given.exists()).family.startsWith(name.family.first())",
    "$this.name.exists()",
    "%resource.Patient.id",
    "name.iif(true, given, family).first().startsWith(id)",
    "(id | name.where(given.exists()).family).first().startsWith(id)",
    "(1 + name.where(given.exists()).count()).toString().startsWith(id)",
    "name.given.trace('g').count() = name.given.count()",
    "name.given = 'Ann'",
    "name.given != 'Ann'",
    "name.given.first() = 'Ann'",
    "name.given = name.given",
    "name.given.last() = 'Cy'",
    "name.given.tail().count()",
    "name.given.distinct().count()",
    "name.given.isDistinct()",
    "name.given.where($this = 'Ann').count()",
    "name.given.select($this & '!')",
    "name.given.all($this.length() > 1)",
    "name.given.all(length() > 2)",
    "name.given.exists($this.startsWith('B'))",
    "(name.given | name.family).count()",
    "name.given.union(name.family)",
    "name.given.combine(name.family).count()",
    "name.given.intersect('Ann' | 'Cy')",
    "name.given.exclude('Ann')",
    "name.family.startsWith('O')",
    "name.family.contains('\\'')",
    "name.family = 'O\\'Neil'",
    "name.family.matches('^O.N')",
    "name.family.substring(1)",
    "name.family.substring(1, 2)",
    "name.family.substring(-1)",
    "name.family.substring(10)",
    "name.family.upper() + name.family.lower()",
    "name.family.length()",
    "name.given.length()",
    "name.given[1] = 'Bo'",
    "name.given[-1]",
    "name[1].given",
    "(-multipleBirth).exists()",
    "name[1].given.single()",
    "birthDate.exists() and birthDate.count() = 2",
    "birthDate > '2000'",
    "birthDate.toString().substring(0, 4).toInteger() + 1",
    "active and deceased",
    "active or deceased",
    "active xor deceased",
    "active implies deceased",
    "deceased implies active",
    "active and gender",
    "(1 - 1) or false",
    "false or name.given.count() - 4",
    "active and gender.exists()",
    "active.not() or deceased.not()",
    "gender.not()",
    "name.not()",
    "active = true and deceased != true",
    "multipleBirth > 1 and multipleBirth is integer",
    "multipleBirth.ofType(integer) = 2",
    "multipleBirth as integer",
    "deceased is boolean",
    "deceased is Boolean",
    "deceased.ofType(FHIR.boolean)",
    "extension('http://x').value = 'first'",
    "extension('http://y').value < 0",
    "extension('http://z').exists().not()",
    "extension.where(url = 'http://x').count() = 2",
    "extension.value.ofType(string).count()",
    "iif(active, 'yes', 'no')",
    "iif(gender.exists(), 1)",
    "contained.id in ('o1' | 'o2')",
    "contained.where(id = 'o1').name",
    "%resource.id = id",
    "%rootResource.contained.id contains 'o1'",
    "'o1' in contained.id",
    "name.given contains 'Ann'",
    "children().count()",
    "descendants().count() > 10",
    "name.descendants().count()",
    "id.toString() = 'p1' and 5 div 2 = 2 and 7 mod 3 = 1 and 7 / 2 = 3.5",
    "'a' + 'b' = 'ab' and ('a' & {}) = 'a'",
    "{}.empty() and {}.count() = 0 and ({} = 1).empty()",
    "(1 | 2 | 1).count() = 2 and (1.0 | 1).count()",
    "name.where(given.exists()).given.where($this.startsWith('A')).exists()",
    "name.given.where($this = 'Ann').select($this + '?')",
    "Patient.name.exists()",
    "trace('x').name.exists()",
    "name.resolve().exists() or true",
]
_OBSERVATION_EXPRESSIONS = [
    "value.ofType(Quantity).value > 0",
    "value is Quantity",
    "value as Quantity",
    "value.exists() and value.value < 1",
    "component.value.count()",
    "component.where(value).count()",
    "component.value.ofType(string)",
    "component.value.ofType(Quantity).value > 100",
    "component.where(value is string).exists()",
    "component.where(value.exists()).code.text",
    "component.value is string",
    "effective > '2020'",
    "effective.toString().length() >= 8",
    "code.coding.where(system = 'http://loinc.org' and (code = '8480-6' or code = 'x')).count()",
    "code.coding.code in ('x' | 'y')",
    "code.coding.code = 'x'",
    "code.coding.intersect(%resource.code.coding).count()",
    "dataAbsentReason.empty() or value.empty()",
    "value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists())"
    ".empty()",
    "component.code.text.select($this + '!')",
    "component.distinct().value.count()",
    "(component | component).value.count()",
]

# A resourceType where a datatype is expected gives the node that path in fhirpathpy.
_ODD_CASES = [
    ("value.exists()", "Quantity", {"resourceType": "Observation", "valueString": "x"}),
    (
        "code.value.exists()",
        "Observation",
        {"code": {"resourceType": "Observation", "valueString": "y"}},
    ),
]


@pytest.mark.parametrize(
    "expression,base,node",
    [(e, "Quantity", n) for e in _QUANTITY_EXPRESSIONS for n in _QUANTITIES]
    + [(e, "Patient", p) for e in _PATIENT_EXPRESSIONS for p in (_PATIENT, _PLAIN_PATIENT)]
    + [(e, "Observation", _OBSERVATION) for e in _OBSERVATION_EXPRESSIONS]
    + [
        ("value.empty() or (value > 0 and value < 300)", "Observation.valueQuantity", q)
        for q in _QUANTITIES
    ]
    + _ODD_CASES,
)
def test_tricky_inputs_agree(expression, base, node):
    agree(expression, base, node)


def test_the_tricky_expressions_mostly_compile():
    expressions = _QUANTITY_EXPRESSIONS + _PATIENT_EXPRESSIONS + _OBSERVATION_EXPRESSIONS
    missing = [
        e
        for e in expressions
        if compile_invariant(e, "Quantity" if e in _QUANTITY_EXPRESSIONS else "Patient") is None
    ]
    assert len(missing) <= 8, missing
