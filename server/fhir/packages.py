"""Official FHIR packages from the npm registry, cached on disk.

``hl7.fhir.r4.examples`` 4.0.1 carries the R4 StructureDefinitions,
SearchParameters and every example of the specification.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from server.fhir import jsonio

R4_EXAMPLES = "hl7.fhir.r4.examples@4.0.1"


def package_folder(cache: str | Path, spec: str) -> Path:
    """Where ``spec`` (``name@version``) is unpacked: ``<cache>/<name>-<version>/package``."""
    name, _, version = spec.partition("@")
    return Path(cache) / f"{name}-{version}" / "package"


def fetch(cache: str | Path, spec: str) -> Path:
    """Download ``spec`` with ``npm pack`` unless it is cached; returns its folder."""
    folder = package_folder(cache, spec)
    if (folder / "package.json").exists():
        return folder
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to fetch FHIR packages; install Node.js and npm")
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(
            [npm, "pack", spec, "--silent"], cwd=work, check=True, stdout=subprocess.DEVNULL
        )
        (tarball,) = Path(work).glob("*.tgz")
        target = folder.parent
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with tarfile.open(tarball) as archive:
            archive.extractall(partial, filter="data")
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return folder


def resources_in(folder: str | Path, prefix: str = "") -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every JSON resource file of a package folder (package.json and indexes skipped).

    ``prefix`` narrows to files named like ``SearchParameter-*.json``, as packages name them.
    """
    for path in sorted(Path(folder).glob(f"{prefix}*.json")):
        if path.name in ("package.json", ".index.json"):
            continue
        data = jsonio.loads(path.read_bytes())
        if isinstance(data, dict) and "resourceType" in data:
            yield path, data
