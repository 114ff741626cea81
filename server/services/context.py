"""What services need from the running application: settings and a way to open units of work."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine

from server.config import Settings
from server.fhir.registry import SYNCED_TYPES
from server.fhir.searchparams import SearchParams
from server.services.resources import WriteOptions
from server.services.search.definitions import DefinitionCache, Definitions
from server.services.validation import ProfileValidation
from server.storage.uow import UnitOfWork


@dataclass(frozen=True)
class ServiceContext:
    settings: Settings
    engine: Engine
    search_definitions: DefinitionCache = field(default_factory=DefinitionCache, compare=False)

    def unit_of_work(self, *, write: bool = False) -> UnitOfWork:
        """A transaction; ``write=True`` when the work will write (index rows included)."""
        current = self.definitions()
        return UnitOfWork(
            self.engine,
            write=write,
            indexer=current.indexer,
            search_params=current.searchable,
            outbox_types=SYNCED_TYPES if self.settings.outbox else frozenset(),
        )

    def definitions(self) -> Definitions:
        return self.search_definitions.get(self.settings, self.engine)

    @property
    def search_params(self) -> SearchParams:
        """The parameters searches may use now (what the CapabilityStatement lists)."""
        return self.definitions().searchable

    @cached_property
    def validation(self) -> ProfileValidation:
        """The profile checks of writes and ``$validate`` (one validator per application)."""
        return ProfileValidation(self.settings)

    @property
    def write_options(self) -> WriteOptions:
        return WriteOptions(allow_update_create=self.settings.allow_update_create)
