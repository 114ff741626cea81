"""The layering of the design card: storage and services never import Flask; HTTP never SQL."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parents[2] / "server"


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


@pytest.mark.parametrize(
    "package, forbidden",
    [
        ("storage", ("flask", "werkzeug", "server.http", "server.services")),
        ("services", ("flask", "werkzeug", "server.http")),
        ("http", ("sqlalchemy", "server.storage")),
        (
            "fhir",
            ("flask", "werkzeug", "sqlalchemy", "server.http", "server.services", "server.storage"),
        ),
        (  # the demo generator is pure: resources out, no app and no database
            "demo",
            ("flask", "werkzeug", "sqlalchemy", "server.http", "server.services", "server.storage"),
        ),
    ],
)
def test_package_does_not_import(package, forbidden):
    offenders = [
        f"{path.relative_to(SERVER)} imports {name}"
        for path in (SERVER / package).rglob("*.py")
        for name in _imports(path)
        if name.split(".")[0] in forbidden
        or any(name.startswith(f + ".") or name == f for f in forbidden)
    ]
    assert offenders == []


def test_only_models_module_imports_fhir_resources():
    offenders = [
        str(path.relative_to(SERVER))
        for path in SERVER.rglob("*.py")
        if path.name != "models.py" and any(n.startswith("fhir.resources") for n in _imports(path))
    ]
    assert offenders == []


def test_only_config_reads_the_environment():
    readers = [
        str(path.relative_to(SERVER))
        for path in SERVER.rglob("*.py")
        if "os.environ" in path.read_text()
        and path.name not in ("config.py", "__init__.py", "cli.py")
    ]
    assert readers == []
