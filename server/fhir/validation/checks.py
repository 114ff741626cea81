"""Per-value checks of the validator: fixed/pattern, bindings, code systems, ranges, references.

Bindings: required -> error, extensible -> warning when no coding is in the value set,
preferred and example are not checked (https://hl7.org/fhir/R4/terminologies.html#strength).
A code we cannot judge (LOINC, SNOMED CT, a value set we do not hold) is never an error.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from server.fhir.fhirpath import reference_type
from server.fhir.validation import ucum
from server.fhir.validation.conformance import CORE_PREFIX
from server.fhir.validation.primitives import base64_length
from server.fhir.validation.structure import ElementRule, TypeRule
from server.fhir.validation.values import as_decimal, contains, equals

if TYPE_CHECKING:
    from server.fhir.validation.terminology import Terminology
    from server.fhir.validation.validator import Item, Run, Validator

_RELATIVE = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})$")
_CODED = ("code", "Coding", "CodeableConcept", "Quantity", "string", "uri")


def fixed_and_pattern(run: Run, item: Item, rule: ElementRule) -> None:
    if rule.fixed is not None and item.value is not None:
        if not equals(item.value, rule.fixed[1]):
            message = f"Value is {_show(item.value)} but must be exactly {_show(rule.fixed[1])}"
            run.add("error", "value", message, item.path)
    if rule.pattern is not None and item.value is not None:
        if not contains(item.value, rule.pattern[1]):
            message = (
                f"Value {_show(item.value)} does not match the pattern {_show(rule.pattern[1])}"
            )
            run.add("error", "value", message, item.path)


def binding(run: Run, terminology: Terminology, item: Item, rule: ElementRule) -> None:
    if item.type_code not in _CODED or item.value is None:
        return
    if rule.binding is not None:
        _bound(run, terminology, item, *rule.binding, additional=False)
    for purpose, value_set in rule.additional_bindings:
        _bound(run, terminology, item, purpose, value_set, additional=True)


def _bound(
    run: Run,
    terminology: Terminology,
    item: Item,
    strength: str,
    value_set: str,
    *,
    additional: bool,
) -> None:
    if strength not in ("required", "extensible"):
        return
    codes = _codes(item.type_code, item.value)
    if not codes:
        if strength == "required" and item.type_code == "CodeableConcept" and not additional:
            message = f"No code provided, and a code is required from the value set {value_set}"
            run.add("error", "code-invalid", message, item.path)
        return
    results = [terminology.check_code(value_set, system, code) for system, code in codes]
    if any(r.status == "valid" for r in results) or all(r.status == "unknown" for r in results):
        return
    shown = ", ".join(f"{system}#{code}" if system else code for system, code in codes)
    severity = "error" if strength == "required" else "warning"
    kind = "is required" if strength == "required" else "should come"
    where = " specified in an additional binding" if additional else ""
    message = (
        f"The code provided ({shown}) is not in the value set {value_set}{where}, "
        f"and a code {kind} from this value set"
    )
    run.add(severity, "code-invalid", message, item.path)


def _codes(type_code: str, value: Any) -> list[tuple[str | None, str]]:
    if type_code in ("code", "string", "uri"):
        return [(None, value)] if isinstance(value, str) else []
    if type_code == "Coding" or type_code == "Quantity":
        return _coded(value)
    if type_code == "CodeableConcept" and isinstance(value, dict):
        codings = value.get("coding")
        return [pair for c in codings for pair in _coded(c)] if isinstance(codings, list) else []
    return []


def _coded(coding: Any) -> list[tuple[str | None, str]]:
    """(system, code) of a Coding, unless either has the wrong JSON type (reported elsewhere)."""
    if not isinstance(coding, dict):
        return []
    system, code = coding.get("system"), coding.get("code")
    return [(system, code)] if isinstance(code, str) and isinstance(system, str | None) else []


def coding_systems(run: Run, terminology: Terminology, item: Item, full: bool) -> None:
    """Codings everywhere: an absolute system, and a code its held CodeSystem defines."""
    if not full or item.type_code != "Coding" or not isinstance(item.value, dict):
        return
    system, code = item.value.get("system"), item.value.get("code")
    if not isinstance(system, str):
        return
    if ":" not in system:
        message = "Coding.system must be an absolute reference, not a local reference"
        run.add("error", "code-invalid", message, f"{item.path}.system")
        return
    if isinstance(code, str):
        result = terminology.check_coding_in_system(system, code)
        if result.status == "invalid":
            message = result.message or f"Unknown code '{code}' in the CodeSystem '{system}'"
            run.add("error", "code-invalid", message, f"{item.path}.code")


def ranges(run: Run, item: Item, rule: ElementRule) -> None:
    """minValue/maxValue; quantities are compared in one unit when a prefix separates them."""
    for bound, is_min in ((rule.min_value, True), (rule.max_value, False)):
        if bound is None or item.value is None:
            continue
        kind, limit = bound
        if kind in ("Date", "DateTime", "Instant", "Time"):
            if not isinstance(item.value, str) or not isinstance(limit, str):
                continue
            shown, wrong = item.value, item.value < limit if is_min else item.value > limit
        else:
            pair = _comparable(kind, item.value, limit)
            if pair is None:
                continue
            shown, (number, bound_number) = _show_quantity(item.value), pair
            wrong = number < bound_number if is_min else number > bound_number
        if wrong:
            relation = (
                "less than the specified minimum"
                if is_min
                else "greater than the specified maximum"
            )
            expected = _show_quantity(limit)
            message = f"The value in the instance ({shown}) is {relation} value ({expected})"
            run.add("error", "value", message, item.path)


def _comparable(kind: str, value: Any, limit: Any) -> tuple[Decimal, Decimal] | None:
    if kind != "Quantity":
        number, bound = as_decimal(value), as_decimal(limit)
        return (number, bound) if number is not None and bound is not None else None
    if not isinstance(value, dict) or not isinstance(limit, dict):
        return None
    number, bound = as_decimal(value.get("value")), as_decimal(limit.get("value"))
    if number is None or bound is None:
        return None
    return ucum.comparable(number, str(value.get("code")), bound, str(limit.get("code")))


def _show_quantity(value: Any) -> str:
    if isinstance(value, dict):
        return f"{value.get('value')} {value.get('code', value.get('unit', ''))}".strip()
    return str(value)


def attachment(run: Run, item: Item) -> None:
    """An Attachment's stated ``size`` is the length of its ``data``."""
    value = item.value
    if item.type_code != "Attachment" or not isinstance(value, dict):
        return
    data, size = value.get("data"), value.get("size")
    if not isinstance(data, str) or not isinstance(size, int):
        return
    actual = base64_length(data)
    if actual is not None and actual != size:
        message = f"Stated Attachment Size {size} does not match actual attachment size {actual}"
        run.add("error", "value", message, item.path)


