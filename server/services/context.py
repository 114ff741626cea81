"""What services need from the running application: settings and a way to open units of work."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from server.config import Settings
from server.services.resources import WriteOptions
from server.storage.uow import UnitOfWork


@dataclass(frozen=True)
class ServiceContext:
    settings: Settings
    engine: Engine

    def unit_of_work(self, *, write: bool = False) -> UnitOfWork:
        """A transaction; ``write=True`` when the work will write."""
        return UnitOfWork(self.engine, write=write)

    @property
    def write_options(self) -> WriteOptions:
        return WriteOptions(allow_update_create=self.settings.allow_update_create)
