"""What services need from the running application: settings and a way to open units of work."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from server.config import Settings
from server.fhir.searchparams import SearchParams
from server.services.resources import WriteOptions
from server.services.search import definitions
from server.storage.uow import UnitOfWork


@dataclass(frozen=True)
class ServiceContext:
    settings: Settings
    engine: Engine

    def unit_of_work(self, *, write: bool = False) -> UnitOfWork:
        """A transaction; ``write=True`` when the work will write (index rows included)."""
        return UnitOfWork(self.engine, write=write, indexer=definitions.indexer(self.settings))

    @property
    def search_params(self) -> SearchParams:
        return definitions.search_params(self.settings)

    @property
    def write_options(self) -> WriteOptions:
        return WriteOptions(allow_update_create=self.settings.allow_update_create)
