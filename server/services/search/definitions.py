"""The SearchParameters this server indexes and searches: official R4 plus ILP's own.

Read once per process from the official package (``ilp package fetch`` puts it in
ILP_PACKAGE_CACHE) and from the ILP package in ILP_PROFILES_DIR; ILP definitions
come last, so they may refine an official parameter of the same code.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from server.config import Settings
from server.fhir.extract import Indexer
from server.fhir.packages import R4_EXAMPLES, package_folder
from server.fhir.registry import SUPPORTED
from server.fhir.searchparams import SearchParams, definitions_in, from_definitions


def search_params(settings: Settings) -> SearchParams:
    return _load(str(package_folder(settings.package_cache, R4_EXAMPLES)), settings.profiles_dir)


def indexer(settings: Settings) -> Indexer:
    return _indexer(search_params(settings), settings.fhir_base)


@cache
def _load(core_folder: str, profiles_dir: str) -> SearchParams:
    if not (Path(core_folder) / "package.json").exists():
        raise RuntimeError(
            f"The FHIR package {R4_EXAMPLES} is not in {core_folder}; run `ilp package fetch`"
        )
    definitions = list(definitions_in(core_folder))
    if (Path(profiles_dir) / "package.json").exists():
        definitions.extend(definitions_in(profiles_dir))
    return from_definitions(SUPPORTED, definitions)


@cache
def _indexer(params: SearchParams, base: str) -> Indexer:
    return Indexer(params, base)
