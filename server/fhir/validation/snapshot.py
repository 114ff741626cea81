"""Snapshot generation: a constraint StructureDefinition's differential applied to its base.

The base snapshot is read into a tree (children in order, then slices), each differential
element is merged into the node its id names, unfolding a datatype's own snapshot where
the differential dives below an element the base leaves folded, and the tree is written
back in snapshot order with paths and ids computed from the tree.  A renamed choice
(``Observation.valueQuantity``) becomes the type slice ``Observation.value[x]:valueQuantity``
of a closed ``type``/``$this`` slicing that narrows ``value[x]`` to the renamed types.
New slices start from the base definition of the sliced element.
See https://hl7.org/fhir/R4/profiling.html and
https://hl7.org/fhir/R4/elementdefinition.html#interpretation (ids: ``#id``).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.errors import UnprocessableEntity
from server.fhir import jsonio
from server.fhir.packages import resources_in
from server.fhir.validation.conformance import ConformanceSet

logger = logging.getLogger(__name__)

Element = dict[str, Any]

TYPE_SLICING: Element = {
    "discriminator": [{"type": "type", "path": "$this"}],
    "ordered": False,
    "rules": "closed",
}
EXTENSION_SLICING: Element = {
    "discriminator": [{"type": "value", "path": "url"}],
    "description": "Extensions are always sliced by (at least) url",
    "ordered": False,
    "rules": "open",
}
# Types a binding can apply to; a binding left on anything else is dropped.
_BINDABLE = {"code", "Coding", "CodeableConcept", "Quantity", "string", "uri"}
# choice[x] families: one value per element, a differential value replaces the base's.
_CHOICES = ("fixed", "pattern", "defaultValue", "minValue", "maxValue")
_ACTIVE: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "snapshot_active", default=frozenset()
)


class SnapshotError(UnprocessableEntity):
    """A differential that cannot be applied to its base definition."""


class UnknownElement(SnapshotError):
    """A differential element whose path the base definition does not have."""


@dataclass(eq=False)
class _Node:
    """One element of the snapshot under construction.

    ``original`` is never modified; ``element`` is a shallow copy whose top-level keys
    the merge replaces.  ``base_children``/``base_slices`` remember what the base held,
    so that a new slice can start from the base definition of the sliced element.
    """

    name: str
    original: Element
    element: Element
    slice_name: str | None = None
    children: list[_Node] = field(default_factory=list)
    slices: list[_Node] = field(default_factory=list)
    base_children: tuple[_Node, ...] = ()
    base_slices: tuple[_Node, ...] = ()
    renamed_types: bool = False  # slicing made from renamed choices: narrow the types
    label: str | None = None  # a slice name the differential gave an element it did not slice

    def pristine(self) -> _Node:
        """A fresh copy of this node as the base defined it, with its base descendants."""
        node = _Node(self.name, self.original, dict(self.original), self.slice_name)
        node.children = [child.pristine() for child in self.base_children]
        node.slices = [piece.pristine() for piece in self.base_slices]
        node.base_children, node.base_slices = tuple(node.children), tuple(node.slices)
        return node


def generate_snapshot(definition: dict[str, Any], conformance: ConformanceSet) -> list[Element]:
    """The snapshot elements of the constraint StructureDefinition ``definition``.

    Raises SnapshotError when the base cannot be found or the differential does not fit it.
    """
    url = str(definition.get("url", definition.get("id", "?")))
    if definition.get("derivation", "constraint") != "constraint":
        raise SnapshotError(f"{url}: only constraint StructureDefinitions are generated")
    base_url = definition.get("baseDefinition")
    if not isinstance(base_url, str):
        raise SnapshotError(f"{url}: a constraint needs a baseDefinition")
    active = _ACTIVE.get()
    if url in active:
        raise SnapshotError(f"{url}: circular definition ({', '.join(sorted(active))})")
    token = _ACTIVE.set(active | {url})
    try:
        base = conformance.snapshot(base_url)
        if not base:
            raise SnapshotError(f"{url}: no snapshot for the base {base_url}")
        differential = jsonio.loads(jsonio.dumps(definition.get("differential", {})))
        builder = _Builder(url, conformance, base)
        diff_elements = differential.get("element", [])
        for diff_id, diff in zip(_ids(diff_elements), diff_elements, strict=True):
            try:
                builder.apply(diff_id, diff)
            except UnknownElement as exc:
                if not conformance.lenient_snapshots:
                    raise
                logger.warning("Differential element skipped: %s", exc)
        elements: list[Element] = []
        _emit(builder.root, builder.root.name, builder.root.name, elements)
        return list(jsonio.loads(jsonio.dumps(elements)))
    finally:
        _ACTIVE.reset(token)


@dataclass(frozen=True)
class FolderReport:
    """What ``write_snapshots`` did: the files it rewrote and how many were already current."""

    written: tuple[Path, ...]
    unchanged: int


def regenerate_folder(
    folder: str | Path, base_folders: Iterable[str | Path]
) -> list[tuple[Path, dict[str, Any]]]:
    """Each constraint StructureDefinition file of ``folder`` with its snapshot regenerated.

    Bases come from ``base_folders`` and from ``folder`` itself, whose own snapshots are
    ignored so that a profile built on another one sees its fresh snapshot.
    Raises SnapshotError when a differential does not apply.
    """
    conformance = ConformanceSet.from_folders(base_folders)
    conformance.snapshot_builder = generate_snapshot
    constraints = []
    for path, data in resources_in(folder):
        if data.get("resourceType") != "StructureDefinition":
            continue
        if data.get("derivation") == "constraint":
            constraints.append((path, data))
            data = {k: v for k, v in data.items() if k != "snapshot"}
        conformance.add(data)
    result = []
    for path, data in constraints:
        stripped = {k: v for k, v in data.items() if k != "snapshot"}
        snapshot = {"element": generate_snapshot(stripped, conformance)}
        keys = list(data)
        if "snapshot" not in keys:  # just before the differential, where FHIR puts it
            keys.insert(
                keys.index("differential") if "differential" in keys else len(keys), "snapshot"
            )
        result.append((path, {k: snapshot if k == "snapshot" else data[k] for k in keys}))
    return result


def write_snapshots(folder: str | Path, base_folders: Iterable[str | Path]) -> FolderReport:
    """Write the regenerated snapshots of ``folder``'s profiles, touching only stale files.

    Files are written as 2-space indented JSON with a final newline, keys in their order.
    Raises SnapshotError (before writing anything) when a differential does not apply.
    """
    written, unchanged = [], 0
    for path, updated in regenerate_folder(folder, base_folders):
        if jsonio.loads(path.read_bytes()) == updated:
            unchanged += 1
            continue
        path.write_bytes(jsonio.dumps(updated, pretty=True) + b"\n")
        written.append(path)
    return FolderReport(tuple(written), unchanged)


class _Builder:
    """Applies differential elements, one by one, to the tree of the base snapshot."""

    def __init__(self, url: str, conformance: ConformanceSet, base: list[Element]) -> None:
        self.url, self.conformance = url, conformance
        self.index = _tree(base)  # the base's nodes by id, for contentReference
        self.root = next(iter(self.index.values()))

    def apply(self, diff_id: str, diff: Element) -> None:
        segments = diff_id.split(".")
        if segments[0] != self.root.name:
            raise SnapshotError(f"{self.url}: {diff_id} is not in {self.root.name}")
        node, where = self.root, self.root.name
        for segment in segments[1:]:
            name, _, slice_name = segment.partition(":")
            node = self._child(node, name, where)
            where = f"{where}.{segment}"
            if slice_name:
                node = self._slice(node, slice_name, where)
        self._add_profile_constraints(node.element, diff)
        _merge(node.element, diff, self.url)

    def _add_profile_constraints(self, element: Element, diff: Element) -> None:
        """The constraints of the root of a type profile the differential names apply here."""
        types = diff.get("type") or []
        if len(types) != 1 or types[0].get("code") == "Reference" or not types[0].get("profile"):
            return
        snapshot = self.conformance.snapshot(types[0]["profile"][0])
        if snapshot:
            have = {c.get("key") for c in element.get("constraint", [])}
            extra = [c for c in snapshot[0].get("constraint", []) if c.get("key") not in have]
            element["constraint"] = element.get("constraint", []) + extra

    def _child(self, node: _Node, name: str, where: str) -> _Node:
        if not node.children and node is not self.root:
            self._unfold(node, where)
        for child in node.children:
            if child.name == name:
                return child
        for child in node.children:  # a renamed choice: valueQuantity for value[x]
            stem = child.name[:-3]
            if child.name.endswith("[x]") and name.startswith(stem) and len(name) > len(stem):
                return self._type_slice(child, name, name[len(stem) :], where)
        raise UnknownElement(f"{self.url}: {where} has no element {name}")

    def _slice(self, owner: _Node, slice_name: str, where: str) -> _Node:
        stem = owner.name[:-3]
        if owner.name.endswith("[x]") and slice_name.startswith(stem):
            suffix = slice_name[len(stem) :]  # value[x]:valueQuantity, a type slice
            if any(_type_suffix(t.get("code")) == suffix for t in owner.element.get("type", [])):
                return self._type_slice(owner, slice_name, suffix, where)
        parts = slice_name.split("/")
        for depth in range(1, len(parts) + 1):
            wanted = "/".join(parts[:depth])
            if owner.label == wanted:
                return owner
            found = next((s for s in owner.slices if s.slice_name == wanted), None)
            if found is None:
                if depth < len(parts):
                    raise SnapshotError(f"{self.url}: {where} re-slices unknown slice {wanted}")
                found = self._new_slice(owner, wanted, where)
            owner = found
        return owner

    def _new_slice(self, owner: _Node, slice_name: str, where: str) -> _Node:
        if "slicing" not in owner.element and owner.slice_name is None:
            if owner.name in ("extension", "modifierExtension"):
                owner.element["slicing"] = dict(EXTENSION_SLICING)
            elif owner.slices or owner.label:
                raise SnapshotError(f"{self.url}: {where} slices an element with no slicing")
            else:
                # As the R4 snapshots have it: a lone "slice" of an element the profile does
                # not slice constrains the element itself, which keeps the name.
                logger.warning("%s: %s names an element that is not sliced", self.url, where)
                owner.label = owner.element["sliceName"] = slice_name
                return owner
        piece = owner.pristine()
        piece.slices, piece.base_slices = [], ()
        piece.slice_name = slice_name
        piece.element.pop("slicing", None)
        # The sliced element's minimum counts all slices together; one slice needs none.
        piece.element.update(sliceName=slice_name, min=0)
        owner.slices.append(piece)
        return piece

    def _type_slice(self, choice: _Node, name: str, suffix: str, where: str) -> _Node:
        for existing in choice.slices:
            if existing.slice_name == name:
                return existing
        types = [t for t in choice.element.get("type", []) if _type_suffix(t.get("code")) == suffix]
        if not types:
            raise SnapshotError(f"{self.url}: {where} allows no type {suffix} for {choice.name}")
        if "slicing" not in choice.element:
            choice.element["slicing"] = dict(TYPE_SLICING)
            choice.renamed_types = True
        piece = self._new_slice(choice, name, where)
        piece.element["type"] = types
        _drop_unbindable(piece.element)
        if choice.renamed_types:
            choice.element["type"] = [t for s in choice.slices for t in s.element.get("type", [])]
            _drop_unbindable(choice.element)
        return piece

    def _unfold(self, node: _Node, where: str) -> None:
        """Give ``node`` the children of its type (or of the element it refers to)."""
        reference = node.element.get("contentReference")
        if isinstance(reference, str):
            target = self.index.get(reference.partition("#")[2])
            if target is None:
                raise SnapshotError(f"{self.url}: {where} refers to unknown {reference}")
            node.element.pop("contentReference")
            node.element["type"] = target.original.get("type", [])
            node.children = [child.pristine() for child in target.base_children]
            return
        types = node.element.get("type") or []
        codes = {t.get("code") for t in types}
        if not codes:
            raise SnapshotError(f"{self.url}: {where} has no type to unfold")
        if len(codes) > 1:
            # Several types: only what every type has (id, extension) can be constrained.
            source = self.conformance.snapshot("Element")
        else:
            source = None
            for profile in types[0].get("profile") or []:
                source = self.conformance.snapshot(profile)
                break
            if source is None:
                source = self.conformance.snapshot(str(types[0].get("code")))
        if not source:
            raise SnapshotError(f"{self.url}: {where} has a type with no definition to unfold")
        node.children = next(iter(_tree(source).values())).children


def _tree(elements: list[Element]) -> dict[str, _Node]:
    """The nodes of a snapshot by id, root first: children under parents, slices under owners."""
    root_path = str(elements[0]["path"])
    nodes = {root_path: _Node(root_path, elements[0], dict(elements[0]))}
    for element_id, element in zip(_ids(elements[1:], root_path), elements[1:], strict=True):
        parent_id, _, last = element_id.rpartition(".")
        name, _, slice_name = last.partition(":")
        node = _Node(name, element, dict(element), slice_name or None)
        owner_id = f"{parent_id}.{name}"
        if "/" in slice_name:  # a re-slice belongs to the slice it refines
            owner_id += ":" + slice_name.rpartition("/")[0]
        owner = nodes.get(owner_id if slice_name else parent_id)
        if owner is None:
            raise SnapshotError(f"{element_id} follows no element it belongs to")
        (owner.slices if slice_name else owner.children).append(node)
        nodes[element_id] = node
    for node in nodes.values():
        node.base_children, node.base_slices = tuple(node.children), tuple(node.slices)
    return nodes


def _ids(elements: list[Element], root: str | None = None) -> list[str]:
    """Each element's id: its own when it agrees with its path, else one built from the path."""
    current: dict[str, str] = {root: root} if root else {}
    result = []
    for element in elements:
        path = str(element.get("path", ""))
        parent, _, last = path.rpartition(".")
        element_id = element.get("id")
        if not isinstance(element_id, str) or not _same_path(element_id, path):
            element_id = f"{current.get(parent, parent)}.{last}" if parent else path
            if element.get("sliceName"):
                element_id += f":{element['sliceName']}"
        for key in [k for k in current if k.startswith(path + ".")]:
            del current[key]
        current[path] = element_id
        result.append(element_id)
    return result