def reference(run: Run, validator: Validator, item: Item, type_rule: TypeRule | None) -> None:
    """The referenced type must be one the element allows (targetProfile); a target in the same
    Bundle must also meet one of the target profiles."""
    if type_rule is None or not type_rule.target_profiles or not isinstance(item.value, dict):
        return
    target = resolve_in_bundle(run, item.value)
    allowed: dict[str, str] = {}
    for url in type_rule.target_profiles:
        tree = validator.tree(url)
        if tree is None:
            if target is not None:  # it resolves, so the profile matters and is unknown
                message = f"Unable to resolve the profile reference {url!r}"
                run.add("error", "not-found", message, item.path)
            return
        allowed[url] = tree.type
    if "Resource" in allowed.values():
        return
    found = target.get("resourceType") if target else _referenced_type(run, item.value)
    if found and found not in allowed.values():
        expected = ", ".join(sorted(set(allowed.values())))
        message = f"Invalid Resource target type. Found {found}, but expected one of ({expected})"
        run.add("error", "structure", message, item.path)
        return
    profiles = [u for u, t in allowed.items() if t == found and u != CORE_PREFIX + str(found)]
    if target is not None and profiles and not validator.conforms_to_any(run, target, profiles):
        shown = ", ".join(profiles)
        message = f"The resource referenced ({item.value.get('reference')}) does not meet {shown}"
        run.add("error", "structure", message, item.path)


def resolve_in_bundle(run: Run, value: dict[str, Any]) -> dict[str, Any] | None:
    """The one entry of the enclosing Bundle a Reference points to, if there is exactly one."""
    target = value.get("reference")
    bundle = next(
        (r for r, _ in reversed(run.resources) if r.get("resourceType") == "Bundle"), None
    )
    if not isinstance(target, str) or bundle is None or target.startswith("#"):
        return None
    relative = _RELATIVE.match(target) if "://" not in target else None
    matches = []
    for entry in bundle.get("entry") or ():
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        full_url = entry.get("fullUrl")
        if full_url == target or (
            relative is not None
            and resource.get("resourceType") == relative.group(1)
            and resource.get("id") == relative.group(2)
        ):
            matches.append(resource)
    return matches[0] if len(matches) == 1 else None


def _referenced_type(run: Run, value: dict[str, Any]) -> str | None:
    declared = value.get("type")
    if isinstance(declared, str):
        return declared
    target = value.get("reference")
    if not isinstance(target, str):
        return None
    if target.startswith("#"):
        for contained in run.root.get("contained") or ():
            if isinstance(contained, dict) and contained.get("id") == target[1:]:
                kind = contained.get("resourceType")
                return kind if isinstance(kind, str) else None
        return None
    if target.startswith("urn:"):
        return None
    return reference_type(value)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
