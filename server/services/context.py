"""What services need from the running application: settings and a way to open units of work."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace

from sqlalchemy import Engine

from server.config import Settings
from server.fhir.registry import SYNCED_TYPES
from server.fhir.searchparams import SearchParams
from server.services.access import UNRESTRICTED, Caller
from server.services.resources import WriteOptions
from server.services.search.definitions import DefinitionCache, Definitions
from server.services.validation import ProfileValidation
from server.storage.uow import UnitOfWork


class _Shared:
    """What every copy of a context shares: the profile validator, built on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._validation: ProfileValidation | None = None

    def validation(self, settings: Settings) -> ProfileValidation:
        with self._lock:
            if self._validation is None:
                self._validation = ProfileValidation(settings)
            return self._validation


@dataclass(frozen=True)
class ServiceContext:
    """The application's services, acting for ``caller`` (``for_caller`` makes a request's)."""

    settings: Settings
    engine: Engine
    search_definitions: DefinitionCache = field(default_factory=DefinitionCache, compare=False)
    caller: Caller = UNRESTRICTED
    _shared: _Shared = field(default_factory=_Shared, compare=False, repr=False)

    def for_caller(self, caller: Caller) -> ServiceContext:
        """This context acting for ``caller`` (its scopes and facilities apply everywhere)."""
        return replace(self, caller=caller)

    def unit_of_work(self, *, write: bool = False) -> UnitOfWork:
        """A transaction; ``write=True`` when the work will write (index rows included)."""
        current = self.definitions()
        uow = UnitOfWork(
            self.engine,
            write=write,
            indexer=current.indexer,
            search_params=current.searchable,
            outbox_types=SYNCED_TYPES if self.settings.outbox else frozenset(),
        )
        uow.caller = self.caller
        uow.memo["derive_growth"] = self.settings.derive_growth
        return uow

    def definitions(self) -> Definitions:
        return self.search_definitions.get(self.settings, self.engine)

    @property
    def search_params(self) -> SearchParams:
        """The parameters searches may use now (what the CapabilityStatement lists)."""
        return self.definitions().searchable

    @property
    def validation(self) -> ProfileValidation:
        """The profile checks of writes and ``$validate`` (one validator per application)."""
        return self._shared.validation(self.settings)

    @property
    def write_options(self) -> WriteOptions:
        return WriteOptions(allow_update_create=self.settings.allow_update_create)