def _same_path(element_id: str, path: str) -> bool:
    names = [segment.partition(":")[0] for segment in element_id.split(".")]
    steps = path.split(".")
    return len(names) == len(steps) and all(
        a == b or (b.endswith("[x]") and a.startswith(b[:-3]))
        for a, b in zip(names, steps, strict=True)
    )


def _emit(node: _Node, path: str, plain_id: str, out: list[Element], slice_name: str = "") -> None:
    """Append ``node`` and its descendants in snapshot order, with their paths and ids."""
    element_id = f"{plain_id}:{slice_name or node.label}" if slice_name or node.label else plain_id
    element = {"id": element_id}
    if "extension" in node.element:
        element["extension"] = node.element["extension"]
    element["path"] = path
    element.update((k, v) for k, v in node.element.items() if k not in ("id", "path", "extension"))
    out.append(element)
    for child in node.children:
        _emit(child, f"{path}.{child.name}", f"{element_id}.{child.name}", out)
    for piece in node.slices:
        _emit(piece, path, plain_id, out, str(piece.slice_name))


def _merge(element: Element, diff: Element, url: str) -> None:
    """Apply the differential element ``diff`` to ``element`` (top-level keys replaced)."""
    for key, value in diff.items():
        bare = key.lstrip("_")
        if bare in ("id", "path"):
            continue
        if key == "slicing":
            element[key] = _merge_slicing(element.get(key), value)
        elif key == "constraint":
            element[key] = _merge_constraints(element.get(key, []), value, url)
        elif key in ("alias", "condition", "mapping", "example", "code"):
            have = element.get(key, [])
            element[key] = have + [v for v in value if v not in have]
        elif key == "extension":
            urls = {e.get("url") for e in value}
            element[key] = [e for e in element.get(key, []) if e.get("url") not in urls] + value
        else:
            family = next((c for c in _CHOICES if bare.startswith(c) and bare != c), None)
            if family is not None and not key.startswith("_"):
                for old in [k for k in element if k.lstrip("_").startswith(family)]:
                    del element[old]
            element[key] = value
    if "type" in diff:
        _drop_unbindable(element)


def _merge_slicing(base: Element | None, diff: Element) -> Element:
    if not base:
        return dict(diff)
    merged = {**base, **{k: v for k, v in diff.items() if k != "discriminator"}}
    discriminators = list(base.get("discriminator", []))
    for discriminator in diff.get("discriminator", []):
        if discriminator not in discriminators:
            discriminators.append(discriminator)
    if discriminators:
        merged["discriminator"] = discriminators
    return merged


def _merge_constraints(base: list[Element], diff: list[Element], url: str) -> list[Element]:
    """Base constraints kept; a differential constraint with a base key replaces it."""
    added = {c.get("key"): {**c, "source": c.get("source", url)} for c in diff}
    merged = [added.pop(c.get("key"), c) for c in base]
    return merged + list(added.values())


def _drop_unbindable(element: Element) -> None:
    types = element.get("type")
    if "binding" in element and types and not any(t.get("code") in _BINDABLE for t in types):
        del element["binding"]


def _type_suffix(code: object) -> str:
    text = str(code)
    return text[:1].upper() + text[1:]
