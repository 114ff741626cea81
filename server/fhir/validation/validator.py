"""Validation of a resource against the base R4 definitions and profiles.

The walk goes over the instance and a compiled StructureDefinition side by side
(``structure.py``).  Base validation ("full" mode) checks every JSON property against the
resource's definition, descending into datatype definitions where the snapshot stops.
Profile validation then walks only what the profile's snapshot itself spells out: the
datatypes underneath were already checked by the base pass, which halves the work.
Issues carry the FHIRPath of the element (``Observation.value.ofType(Quantity)``) as the
HL7 Java validator reports them.  See https://hl7.org/fhir/R4/validation.html.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.errors import Issue
from server.fhir.validation import bundles, checks
from server.fhir.validation.conformance import CORE_PREFIX, ConformanceSet
from server.fhir.validation.invariants import Check, Invariants
from server.fhir.validation.primitives import PrimitiveChecker, is_primitive
from server.fhir.validation.slicing import SliceMatcher
from server.fhir.validation.snapshot import SnapshotError
from server.fhir.validation.structure import (
    UNBOUNDED,
    Constraint,
    ElementRule,
    StructureTree,
    TypeRule,
    compile_tree,
)
from server.fhir.validation.terminology import Terminology

logger = logging.getLogger(__name__)

MAX_ISSUES = 200
_RESOURCE_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_ABSTRACT_RESOURCE_TYPES = frozenset({"Resource", "DomainResource"})
_MISSING = object()
_CORE_ROOTS = frozenset(CORE_PREFIX + name for name in ("Resource", "DomainResource"))


@dataclass
class Item:
    """One value of an element: the JSON value, its ``_`` companion, type and FHIRPath."""

    value: Any
    companion: dict[str, Any] | None
    type_code: str
    path: str


@dataclass
class Run:
    """The state of one validation: issues found and the enclosing resources."""

    issues: list[Issue] = field(default_factory=list)
    resources: list[tuple[dict[str, Any], bool]] = field(default_factory=list)  # (res, contained)
    checked_profiles: set[tuple[int, str]] = field(default_factory=set)
    seen: set[tuple[str, str, str]] = field(default_factory=set)

    def add(self, severity: str, code: str, message: str, path: str) -> None:
        key = (severity, message, path)
        if key in self.seen or len(self.issues) >= MAX_ISSUES:
            return
        self.seen.add(key)
        self.issues.append(Issue(severity, code, message, (path,) if path else ()))

    @property
    def resource(self) -> dict[str, Any]:
        return self.resources[-1][0] if self.resources else {}

    @property
    def root(self) -> dict[str, Any]:
        for resource, contained in reversed(self.resources):
            if not contained:
                found: dict[str, Any] = resource
                return found
        return self.resource


class Validator:
    """Validates resources; holds compiled definitions, so build one and reuse it."""

    def __init__(self, conformance: ConformanceSet, terminology: Terminology | None = None):
        self.conformance = conformance
        self.terminology = terminology or Terminology(conformance)
        self.invariants = Invariants()
        self.primitives = PrimitiveChecker(self._regex_of)
        self.slices = SliceMatcher(self)
        self._trees: dict[str, StructureTree | None] = {}
        self._lock = threading.Lock()
        self._core_types: set[str] = set()
        # (id of a rule, base path, pass) -> its compiled invariants; rules live as long as
        # the trees that hold them, which this validator keeps.
        self._rule_checks: dict[tuple[int, str, bool], list[tuple[Constraint, Check]]] = {}

    # -- entry points ---------------------------------------------------------------------

    def validate(self, resource: Any, profiles: Sequence[str] = ()) -> list[Issue]:
        """Every issue of ``resource`` against the base definition of its type, the profiles
        it claims in ``meta.profile`` and ``profiles``; errors first, then warnings."""
        run = Run()
        if not isinstance(resource, dict):
            run.add("error", "structure", "A resource must be a JSON object", "")
            return run.issues
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str):
            run.add("error", "structure", "The resource has no resourceType", "")
            return run.issues
        self.validate_resource(run, resource, resource_type, required=tuple(profiles))
        order = {"fatal": 0, "error": 1, "warning": 2, "information": 3}
        return sorted(run.issues, key=lambda issue: order.get(issue.severity, 4))

    def tree(self, url_or_type: str) -> StructureTree | None:
        """The compiled StructureDefinition for a URL or type name; None when unknown."""
        key = url_or_type.split("|", 1)[0]
        found = self._trees.get(key, _MISSING)  # a dict read is atomic: no lock when cached
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        definition = self.conformance.structure(key)
        try:
            elements = self.conformance.snapshot(key) if definition else None
        except SnapshotError as exc:
            logger.warning("No snapshot for %s: %s", key, exc)
            elements = None
        compiled = compile_tree(definition, elements) if definition and elements else None
        if compiled and definition and definition.get("derivation") == "constraint":
            base = self.tree(str(definition.get("type")))
            if base is not None:
                self._mark_inert(compiled.root, base)
        with self._lock:
            self._trees[key] = compiled
            if compiled and definition and definition.get("derivation") != "constraint":
                self._core_types.add(compiled.url)
        return compiled

    def _mark_inert(self, rule: ElementRule, base: StructureTree) -> bool:
        """Mark the rules of a profile that repeat the base definition (bottom-up)."""
        children = [self._mark_inert(child, base) for child in rule.children.values()]
        for slice_rule in rule.slices:
            self._mark_inert(slice_rule, base)
        same = self._base_rule(rule.path, base)
        rule.inert = (
            all(children)
            and not rule.slices
            and rule.slicing is None
            and rule.slice_name is None
            and same is not None
            and _same_rules(rule, same)
            and all(self._is_core_source(c.source) for c in rule.constraints)
        )
        return rule.inert

    def _base_rule(self, path: str, base: StructureTree) -> ElementRule | None:
        """The base definition's rule for ``path``, through datatype definitions where the
        resource's snapshot stops (``Observation.code.coding`` -> ``CodeableConcept.coding``)."""
        found = base.by_id.get(path)
        if found is not None:
            return found
        head, _, last = path.rpartition(".")
        parent = self._base_rule(head, base) if head else None
        if parent is None:
            return None
        name = last.removesuffix("[x]")
        if name in parent.children:
            return parent.children[name]
        if len(parent.types) != 1:
            return None
        datatype = self.tree(parent.types[0].code)
        if datatype is None or datatype is base:
            return None
        return datatype.by_id.get(f"{datatype.type}.{last}")

    # -- resources --------------------------------------------------------------------------

    def validate_resource(
        self,
        run: Run,
        resource: dict[str, Any],
        path: str,
        *,
        required: tuple[str, ...] = (),
        contained: bool = False,
    ) -> None:
        """Base validation of ``resource`` at ``path``, then each profile it must meet."""
        resource_type = resource.get("resourceType")
        tree = self.tree(resource_type) if isinstance(resource_type, str) else None
        if tree is None or tree.kind != "resource" or resource_type in _ABSTRACT_RESOURCE_TYPES:
            run.add("error", "structure", f"Unknown resource type {resource_type!r}", path)
            return
        run.resources.append((resource, contained))
        try:
            self.walk_object(run, resource, tree.root, tree, path, full=True, is_resource=True)
            self._check_id(run, resource, path)
            if resource_type == "Bundle":
                bundles.check_bundle(run, resource, path)
            elif resource_type == "Parameters":
                bundles.check_parameters(run, resource, path)
            for url, explicit in self._profiles_of(resource, required):
                self.check_profile(run, resource, url, path, explicit=explicit)
        finally:
            run.resources.pop()

    def check_profile(
        self, run: Run, resource: dict[str, Any], url: str, path: str, *, explicit: bool
    ) -> None:
        key = (id(resource), url.split("|", 1)[0])
        if key in run.checked_profiles:
            return
        run.checked_profiles.add(key)
        profile = self.tree(url)
        if profile is None:
            severity = "error" if explicit else "warning"
            run.add(severity, "not-found", f"Profile {url} is not known to this server", path)
            return
        if profile.type != resource.get("resourceType"):
            run.add(
                "error",
                "structure",
                f"Profile {url} is for {profile.type}, not {resource.get('resourceType')}",
                path,
            )
            return
        self.walk_object(run, resource, profile.root, profile, path, full=False, is_resource=True)

    def _profiles_of(
        self, resource: dict[str, Any], required: tuple[str, ...]
    ) -> Iterable[tuple[str, bool]]:
        for url in required:
            yield url, True
        for url in self.conformance.global_profiles(str(resource.get("resourceType"))):
            yield url, True
        meta = resource.get("meta")
        for url in (meta.get("profile") if isinstance(meta, dict) else None) or ():
            if isinstance(url, str) and url not in required:
                yield url, False

    def _check_id(self, run: Run, resource: dict[str, Any], path: str) -> None:
        value = resource.get("id")
        if not isinstance(value, str):
            return
        if len(value) > 64:
            message = f"Invalid Resource id: Too long ({len(value)} chars)"
            run.add("error", "value", message, f"{path}.id")
        elif not _RESOURCE_ID.fullmatch(value):
            message = f"Invalid Resource id: Invalid Characters ({value!r})"
            run.add("error", "value", message, f"{path}.id")

    # -- objects and elements ---------------------------------------------------------------

    def walk_object(
        self,
        run: Run,
        node: Any,
        rule: ElementRule,
        tree: StructureTree,
        path: str,
        *,
        full: bool,
        type_code: str | None = None,
        is_resource: bool = False,
    ) -> None:
        """Check the properties of JSON object ``node`` against the children of ``rule``."""
        if not isinstance(node, dict):
            run.add("error", "structure", "This property must be a JSON object", path)
            return
        if not node:
            run.add("error", "structure", "An object must not be empty", path)
            return
        rule, tree, datatype_root = self._expanded(rule, tree, full, type_code)
        if not rule.children:
            return
        groups: dict[str, list[tuple[str, Any, str | None]]] = {}
        for key, value in node.items():
            if is_resource and key == "resourceType":
                continue
            name = key[1:] if key.startswith("_") else key
            child, choice_type = _child_for(rule.children, name)
            if child is None:
                if full or _choice_prefix(rule.children, name):
                    self._unknown(run, rule, name, path, full)
                continue
            groups.setdefault(child.name, []).append((key, value, choice_type))
        for name, entries in groups.items():
            child = rule.children[name]
            if full or not child.inert:
                self._element(run, child, entries, tree, path, full)
        for child in rule.required_children:
            if child.name not in groups and (full or not child.inert):
                self._element(run, child, [], tree, path, full)
        if is_resource or datatype_root:  # the constraints of the type itself (dom-*, qty-3...)
            self._invariants(run, rule, node, rule.path, path, full)

    def _expanded(
        self, rule: ElementRule, tree: StructureTree, full: bool, type_code: str | None
    ) -> tuple[ElementRule, StructureTree, bool]:
        """The rule whose children describe the object: its own, a content reference's, or
        the root of its datatype's definition (then True); the last two in base mode only,
        as a profile pass only checks what the profile itself spells out."""
        if rule.children or not full:
            return rule, tree, False
        if rule.content_reference:
            target = tree.resolve_content_reference(rule.content_reference)
            if target is not None:
                return target, tree, False
        if type_code and type_code not in ("Element", "BackboneElement"):
            datatype = self.tree(type_code)
            if datatype is not None:
                return datatype.root, datatype, True
        return rule, tree, False

    def _unknown(self, run: Run, rule: ElementRule, name: str, path: str, full: bool) -> None:
        choice = _choice_prefix(rule.children, name)
        if choice is not None:
            suffix = name[len(choice.name) :]
            lowered = suffix[:1].lower() + suffix[1:]
            type_code = lowered if is_primitive(lowered) else suffix
            allowed = ", ".join(t.code for t in choice.types)
            message = f"The type of element {name} is not allowed here (allowed: {allowed})"
            run.add("error", "structure", message, f"{path}.{choice.name}.ofType({type_code})")
        elif full:
            run.add("error", "structure", f"Unrecognized property '{name}'", path)

    def _element(
        self,
        run: Run,
        rule: ElementRule,
        entries: list[tuple[str, Any, str | None]],
        tree: StructureTree,
        path: str,
        full: bool,
    ) -> None:
        items = self._items(run, rule, entries, path, full)
        count = len(items)
        source = "" if full else f" (from {tree.url})"
        if count < rule.min:
            message = f"{rule.path}: minimum required = {rule.min}, but only found {count}{source}"
            run.add("error", "required", message, path)
        if rule.max < UNBOUNDED and count > rule.max:
            message = f"{rule.path}: max allowed = {rule.max}, but found {count}{source}"
            run.add("error", "structure", message, path)
        for item in items:
            self.check_item(run, item, rule, tree, full)
        if rule.slices:
            self.slices.check(run, items, rule, tree, path)

    def _items(
        self,
        run: Run,
        rule: ElementRule,
        entries: list[tuple[str, Any, str | None]],
        path: str,
        full: bool,
    ) -> list[Item]:
        if len(entries) == 1 and entries[0][2] is None and not entries[0][0].startswith("_"):
            simple = self._simple_items(rule, entries[0][1], f"{path}.{rule.name}")
            if simple is not None:
                return simple
        values: dict[str | None, Any] = {}
        companions: dict[str | None, Any] = {}
        for key, value, choice_type in entries:
            (companions if key.startswith("_") else values)[choice_type] = value
            if full and value is None:
                run.add("error", "structure", f"{key} must not be null", f"{path}.{rule.name}")
        items: list[Item] = []
        for choice_type in dict.fromkeys([*values, *companions]):
            type_code = choice_type or (rule.types[0].code if rule.types else "BackboneElement")
            holds_resources = self.holds_resources(rule)
            base = f"{path}.{rule.name}"
            raw, companion = values.get(choice_type), companions.get(choice_type)
            shape_ok = self._shape(run, rule, raw, companion, base, full)
            if not shape_ok:
                continue
            raws = raw if isinstance(raw, list) else ([] if raw is None else [raw])
            extras = companion if isinstance(companion, list) else [companion]
            length = max(len(raws), len(extras) if companion is not None else 0)
            for index in range(length):
                value = raws[index] if index < len(raws) else None
                extra = extras[index] if index < len(extras) else None
                if value is None and extra is None:
                    continue
                item_path = f"{base}[{index}]" if rule.repeats else base
                if rule.choice:
                    item_path += f".ofType({type_code})"
                kind = type_code
                if holds_resources and isinstance(value, dict):
                    kind = str(value.get("resourceType", type_code))
                items.append(Item(value, extra, kind, item_path))
        return items

    def _simple_items(self, rule: ElementRule, raw: Any, base: str) -> list[Item] | None:
        """The common case, one key, no choice, no ``_`` companion, right JSON shape; None
        for anything else (the general path reports it)."""
        type_code = rule.types[0].code if rule.types else "BackboneElement"
        if self.holds_resources(rule):
            return None
        if not rule.repeats:
            if raw is None or isinstance(raw, list):
                return None
            return [Item(raw, None, type_code, base)]
        if not isinstance(raw, list) or not raw or any(value is None for value in raw):
            return None
        return [Item(value, None, type_code, f"{base}[{i}]") for i, value in enumerate(raw)]

    def _shape(
        self, run: Run, rule: ElementRule, raw: Any, companion: Any, path: str, full: bool
    ) -> bool:
        if not full:
            return True
        for value in (raw, companion):
            if value is None:
                continue
            if rule.repeats and not isinstance(value, list):
                message = f"The property {rule.name} must be a JSON Array, not an Object"
                run.add("error", "structure", message, path)
                return False
            if not rule.repeats and isinstance(value, list):
                message = f"The property {rule.name} must be an Object, not an Array"
                run.add("error", "structure", message, path)
                return False
            if isinstance(value, list) and not value:
                message = (
                    "Array cannot be empty - the property should not be present if it has no values"
                )
                run.add("error", "structure", message, path)
                return False
        return True

    # -- one value --------------------------------------------------------------------------

    def check_item(
        self, run: Run, item: Item, rule: ElementRule, tree: StructureTree, full: bool
    ) -> None:
        """Check one value against ``rule``: type, fixed/pattern, content, binding, invariants."""
        holds_resources = self.holds_resources(rule)
        type_rule = rule.type_named(item.type_code)
        if type_rule is None and holds_resources:
            type_rule = rule.type_named("Resource") or rule.type_named("DomainResource")
        if rule.types and type_rule is None:
            allowed = ", ".join(t.code for t in rule.types)
            message = f"Type {item.type_code} is not allowed here (allowed: {allowed})"
            run.add("error", "structure", message, item.path)
            return
        if rule.fixed is not None or rule.pattern is not None:
            checks.fixed_and_pattern(run, item, rule)
        if is_primitive(item.type_code):
            self._primitive(run, item, rule, full)
        elif holds_resources:
            self._inline_resource(run, item, rule, type_rule, full)
        elif item.value is not None:
            if item.type_code == "Extension":
                self._extension(run, item, rule, type_rule, full)
            elif item.type_code == "Reference":
                checks.reference(run, self, item, type_rule)
            self.walk_object(
                run, item.value, rule, tree, item.path, full=full, type_code=item.type_code
            )
            if type_rule and type_rule.profiles and item.type_code != "Extension":
                self._datatype_profiles(run, item, type_rule.profiles)
        if rule.binding is not None or rule.additional_bindings:
            checks.binding(run, self.terminology, item, rule)
        if full and item.type_code == "Coding":
            checks.coding_systems(run, self.terminology, item, full)
        elif full and item.type_code == "Attachment":
            checks.attachment(run, item)
        if rule.min_value is not None or rule.max_value is not None:
            checks.ranges(run, item, rule)
        if rule.constraints and item.value is not None:
            base_path = item.type_code if rule.choice or not rule.path else rule.path
            self._invariants(run, rule, item.value, base_path, item.path, full)

    def _primitive(self, run: Run, item: Item, rule: ElementRule, full: bool) -> None:
        if full and item.value is not None:
            problem = self.primitives.problem(item.type_code, item.value)
            if problem:
                run.add("error", "value", problem, item.path)
        if full and item.companion is not None:
            element = self.tree("Element")
            if element is not None:
                self.walk_object(run, item.companion, element.root, element, item.path, full=True)
        if rule.max_length and isinstance(item.value, str) and len(item.value) > rule.max_length:
            message = f"The value is longer than the maximum length of {rule.max_length}"
            run.add("error", "value", message, item.path)

    def _inline_resource(
        self, run: Run, item: Item, rule: ElementRule, type_rule: TypeRule | None, full: bool
    ) -> None:
        """A contained resource, a Bundle entry, a Parameters resource: validated as a resource
        in the base pass; in a profile pass it must meet one of the profiles its type lists."""
        if not isinstance(item.value, dict):
            run.add("error", "structure", "A resource must be a JSON object", item.path)
            return
        if full:
            contained = rule.path.endswith(".contained")
            self.validate_resource(run, item.value, item.path, contained=contained)
        profiles = [p for p in (type_rule.profiles if type_rule else ()) if p not in _CORE_ROOTS]
        if profiles:
            self.conform_to_any(run, item.value, profiles, item.path)

    def conforms_to_any(self, run: Run, resource: dict[str, Any], profiles: list[str]) -> bool:
        """Whether ``resource`` meets one of ``profiles``, judged on the side (no issues kept).

        Profiles already under way in ``run`` count as met, which ends reference cycles."""
        for url in profiles:
            trial = Run(resources=[*run.resources, (resource, False)])
            trial.checked_profiles = set(run.checked_profiles)
            self.check_profile(trial, resource, url, "", explicit=True)
            if not any(i.severity in ("error", "fatal") for i in trial.issues):
                return True
        return False

    def conform_to_any(
        self, run: Run, resource: dict[str, Any], profiles: list[str], path: str
    ) -> None:
        """``resource`` must meet at least one of ``profiles`` (a type's profile list)."""
        if len(profiles) > 1:
            for url in profiles:
                trial = Run(resources=list(run.resources))
                self.check_profile(trial, resource, url, path, explicit=True)
                if not any(i.severity in ("error", "fatal") for i in trial.issues):
                    return
        run.resources.append((resource, False))
        try:
            self.check_profile(run, resource, profiles[0], path, explicit=True)
        finally:
            run.resources.pop()

    def _extension(
        self, run: Run, item: Item, rule: ElementRule, type_rule: TypeRule | None, full: bool
    ) -> None:
        if not full or not isinstance(item.value, dict):
            return
        url = item.value.get("url")
        if not isinstance(url, str) or "://" not in url and not url.startswith("urn:"):
            return  # a relative url names a sub-extension: its slice checks it
        if self.conformance.structure(url.split("|", 1)[0]) is None:
            # Example domains and HL7's own extension pack (not part of the R4 package) warn.
            lenient = _example_domain(url) or url.startswith(CORE_PREFIX)
            severity = "warning" if lenient else "error"
            message = f"The extension {url} could not be found so is not allowed here"
            run.add(severity, "structure", message, item.path)
            return
        self.extension_profile(run, item, url)

    def extension_profile(self, run: Run, item: Item, url: str) -> None:
        """Validate an extension value against its definition, once per value and URL."""
        self._value_profile(run, item, url, extension=True)

    def _datatype_profiles(self, run: Run, item: Item, urls: tuple[str, ...]) -> None:
        """A datatype value must meet one of the profiles its type lists (SimpleQuantity...)."""
        urls = tuple(u for u in urls if not u.startswith(CORE_PREFIX))
        if len(urls) > 1:
            for url in urls:
                trial = Run(resources=list(run.resources))
                self._value_profile(trial, item, url)
                if not any(i.severity in ("error", "fatal") for i in trial.issues):
                    return
        if urls:
            self._value_profile(run, item, urls[0])

    def _value_profile(self, run: Run, item: Item, url: str, *, extension: bool = False) -> None:
        """Walk a value against a profile of its type (an extension against its definition, in
        full), once per value and URL."""
        key = (id(item.value), url.split("|", 1)[0])
        if key in run.checked_profiles:
            return
        run.checked_profiles.add(key)
        profile = self.tree(url)
        if profile is None:
            if not extension:  # an unknown extension was reported where it was found
                message = f"Profile {url} is not known to this server"
                run.add("warning", "not-found", message, item.path)
            return
        type_code = "Extension" if extension else None
        walk = self.walk_object
        walk(run, item.value, profile.root, profile, item.path, full=extension, type_code=type_code)

    def _invariants(
        self, run: Run, rule: ElementRule, node: Any, base_path: str, path: str, full: bool
    ) -> None:
        for constraint, check in self._checks_of(rule, base_path, full):
            if not check(node, run.resource, run.root):
                severity = "error" if constraint.severity == "error" else "warning"
                message = f"Constraint failed: {constraint.key}: '{constraint.human}'"
                run.add(severity, "invariant", message, path)

    def _checks_of(
        self, rule: ElementRule, base_path: str, full: bool
    ) -> list[tuple[Constraint, Check]]:
        """The invariants of ``rule`` that can fail, compiled, once per rule, path and pass; a
        profile pass leaves out those of the core definitions (the base pass has run them)."""
        key = (id(rule), base_path, full)
        found = self._rule_checks.get(key)
        if found is None:
            found = []
            for constraint in rule.constraints:
                if not full and self._is_core_source(constraint.source):
                    continue
                check = self.invariants.check(constraint.expression, base_path)
                if check is not None:
                    found.append((constraint, check))
            self._rule_checks[key] = found
        return found

    def _is_core_source(self, source: str) -> bool:
        if not source.startswith(CORE_PREFIX):
            return False
        tree = self.tree(source)
        return tree is not None and tree.url in self._core_types

    def holds_resources(self, rule: ElementRule) -> bool:
        """Whether the element's values are resources (contained, entry.resource...)."""
        if rule.holds_resources is None:
            rule.holds_resources = any(self._is_resource_type(t.code) for t in rule.types)
        return rule.holds_resources

    def _is_resource_type(self, code: str) -> bool:
        if code in _ABSTRACT_RESOURCE_TYPES:
            return True
        if not code[:1].isupper() or code in ("Extension", "Reference", "Element"):
            return False
        tree = self.tree(code)
        return tree is not None and tree.kind == "resource"

    def _regex_of(self, type_code: str) -> str | None:
        tree = self.tree(type_code)
        value = tree.root.children.get("value") if tree else None
        return value.regex if value else None


