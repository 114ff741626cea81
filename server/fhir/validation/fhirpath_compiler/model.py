"""What fhirpathpy's R4 model says about paths and types, as the compiler needs it.

fhirpathpy gives every node a path: the base path of the evaluation, then ``parent.key``
mapped through the model's ``pathsDefinedElsewhere`` and ``path2Type`` tables, or the
``resourceType`` of a JSON object that has one.  The path decides whether a key names a
choice element (``value`` -> ``valueQuantity``...) and what ``is``/``as``/``ofType`` see.
The compiler follows these paths statically, in a :class:`Shape` per sub-eypression.
See ``fhirpathpy/engine/evaluators::create_reduce_member_invocation`` and
``fhirpathpy/engine/nodes.py::TypeInfo``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from fhirpathpy.models import models

_R4: dict[str, Any] = models["r4"]
_CHOICES: dict[str, list[str]] = _R4["choiceTypePaths"]
_ELSEWHERE: dict[str, str] = _R4["pathsDefinedElsewhere"]
_PATH_TYPES: dict[str, str] = _R4["path2Type"]
_PARENTS: dict[str, str] = _R4["type2Parent"]

# Keys that name a choice element somewhere: navigating them needs the exact parent path.
CHOICE_NAMES = frozenset(path.rsplit(".", 1)[1] for path in _CHOICES)
_KEY_TYPES: dict[str, set[str]] = {}
for _path, _type in _PATH_TYPES.items():
    _KEY_TYPES.setdefault(_path.rsplit(".", 1)[-1], set()).add(_type)


@dataclass(frozen=True)
class Shape:
    """What is statically known of a collection's items.

    ``node``: True when every item is a node (navigated data), False when every item is a
    computed value (literal, function result, %variable), None when mixed.  ``paths``: the
    paths the nodes may have, None when unknown.  ``resources``: JSON objects with a
    ``resourceType`` are expected and take it as their path.  ``key``: the member name the
    items were reached by, when paths are unknown.
    """

    node: bool | None
    paths: frozenset[str | None] | None
    resources: bool = False
    key: str | None = None

    def may_have_type(self, names: frozenset[str]) -> bool:
        """Whether a node of the collection may be typed as one of ``names``."""
        if self.node is False:
            return False
        if self.paths is None:
            return self.key is None or bool(_KEY_TYPES.get(self.key, set()) & names)
        return bool(self.paths & names)


VALUES = Shape(node=False, paths=frozenset({None}), resources=True)
UNKNOWN = Shape(node=True, paths=None, resources=True)
QUANTITY_TYPES = frozenset({"Quantity", "System.Quantity"})
DATE_TYPES = frozenset({"date", "dateTime", "time"})


def known(path: str | None) -> Shape:
    """Nodes that all have ``path`` (which may be a resource type)."""
    return Shape(node=True, paths=frozenset({path}), resources=path == "Resource")


@dataclass(frozen=True)
class Plain:
    """A member that is looked up by its own key, giving nodes of ``path``."""

    path: str


@dataclass(frozen=True)
class Choice:
    """A choice member: the first ``(key, _key, path)`` alternative present wins."""

    alternatives: tuple[tuple[str, str, str], ...]
    order: dict[str, int] = field(compare=False, hash=False, default_factory=dict)

    def __post_init__(self) -> None:
        for index, (key, companion, _) in enumerate(self.alternatives):
            self.order.setdefault(key, index)
            self.order.setdefault(companion, index)


@lru_cache(maxsize=4096)
def member(path: str | None, key: str) -> Plain | Choice:
    """How fhirpathpy navigates ``key`` from a JSON object at ``path``."""
    child = f"{path}.{key}" if path else f"_.{key}"
    child = _ELSEWHERE.get(child, child)
    types = _CHOICES.get(child)
    if types:
        return Choice(
            tuple(
                (key + suffix, f"_{key}{suffix}", _PATH_TYPES.get(child + suffix, child + suffix))
                for suffix in types
            )
        )
    target = "Extension" if key == "extension" else child
    return Plain(_PATH_TYPES.get(target, target))


# -- types ---------------------------------------------------------------------------------

TypeName = tuple[str | None, str]  # (namespace, name) as in fhirpathpy's TypeInfo


def specifier(text: str) -> TypeName | None:
    """A type specifier such as ``Quantity`` or ``FHIR.Quantity``; None when malformed."""
    parts = text.split(".")
    if len(parts) == 1:
        return None, parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    return None


def _value_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float | Decimal):
        return "decimal"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def value_type(value: Any) -> TypeName:
    """The System type fhirpathpy gives a computed (non-node) value."""
    return "System", _value_name(value).capitalize()


def node_type(path: str, value: Any, model_set: bool) -> TypeName:
    """The type of a node at ``path`` (not None); ``model_set`` as TypeInfo.model."""
    if path.startswith("System."):
        return "System", path[7:]
    if "." not in path:
        return "FHIR", path
    if model_set:
        return "FHIR", "BackboneElement"
    return "FHIR", _value_name(value)


def is_a(actual: TypeName, wanted: TypeName, model_set: bool) -> bool:
    """fhirpathpy's ``TypeInfo.is_``."""
    namespace, name = actual
    if namespace and wanted[0] and namespace != wanted[0]:
        return False
    if model_set and (not namespace or namespace == "FHIR"):
        return _derives(name, wanted[1])
    return name == wanted[1]


@lru_cache(maxsize=4096)
def _derives(name: str, ancestor: str) -> bool:
    current: str | None = name
    while current:
        if current == ancestor:
            return True
        current = _PARENTS.get(current) or _PATH_TYPES.get(current)
    return False


@lru_cache(maxsize=4096)
def node_path(element_path: str) -> str:
    """The path fhirpathpy gives the node at ``element_path`` when it navigates there from
    the root: ``Location.address.extension`` is an ``Extension``, ``Observation.component``
    stays as it is.  Choice elements (``[x]``) and unknown steps leave the path unchanged."""
    head, *keys = element_path.split(".")
    path = head
    for key in keys:
        spec = member(path, key) if not key.endswith("]") else None
        if not isinstance(spec, Plain):
            return element_path
        path = spec.path
    return path
