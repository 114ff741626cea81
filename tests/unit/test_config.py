"""Settings from ILP_* variables: casts, defaults, loud failures, and the README table."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from server.config import ConfigError, Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_without_environment():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.database_url.startswith("sqlite:///var/")
    assert settings.fhir_base == "http://127.0.0.1:8080/fhir"


def test_values_are_cast_by_type():
    settings = Settings.from_env(
        {
            "ILP_PORT": "9090",
            "ILP_ALLOW_UPDATE_CREATE": "false",
            "ILP_BASE_URL": "https://x/fhir/",
            "UNRELATED": "ignored",
        }
    )
    assert settings.port == 9090
    assert settings.allow_update_create is False
    assert settings.fhir_base == "https://x/fhir"


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("ILP_PORT", "eighty", "ILP_PORT must be an integer"),
        ("ILP_ALLOW_UPDATE_CREATE", "maybe", "ILP_ALLOW_UPDATE_CREATE must be one of true, false"),
        ("ILP_BASE_URL", "localhost/fhir", "ILP_BASE_URL must be an absolute"),
        ("ILP_DEFAULT_COUNT", "5000", "ILP_DEFAULT_COUNT must be between"),
    ],
)
def test_bad_values_fail_naming_the_variable(name, value, expected):
    with pytest.raises(ConfigError, match=expected):
        Settings.from_env({name: value})


def test_readme_documents_every_setting_with_its_default():
    table = {}
    for line in README.read_text().splitlines():
        match = re.match(r"\|\s*`(ILP_[A-Z_]+)`\s*\|\s*`([^`]*)`\s*\|", line)
        if match:
            table[match.group(1)] = match.group(2)
    for field in dataclasses.fields(Settings):
        name = "ILP_" + field.name.upper()
        assert name in table, f"{name} is missing from the README configuration table"
        default = field.default
        expected = str(default).lower() if isinstance(default, bool) else str(default)
        assert table[name] == expected, f"README default of {name} is stale"
