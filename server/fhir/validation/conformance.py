"""Conformance resources by canonical URL: StructureDefinitions, ValueSets, CodeSystems.

A ``ConformanceSet`` answers "what does this canonical mean" for the validator, the
snapshot generator and the terminology checks.  Package folders are indexed once
(URL -> file, kept beside the package as ``.ilp-canonical-index.json``) and files are
parsed on first use, so a worker does not hold the 65 MB of the core definitions in
memory.  Resources added later (``add``) shadow packaged ones with the same URL.
See https://hl7.org/fhir/R4/references.html#canonical.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from server.fhir import jsonio

KINDS = ("StructureDefinition", "ValueSet", "CodeSystem")
CORE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
_INDEX_FILE = ".ilp-canonical-index.json"
_INDEX_VERSION = 1
_CACHE_INDEX_FROM = 500  # files: below this, scanning is cheaper than keeping an index file

SnapshotBuilder = Callable[[dict[str, Any], "ConformanceSet"], list[dict[str, Any]]]


class ConformanceSet:
    """Canonical resources from package folders and added resources; thread-safe reads."""

    def __init__(self) -> None:
        self._files: dict[tuple[str, str], Path] = {}
        self._loaded: dict[tuple[str, str], dict[str, Any]] = {}
        self._snapshots: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.RLock()
        self.snapshot_builder: SnapshotBuilder | None = None
        # Skip differential elements a base lacks, as the HL7 generator does, instead of
        # refusing the profile: for third-party profiles; our own build stays strict.
        self.lenient_snapshots = False
        self._global: dict[str, list[str]] = {}

    @classmethod
    def from_folders(cls, folders: Iterable[str | Path]) -> ConformanceSet:
        """A set holding every StructureDefinition, ValueSet and CodeSystem of ``folders``."""
        conformance = cls()
        for folder in folders:
            conformance.add_folder(folder)
        return conformance

    def add_folder(self, folder: str | Path) -> int:
        """Index the conformance resources of a package folder; returns how many."""
        index = _folder_index(Path(folder))
        with self._lock:
            for kind, url, name in index:
                self._files[(kind, url)] = Path(folder) / name
        return len(index)

    def add(self, resource: dict[str, Any]) -> None:
        """Hold ``resource`` (a StructureDefinition, ValueSet or CodeSystem) under its URL; of an
        ImplementationGuide, its global profiles."""
        kind, url = resource.get("resourceType"), resource.get("url")
        if kind == "ImplementationGuide":
            for item in resource.get("global") or ():
                if isinstance(item, dict) and item.get("type") and item.get("profile"):
                    self._global.setdefault(str(item["type"]), []).append(str(item["profile"]))
            return
        if kind not in KINDS or not isinstance(url, str):
            return
        with self._lock:
            self._loaded[(kind, url)] = resource
            version = resource.get("version")
            if isinstance(version, str):
                self._loaded[(kind, f"{url}|{version}")] = resource
            self._snapshots.clear()

    def get(self, kind: str, url: str) -> dict[str, Any] | None:
        """The resource of ``kind`` with canonical ``url`` (``url|version`` accepted)."""
        with self._lock:
            found = self._loaded.get((kind, url))
            if found is not None:
                return found
            path = self._files.get((kind, url))
            if path is None and "|" in url:
                # A version we do not hold exactly: fall back to the unversioned URL.
                base = url.split("|", 1)[0]
                found = self._loaded.get((kind, base))
                if found is not None:
                    return found
                path = self._files.get((kind, base))
            if path is None:
                return None
            resource: dict[str, Any] = jsonio.loads(path.read_bytes())
            self._loaded[(kind, url)] = resource
            return resource

    def structure(self, url_or_type: str) -> dict[str, Any] | None:
        """A StructureDefinition by URL, or by a bare type name (``Observation``)."""
        if "/" not in url_or_type and ":" not in url_or_type:
            url_or_type = CORE_PREFIX + url_or_type
        return self.get("StructureDefinition", url_or_type)

    def value_set(self, url: str) -> dict[str, Any] | None:
        return self.get("ValueSet", url)

    def code_system(self, url: str) -> dict[str, Any] | None:
        return self.get("CodeSystem", url)

    def snapshot(self, url_or_type: str) -> list[dict[str, Any]] | None:
        """The snapshot elements of a StructureDefinition, generated when it has none."""
        definition = self.structure(url_or_type)
        if definition is None:
            return None
        key = str(definition.get("url", url_or_type))
        with self._lock:
            cached = self._snapshots.get(key)
            if cached is not None:
                return cached
        elements = (definition.get("snapshot") or {}).get("element")
        if not elements:
            if self.snapshot_builder is None or not definition.get("differential"):
                return None
            elements = self.snapshot_builder(definition, self)
        with self._lock:
            self._snapshots[key] = elements
        return list(elements)

    def global_profiles(self, resource_type: str) -> list[str]:
        """Profiles every resource of ``resource_type`` must meet (ImplementationGuide.global)."""
        return list(self._global.get(resource_type, ()))

    def urls(self, kind: str) -> list[str]:
        """Every URL held for ``kind`` (unversioned and versioned keys alike)."""
        with self._lock:
            keys = {url for k, url in self._files if k == kind}
            keys.update(url for k, url in self._loaded if k == kind)
        return sorted(keys)


def _folder_index(folder: Path) -> list[tuple[str, str, str]]:
    """(kind, url, file name) for every conformance file of ``folder``, cached on disk."""
    cache = folder / _INDEX_FILE
    names = sorted(
        path.name for kind in KINDS for path in folder.glob(f"{kind}-*.json") if path.is_file()
    )
    if cache.exists():
        try:
            stored = jsonio.loads(cache.read_bytes())
            if stored.get("version") == _INDEX_VERSION and stored.get("names") == names:
                return [(str(k), str(u), str(n)) for k, u, n in stored["entries"]]
        except (ValueError, KeyError, AttributeError):
            pass
    entries: list[tuple[str, str, str]] = []
    for name in names:
        data = jsonio.loads((folder / name).read_bytes())
        if not isinstance(data, dict):
            continue
        kind, url = data.get("resourceType"), data.get("url")
        if kind in KINDS and isinstance(url, str):
            entries.append((kind, url, name))
            if isinstance(data.get("version"), str):
                entries.append((kind, f"{url}|{data['version']}", name))
    if len(names) < _CACHE_INDEX_FROM:
        return entries
    try:
        cache.write_bytes(
            jsonio.dumps({"version": _INDEX_VERSION, "names": names, "entries": entries})
        )
    except OSError:
        pass  # a read-only package folder: index again next time
    return entries
