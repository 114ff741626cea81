"""The SearchParameters this server indexes and searches.

Built in: every parameter of the official package (``ilp package fetch`` puts it in
ILP_PACKAGE_CACHE) and of the ILP package in ILP_PROFILES_DIR, ILP's last so they may
refine an official one.  Added at run time: SearchParameter resources stored on the
server, once ``ilp reindex`` has taken them up.  While it runs they are indexed on
every write but not yet searchable; when it ends they are both.  Each worker notices
such changes within ``REFRESH_SECONDS``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from server.config import Settings
from server.fhir import jsonio
from server.fhir.extract import Indexer
from server.fhir.packages import R4_EXAMPLES, package_folder
from server.fhir.registry import SUPPORTED
from server.fhir.searchparams import INDEXED_TYPES, SearchParams, definitions_in, from_definitions
from server.storage import search_params as stored

log = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0
BUILT_IN = "it is built in"


@dataclass(frozen=True)
class Definitions:
    indexer: Indexer  # what writes index: built in, active and being indexed
    searchable: SearchParams  # what searches may use: built in and active


def builtin_definitions(settings: Settings) -> tuple[dict[str, Any], ...]:
    """The SearchParameter resources of the official and the ILP packages."""
    return _builtin(_core_folder(settings), settings.profiles_dir)


def builtin_urls(settings: Settings) -> frozenset[str]:
    return _builtin_urls(_core_folder(settings), settings.profiles_dir)


def problem(resource: dict[str, Any], builtin: frozenset[str]) -> str | None:
    """Why a stored SearchParameter cannot be indexed, or None when it can."""
    if resource.get("url") in builtin:
        return BUILT_IN
    if resource.get("status") != "active":
        return "its status is not active"
    if resource.get("type") not in INDEXED_TYPES - {"composite"}:
        return f"type {resource.get('type')!r} cannot be indexed"
    if not resource.get("expression"):
        return "it has no expression"
    if not set(resource.get("base") or ()) & set(SUPPORTED):
        return "none of its base types is held by this server"
    return None


class DefinitionCache:
    """A worker's current Definitions, reloaded when the stored parameters' state changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._generation: tuple[Any, ...] | None = None
        self._current: Definitions | None = None

    def get(self, settings: Settings, engine: Engine) -> Definitions:
        with self._lock:
            if self._current is None or time.monotonic() - self._checked > REFRESH_SECONDS:
                self._refresh(settings, engine)
            assert self._current is not None
            return self._current

    def invalidate(self) -> None:
        with self._lock:
            self._checked = float("-inf")

    def _refresh(self, settings: Settings, engine: Engine) -> None:
        with engine.connect() as connection:
            generation = stored.generation(connection)
            if generation != self._generation or self._current is None:
                params = stored.stored_params(connection) if generation[0] else []
                self._current = _definitions(settings, params)
                self._generation = generation
        self._checked = time.monotonic()


def _definitions(settings: Settings, params: list[stored.StoredParam]) -> Definitions:
    builtin = builtin_definitions(settings)
    urls = builtin_urls(settings)
    indexed = tuple(
        p.content
        for p in params
        if p.status in ("indexing", "active") and not problem(p.content, urls)
    )
    active = tuple(
        p.content for p in params if p.status == "active" and not problem(p.content, urls)
    )
    indexer = _indexer(_params(builtin, indexed), settings.fhir_base)
    return Definitions(indexer, _params(builtin, active))


@cache
def _builtin(core_folder: str, profiles_dir: str) -> tuple[dict[str, Any], ...]:
    if not (Path(core_folder) / "package.json").exists():
        raise RuntimeError(
            f"The FHIR package {R4_EXAMPLES} is not in {core_folder}; run `ilp package fetch`"
        )
    definitions = list(definitions_in(core_folder))
    if (Path(profiles_dir) / "package.json").exists():
        definitions.extend(definitions_in(profiles_dir))
    return tuple(definitions)


@cache
def _builtin_urls(core_folder: str, profiles_dir: str) -> frozenset[str]:
    return frozenset(d.get("url", "") for d in _builtin(core_folder, profiles_dir))


def _core_folder(settings: Settings) -> str:
    return str(package_folder(settings.package_cache, R4_EXAMPLES))


# Servers (and tests) with the same definitions share one SearchParams and one Indexer.
_PARAMS: dict[tuple[int, bytes], SearchParams] = {}


def _params(builtin: tuple[dict[str, Any], ...], added: tuple[dict[str, Any], ...]) -> SearchParams:
    key = (id(builtin), jsonio.dumps(added))  # the built-in tuple lives as long as the process
    found = _PARAMS.get(key)
    if found is None:
        found = _PARAMS[key] = from_definitions(SUPPORTED, builtin + added)
    return found


@cache
def _indexer(params: SearchParams, base: str) -> Indexer:
    return Indexer(params, base)
