"""Slicing: which slice each value belongs to, slice cardinality, closed and ordered slicing.

Discriminators value/pattern compare the value at the discriminator path with the slice's
fixed[x]/pattern[x] (or, lacking one, its required binding); type compares types; exists
tests presence; profile asks whether the value conforms to the slice's profile.  An
extension slice is told by its URL, which is the profile of the slice's type.
See https://hl7.org/fhir/R4/profiling.html#discriminator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from server.fhir.validation.checks import resolve_in_bundle
from server.fhir.validation.structure import UNBOUNDED, ElementRule, StructureTree
from server.fhir.validation.values import contains, equals, split_path, values_at

if TYPE_CHECKING:
    from server.fhir.validation.validator import Item, Run, Validator


class SliceMatcher:
    def __init__(self, validator: Validator) -> None:
        self.validator = validator

    def check(
        self, run: Run, items: list[Item], rule: ElementRule, tree: StructureTree, path: str
    ) -> None:
        """Assign ``items`` to the slices of ``rule``, then check each slice's rules."""
        slicing = rule.slicing
        counts = [0] * len(rule.slices)
        last = -1
        for item in items:
            index = self.slice_of(run, item, rule)
            if index is None:
                if _undefined_sub_extension(item, tree):
                    url = item.value.get("url")
                    message = (
                        f"Sub-extension url '{url}' is not defined by the Extension {tree.url}"
                    )
                    run.add("error", "structure", message, item.path)
                elif slicing is not None and slicing.rules == "closed":
                    message = (
                        f"This element does not match any known slice defined in the profile "
                        f"{tree.url}"
                    )
                    run.add("error", "structure", message, item.path)
                continue
            counts[index] += 1
            if slicing is not None and slicing.ordered and index < last:
                message = f"As specified by profile {tree.url}, {rule.path} slices are out of order"
                run.add("error", "structure", message, item.path)
            last = max(last, index)
            self._check_in_slice(run, item, rule.slices[index], tree)
        for slice_rule, count in zip(rule.slices, counts, strict=True):
            name = f"{rule.path}:{slice_rule.slice_name}"
            if count < slice_rule.min:
                message = (
                    f"Slice '{name}': a matching slice is required, but not found (from {tree.url})"
                    if count == 0
                    else f"{name}: minimum required = {slice_rule.min}, but only found {count}"
                )
                run.add("error", "required", message, path)
            if slice_rule.max < UNBOUNDED and count > slice_rule.max:
                message = (
                    f"{name}: max allowed = {slice_rule.max}, but found {count} (from {tree.url})"
                )
                run.add("error", "structure", message, path)

    def slice_of(self, run: Run, item: Item, rule: ElementRule) -> int | None:
        for index, slice_rule in enumerate(rule.slices):
            if self.matches(run, item, rule, slice_rule):
                return index
        return None

    def matches(self, run: Run, item: Item, rule: ElementRule, slice_rule: ElementRule) -> bool:
        if rule.choice and slice_rule.types and not rule.slicing:
            return slice_rule.type_named(item.type_code) is not None
        discriminators = rule.slicing.discriminators if rule.slicing else ()
        if not discriminators:
            return self._conforms(run, item, slice_rule)
        return all(
            self._discriminates(run, item, slice_rule, kind, path) for kind, path in discriminators
        )

    def _discriminates(
        self, run: Run, item: Item, slice_rule: ElementRule, kind: str, path: str
    ) -> bool:
        if kind == "type" and path.endswith("resolve()"):
            return self._resolved_type_matches(run, item, slice_rule)
        if kind == "type":
            return self._type_matches(item, slice_rule, path)
        if kind == "profile":
            return self._profile_matches(run, item, slice_rule, path)
        if kind == "exists":
            target = self._rule_at(slice_rule, path)
            present = bool(values_at(item.value, path))
            if target is None:
                return present
            return present if target.min > 0 else (not present if target.max == 0 else True)
        # value / pattern
        if path == "url" and _extension_url(slice_rule):
            return isinstance(item.value, dict) and item.value.get("url") == _extension_url(
                slice_rule
            )
        expected = self._expected_at(slice_rule, [s for s in split_path(path) if s != "$this"])
        actual = values_at(item.value, path)
        if expected is None:
            target = self._rule_at(slice_rule, path)
            if target is not None and target.binding and target.binding[0] == "required":
                return self._bound_match(target.binding[1], actual)
            return True  # the slice fixes nothing here: any value will do
        exact, value = expected
        test = equals if exact else contains
        return any(test(v, value) for v in actual)

    def _expected_at(self, rule: ElementRule, steps: list[str]) -> tuple[bool, Any] | None:
        """(exact?, value) that ``rule`` demands at ``steps``, from the nearest fixed/pattern,
        looking into the slices of sliced children (``code.coding:SBPCode``), required first."""
        demand = rule.fixed or rule.pattern
        if demand is not None:
            values = values_at(demand[1], ".".join(steps)) if steps else [demand[1]]
            if values:
                return (rule.fixed is not None, values[0])
        if not steps:
            return None
        child = self._child(rule, steps[0])
        if child is None:
            return None
        for candidate in (child, *sorted(child.slices, key=lambda s: -s.min)):
            found = self._expected_at(candidate, steps[1:])
            if found is not None:
                return found
        return None

    def _bound_match(self, value_set: str, actual: list[Any]) -> bool:
        terminology = self.validator.terminology
        for value in actual:
            for system, code in _codings(value):
                if terminology.check_code(value_set, system, code).status == "valid":
                    return True
        return False

    def _type_matches(self, item: Item, slice_rule: ElementRule, path: str) -> bool:
        if path in ("$this", ""):
            type_code = item.type_code
            if isinstance(item.value, dict) and item.type_code in ("Resource", "DomainResource"):
                type_code = str(item.value.get("resourceType"))
            return any(
                t.code == type_code or self._profile_type(t.profiles) == type_code
                for t in slice_rule.types
            )
        target = self._rule_at(slice_rule, path)
        values = values_at(item.value, path)
        if target is None or not values:
            return False
        value = values[0]
        found = value.get("resourceType") if isinstance(value, dict) else None
        return any(t.code == found for t in target.types) if found else True

    def _resolved_type_matches(self, run: Run, item: Item, slice_rule: ElementRule) -> bool:
        """``$this.resolve()``: the type of the resource a Reference points to (contained, or
        in the same Bundle) is one the slice's targetProfiles name."""
        value = item.value if isinstance(item.value, dict) else {}
        target = value.get("reference")
        found: dict[str, Any] | None = None
        if isinstance(target, str) and target.startswith("#"):
            for owner in (run.resource, run.root):
                for contained in owner.get("contained") or ():
                    if isinstance(contained, dict) and contained.get("id") == target[1:]:
                        found = contained
        else:
            found = resolve_in_bundle(run, value)
        if found is None:
            return False
        wanted = {self._profile_type((url,)) for t in slice_rule.types for url in t.target_profiles}
        return found.get("resourceType") in wanted

    def _profile_type(self, profiles: tuple[str, ...]) -> str | None:
        for url in profiles:
            tree = self.validator.tree(url)
            if tree is not None:
                return tree.type
        return None

    def _profile_matches(self, run: Run, item: Item, slice_rule: ElementRule, path: str) -> bool:
        """The value at ``path`` (``resource`` of a Bundle entry...) meets a profile the slice
        gives that element."""
        if path in ("$this", ""):
            return self._conforms(run, item, slice_rule)
        target = self._rule_at(slice_rule, path)
        profiles = [url for t in (target.types if target else ()) for url in t.profiles]
        if not profiles:
            return False
        from server.fhir.validation.validator import Run as TrialRun

        for value in values_at(item.value, path):
            for url in profiles:
                trial = TrialRun(resources=list(run.resources))
                if isinstance(value, dict) and value.get("resourceType"):
                    self.validator.check_profile(trial, value, url, item.path, explicit=True)
                else:
                    profile = self.validator.tree(url)
                    if profile is None:
                        continue
                    self.validator.walk_object(
                        trial, value, profile.root, profile, item.path, full=False
                    )
                if not any(i.severity in ("error", "fatal") for i in trial.issues):
                    return True
        return False

    def _conforms(self, run: Run, item: Item, slice_rule: ElementRule) -> bool:
        """Whether ``item`` meets ``slice_rule`` (and its type profiles) without errors."""
        from server.fhir.validation.validator import Run as TrialRun

        trial = TrialRun(resources=list(run.resources))
        tree = self.validator.tree(slice_rule.types[0].code) if slice_rule.types else None
        owner = tree or self.validator.tree("Element")
        if owner is None:
            return False
        self.validator.check_item(trial, item, slice_rule, owner, False)
        for type_rule in slice_rule.types:
            for url in type_rule.profiles:
                profile = self.validator.tree(url)
                if profile is None:
                    continue
                if isinstance(item.value, dict) and item.value.get("resourceType"):
                    self.validator.check_profile(trial, item.value, url, item.path, explicit=True)
                else:
                    self.validator.walk_object(
                        trial, item.value, profile.root, profile, item.path, full=False
                    )
        return not any(issue.severity in ("error", "fatal") for issue in trial.issues)

    def _check_in_slice(
        self, run: Run, item: Item, slice_rule: ElementRule, tree: StructureTree
    ) -> None:
        url = _extension_url(slice_rule)
        if url is not None and ":" in url and item.type_code == "Extension":
            self.validator.extension_profile(run, item, url)
        self.validator.check_item(run, item, slice_rule, tree, False)

    def _rule_at(self, rule: ElementRule, path: str) -> ElementRule | None:
        current: ElementRule | None = rule
        for step in split_path(path):
            if step == "$this" or current is None:
                continue
            current = self._child(current, step)
        return current

    def _child(self, rule: ElementRule, step: str) -> ElementRule | None:
        if step.startswith("ofType("):
            return rule
        if step.startswith("extension('"):
            url = step[len("extension('") : -2]
            extensions = self._child(rule, "extension")
            for candidate in extensions.slices if extensions else ():
                if _extension_url(candidate) == url:
                    return candidate
            return None
        found = rule.children.get(step)
        if found is not None:
            return found
        if rule.types:  # the snapshot stops here: continue in the datatype's definition
            datatype = self.validator.tree(rule.types[0].code)
            if datatype is not None:
                return datatype.root.children.get(step)
        return None


def _undefined_sub_extension(item: Item, tree: StructureTree) -> bool:
    """A relative-URL extension inside an extension whose definition does not name it."""
    url = item.value.get("url") if isinstance(item.value, dict) else None
    return (
        tree.type == "Extension"
        and item.type_code == "Extension"
        and isinstance(url, str)
        and ":" not in url
    )


def _extension_url(rule: ElementRule) -> str | None:
    for type_rule in rule.types:
        if type_rule.code == "Extension" and type_rule.profiles:
            return type_rule.profiles[0].split("|", 1)[0]
    url = rule.children.get("url")
    if url is not None and url.fixed is not None:
        return str(url.fixed[1])
    return None


def _codings(value: Any) -> list[tuple[str | None, str]]:
    if isinstance(value, str):
        return [(None, value)]
    if not isinstance(value, dict):
        return []
    if isinstance(value.get("coding"), list):
        return [
            (c.get("system"), c["code"])
            for c in value["coding"]
            if isinstance(c, dict) and isinstance(c.get("code"), str)
        ]
    code = value.get("code")
    return [(value.get("system"), code)] if isinstance(code, str) else []