def _same_rules(rule: ElementRule, base: ElementRule) -> bool:
    """Whether a profile's rule demands exactly what the base rule does."""
    return (
        rule.min == base.min
        and rule.max == base.max
        and rule.types == base.types
        and rule.fixed == base.fixed
        and rule.pattern == base.pattern
        and rule.binding == base.binding
        and rule.additional_bindings == base.additional_bindings
        and rule.min_value == base.min_value
        and rule.max_value == base.max_value
        and rule.max_length == base.max_length
    )


def _child_for(
    children: dict[str, ElementRule], name: str
) -> tuple[ElementRule | None, str | None]:
    child = children.get(name)
    if child is not None and not child.choice:
        return child, None
    for candidate in children.values():
        if candidate.choice and name.startswith(candidate.name):
            suffix = name[len(candidate.name) :]
            for type_rule in candidate.types:
                if _type_suffix(type_rule.code) == suffix:
                    return candidate, type_rule.code
    return None, None


def _choice_prefix(children: dict[str, ElementRule], name: str) -> ElementRule | None:
    for candidate in children.values():
        if (
            candidate.choice
            and name.startswith(candidate.name)
            and name[len(candidate.name) : len(candidate.name) + 1].isupper()
        ):
            return candidate
    return None


def _type_suffix(code: str) -> str:
    return code[:1].upper() + code[1:]


def _example_domain(url: str) -> bool:
    return any(domain in url for domain in ("example.org", "example.com", "acme.com"))
