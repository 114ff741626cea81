"""Typed configuration, read once from ``ILP_*`` environment variables.

This is the only module that reads the environment.  Tests build a ``Settings``
directly (or with ``dataclasses.replace``) and pass it to ``create_app``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from server.fhir.registry import SUPPORTED

ENV_PREFIX = "ILP_"


class ConfigError(ValueError):
    """A configuration variable has a value of the wrong shape."""


@dataclass(frozen=True)
class Settings:
    """Every tunable of the server; README.md documents each field as ``ILP_<FIELD>``."""

    database_url: str = "sqlite:///var/ilp.sqlite3"
    base_url: str = "http://127.0.0.1:8080/fhir"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 2
    default_count: int = 20
    max_count: int = 1000
    max_body_bytes: int = 16 * 1024 * 1024
    max_bundle_entries: int = 1000
    max_bundle_bytes: int = 8 * 1024 * 1024
    max_bundle_depth: int = 64
    allow_update_create: bool = True
    profiles_dir: str = "profiles"
    package_cache: str = ".cache/fhir"
    gzip_min_bytes: int = 1024
    log_level: str = "INFO"
    enforce_profiles: str = "Organization,Location,Patient,Encounter,Observation"
    enforce_claimed_profiles: bool = True
    # Sync to an upstream (SATUSEHAT-style) platform; docs/sync.md
    outbox: bool = True
    upstream_url: str = ""
    upstream_token_url: str = ""
    upstream_client_id: str = ""
    upstream_client_secret: str = ""
    upstream_organization_id: str = ""
    sync_facility: str = ""
    sync_persons: str = "lookup"
    sync_batch_size: int = 50
    sync_bundle_size: int = 1
    sync_max_attempts: int = 12
    sync_timeout: int = 30
    # National mode: this server as the upstream of other nodes
    national_clients: str = ""
    token_lifetime: int = 14399
    # Security: docs/security.md
    auth: bool = True
    audit: bool = True
    rate_limit: int = 1200
    rate_burst: int = 200
    # The PWS dashboard: docs/indicators.md#targets ("stunting=14,wasting=7", percent)
    indicator_targets: str = ""
    derive_growth: bool = True  # store WHO z-score Observations derived from measurements

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from ``ILP_*`` variables; raises ConfigError naming a bad variable."""
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            name = ENV_PREFIX + field.name.upper()
            if name in environ:
                values[field.name] = _cast(name, environ[name], _CASTS[str(field.type)])
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Reject combinations that cannot work; raises ConfigError."""
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError("ILP_BASE_URL must be an absolute http(s) URL")
        if not 0 < self.default_count <= self.max_count:
            raise ConfigError("ILP_DEFAULT_COUNT must be between 1 and ILP_MAX_COUNT")
        if self.workers < 1:
            raise ConfigError("ILP_WORKERS must be at least 1")
        for name in ("max_bundle_entries", "max_bundle_bytes", "max_bundle_depth"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ILP_{name.upper()} must be at least 1")
        if self.sync_persons not in ("lookup", "create"):
            raise ConfigError("ILP_SYNC_PERSONS must be lookup or create")
        if self.upstream_url and not self.upstream_organization_id:
            raise ConfigError("ILP_UPSTREAM_URL needs ILP_UPSTREAM_ORGANIZATION_ID")
        for name in (
            "sync_batch_size",
            "sync_bundle_size",
            "sync_max_attempts",
            "sync_timeout",
            "token_lifetime",
            "rate_burst",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"ILP_{name.upper()} must be at least 1")
        if self.rate_limit < 0:
            raise ConfigError("ILP_RATE_LIMIT must be 0 (off) or a number of requests a minute")
        if self.national_clients and not self.client_secrets:
            raise ConfigError("ILP_NATIONAL_CLIENTS must list id:secret pairs separated by commas")
        self.targets  # noqa: B018 (raises ConfigError when malformed)
        unknown = sorted(self.enforced_types - SUPPORTED.keys())
        if unknown:
            raise ConfigError(
                "ILP_ENFORCE_PROFILES must list supported resource types separated by commas; "
                f"unknown: {', '.join(unknown)}"
            )

    @property
    def fhir_base(self) -> str:
        """The FHIR base URL without a trailing slash."""
        return self.base_url.rstrip("/")

    @property
    def enforced_types(self) -> frozenset[str]:
        """Resource types that must meet their ILP profiles on write (ILP_ENFORCE_PROFILES)."""
        return frozenset(t.strip() for t in self.enforce_profiles.split(",") if t.strip())

    @property
    def targets(self) -> dict[str, float]:
        """Indicator targets in percent by indicator code (ILP_INDICATOR_TARGETS)."""
        found: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in self.indicator_targets.split(","))):
            code, _, number = item.partition("=")
            try:
                found[code.strip()] = float(number)
            except ValueError:
                raise ConfigError(
                    "ILP_INDICATOR_TARGETS must list code=percent pairs separated by commas"
                ) from None
        return found

    @property
    def client_secrets(self) -> dict[str, str]:
        """The national mode's OAuth2 clients, ``id:secret`` pairs of ILP_NATIONAL_CLIENTS."""
        pairs = (item.strip().partition(":") for item in self.national_clients.split(","))
        return {key: secret for key, _, secret in pairs if key and secret}


def _to_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("true", "1", "on", "yes"):
        return True
    if lowered in ("false", "0", "off", "no"):
        return False
    raise ValueError(raw)


_CASTS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "str": ("a string", str),
    "int": ("an integer", int),
    "bool": ("one of true, false, on, off, 1, 0", _to_bool),
}


def _cast(name: str, raw: str, cast: tuple[str, Callable[[str], Any]]) -> Any:
    expected, function = cast
    try:
        return function(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {expected}, got {raw!r}") from None
