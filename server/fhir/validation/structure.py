"""StructureDefinition snapshots compiled into trees of element rules.

The validator walks an instance and a tree side by side, so each snapshot is turned
once into ``ElementRule`` nodes: children by JSON name, slices under their sliced
element, and the properties checked per value (types, fixed/pattern, binding,
invariants, ranges).  Element ids follow https://hl7.org/fhir/R4/elementdefinition.html#id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

UNBOUNDED = 1 << 30
REGEX_EXTENSION = "http://hl7.org/fhir/StructureDefinition/regex"
FHIR_TYPE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
ADDITIONAL_BINDING_EXTENSIONS = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition.binding.additional",
    "http://hl7.org/fhir/tools/StructureDefinition/additional-binding",
)
_SYSTEM_TYPES = {
    "http://hl7.org/fhirpath/System.String": "string",
    "http://hl7.org/fhirpath/System.Boolean": "boolean",
    "http://hl7.org/fhirpath/System.Integer": "integer",
    "http://hl7.org/fhirpath/System.Decimal": "decimal",
    "http://hl7.org/fhirpath/System.Date": "date",
    "http://hl7.org/fhirpath/System.DateTime": "dateTime",
    "http://hl7.org/fhirpath/System.Time": "time",
}


@dataclass(frozen=True)
class TypeRule:
    code: str
    profiles: tuple[str, ...] = ()
    target_profiles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Constraint:
    key: str
    severity: str
    human: str
    expression: str
    source: str


@dataclass(frozen=True)
class Slicing:
    discriminators: tuple[tuple[str, str], ...]  # (type, path)
    rules: str
    ordered: bool


@dataclass
class ElementRule:
    """One snapshot element, with its children and slices attached."""

    id: str
    path: str
    name: str  # the JSON name, without [x]
    min: int
    max: int
    base_max: int
    types: tuple[TypeRule, ...]
    definition: dict[str, Any]
    choice: bool = False
    slice_name: str | None = None
    children: dict[str, ElementRule] = field(default_factory=dict)
    slicing: Slicing | None = None
    slices: list[ElementRule] = field(default_factory=list)
    fixed: tuple[str, Any] | None = None  # (type suffix, value)
    pattern: tuple[str, Any] | None = None
    binding: tuple[str, str] | None = None  # (strength, value set URL)
    additional_bindings: tuple[tuple[str, str], ...] = ()  # (purpose, value set URL)
    constraints: tuple[Constraint, ...] = ()
    content_reference: str | None = None
    min_value: tuple[str, Any] | None = None
    max_value: tuple[str, Any] | None = None
    max_length: int | None = None
    regex: str | None = None
    holds_resources: bool | None = None  # set by the validator on first use
    # In a profile, True when this element and all under it say nothing the base does not:
    # the profile pass then skips it (the base pass has checked exactly that).
    inert: bool = False

    @property
    def repeats(self) -> bool:
        return self.base_max > 1

    @cached_property
    def required_children(self) -> tuple[ElementRule, ...]:
        """Children that must be checked even when absent (min > 0, or a required slice)."""
        return tuple(
            child
            for child in self.children.values()
            if child.min > 0 or any(s.min > 0 for s in child.slices)
        )

    def type_named(self, code: str) -> TypeRule | None:
        for rule in self.types:
            if rule.code == code:
                return rule
        return None


@dataclass
class StructureTree:
    """A compiled StructureDefinition: its root rule and every rule by element id."""

    url: str
    name: str
    type: str
    kind: str
    root: ElementRule
    by_id: dict[str, ElementRule]

    def resolve_content_reference(self, reference: str) -> ElementRule | None:
        """The rule a ``contentReference`` (``#Observation.referenceRange``) points to."""
        return self.by_id.get(reference.lstrip("#").split("#")[-1])


def compile_tree(definition: dict[str, Any], elements: list[dict[str, Any]]) -> StructureTree:
    """Compile snapshot ``elements`` of ``definition`` into a StructureTree."""
    by_id: dict[str, ElementRule] = {}
    root: ElementRule | None = None
    for element in elements:
        rule = _rule(element)
        by_id[rule.id] = rule
        if root is None:
            root = rule
            continue
        _attach(rule, by_id)
    if root is None:
        raise ValueError(f"StructureDefinition {definition.get('url')} has no elements")
    return StructureTree(
        url=str(definition.get("url", "")),
        name=str(definition.get("name", "")),
        type=str(definition.get("type", "")),
        kind=str(definition.get("kind", "")),
        root=root,
        by_id=by_id,
    )


def _attach(rule: ElementRule, by_id: dict[str, ElementRule]) -> None:
    head, _, last = rule.id.rpartition(".")
    if rule.slice_name is not None and ":" in last:
        sliced_id = f"{head}.{last.rsplit(':', 1)[0]}" if head else last.rsplit(":", 1)[0]
        if "/" in last.rsplit(":", 1)[1]:  # a re-slice: name:slice/reslice
            sliced_id = rule.id.rsplit("/", 1)[0]
        sliced = by_id.get(sliced_id)
        if sliced is not None:
            sliced.slices.append(rule)
            return
    parent = by_id.get(head)
    if parent is not None:
        parent.children.setdefault(rule.name, rule)


def _rule(element: dict[str, Any]) -> ElementRule:
    path = str(element["path"])
    element_id = str(element.get("id") or path)
    last = path.rsplit(".", 1)[-1]
    choice = last.endswith("[x]")
    base = element.get("base") or {}
    types = tuple(_type_rule(t) for t in element.get("type") or ())
    constraints = tuple(
        Constraint(
            key=str(c.get("key", "")),
            severity=str(c.get("severity", "error")),
            human=str(c.get("human", "")),
            expression=str(c["expression"]),
            source=str(c.get("source", "")),
        )
        for c in element.get("constraint") or ()
        if c.get("expression")
    )
    binding = element.get("binding") or {}
    rule = ElementRule(
        id=element_id,
        path=path,
        name=last[:-3] if choice else last,
        min=int(element.get("min", 0)),
        max=_max(element.get("max", "*")),
        base_max=_max(base.get("max", element.get("max", "*"))),
        types=types,
        definition=element,
        choice=choice,
        slice_name=element.get("sliceName"),
        constraints=constraints,
        content_reference=element.get("contentReference"),
        max_length=element.get("maxLength"),
        regex=_regex(element),
    )
    if binding.get("valueSet"):
        rule.binding = (str(binding.get("strength", "example")), str(binding["valueSet"]))
    rule.additional_bindings = _additional_bindings(binding)
    slicing = element.get("slicing")
    if slicing:
        rule.slicing = Slicing(
            discriminators=tuple(
                (str(d.get("type", "value")), str(d.get("path", "$this")))
                for d in slicing.get("discriminator") or ()
            ),
            rules=str(slicing.get("rules", "open")),
            ordered=bool(slicing.get("ordered", False)),
        )
    for key, value in element.items():
        if key.startswith("fixed") and len(key) > 5:
            rule.fixed = (key[5:], value)
        elif key.startswith("pattern") and len(key) > 7:
            rule.pattern = (key[7:], value)
        elif key.startswith("minValue"):
            rule.min_value = (key[8:], value)
        elif key.startswith("maxValue"):
            rule.max_value = (key[8:], value)
    return rule


def _additional_bindings(binding: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """R5's additional bindings, carried in R4 by extension (purpose + valueSet)."""
    found = []
    for extension in binding.get("extension") or ():
        if extension.get("url") not in ADDITIONAL_BINDING_EXTENSIONS:
            continue
        parts = {e.get("url"): e for e in extension.get("extension") or ()}
        purpose = (parts.get("purpose") or {}).get("valueCode")
        value_set = (parts.get("valueSet") or {}).get("valueCanonical")
        if isinstance(purpose, str) and isinstance(value_set, str):
            found.append((purpose, value_set))
    return tuple(found)


def _type_rule(raw: dict[str, Any]) -> TypeRule:
    code = str(raw.get("code", ""))
    if code in _SYSTEM_TYPES:
        code = _SYSTEM_TYPES[code]
        for extension in raw.get("extension") or ():
            if extension.get("url") == FHIR_TYPE_EXTENSION and extension.get("valueUrl"):
                code = str(extension["valueUrl"])
    return TypeRule(
        code=code,
        profiles=tuple(raw.get("profile") or ()),
        target_profiles=tuple(raw.get("targetProfile") or ()),
    )


def _regex(element: dict[str, Any]) -> str | None:
    for raw in element.get("type") or ():
        for extension in raw.get("extension") or ():
            if extension.get("url") == REGEX_EXTENSION:
                return str(extension.get("valueString"))
    return None


def _max(raw: Any) -> int:
    return UNBOUNDED if raw in ("*", None) else int(raw)
