"""Loading the demo district (``server/demo``) through the service layer.

Each resource is stored with ``resources.update`` under its stable id, as a client's PUT would
be: versions, content hash, ``org_scope`` and search index rows all come from the one write
path, so loading the same district twice stores nothing new.  Resources go in units of work of
a few hundred: small enough to keep transactions short, large enough that commits do not
dominate.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from server.demo import district
from server.demo.district import DemoSize
from server.services import resources
from server.services.context import ServiceContext
from server.services.resources import WriteOptions
from server.services.validation import check_structure

DEFAULT_BATCH_SIZE = 500
# The loader chooses the ids, so it must create on update whatever ILP_ALLOW_UPDATE_CREATE says
# about clients.
_CREATE_ON_UPDATE = WriteOptions(allow_update_create=True)


@dataclass(frozen=True)
class LoadReport:
    """Where a load stands: new versions written, resources already stored, time taken."""

    written: int = 0
    unchanged: int = 0
    seconds: float = 0.0
    written_by_type: dict[str, int] = field(default_factory=dict)

    @property
    def processed(self) -> int:
        return self.written + self.unchanged

    @property
    def rate(self) -> float:
        """Resources processed per second."""
        return self.processed / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[LoadReport], None]


def load_demo(
    context: ServiceContext,
    size: DemoSize,
    seed: int = district.DEFAULT_SEED,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    validate: bool = False,
    on_progress: ProgressCallback | None = None,
) -> LoadReport:
    """Generate the demo district of ``size`` and ``seed`` and store it; see load_resources."""
    return load_resources(
        context,
        district.generate(size, seed),
        batch_size=batch_size,
        validate=validate,
        on_progress=on_progress,
    )


def load_resources(
    context: ServiceContext,
    stream: Iterable[dict[str, Any]],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    validate: bool = False,
    on_progress: ProgressCallback | None = None,
) -> LoadReport:
    """Store resources that carry their ids, ``batch_size`` per transaction, in stream order.

    ``validate`` runs the checks of a client's write first: structure (InvalidResource) and
    the profiles ILP_ENFORCE_PROFILES requires (ProfileViolation).  The demo generator's
    output is checked by its tests, so the loader skips them by default.
    ``on_progress`` is called after every committed unit of work.  A failing unit of work is
    rolled back and its error raised; the units before it stay stored.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    started = time.perf_counter()
    written, unchanged = 0, 0
    by_type: Counter[str] = Counter()
    for batch in _batches(stream, batch_size):
        with context.unit_of_work(write=True) as uow:
            for resource in batch:
                if validate:
                    check_structure(resource)
                    context.validation.check_write(resource)
                result = resources.update(
                    uow,
                    resource["resourceType"],
                    resource["id"],
                    resource,
                    options=_CREATE_ON_UPDATE,
                )
                if result.changed:
                    written += 1
                    by_type[resource["resourceType"]] += 1
                else:
                    unchanged += 1
        if on_progress is not None:
            on_progress(
                LoadReport(written, unchanged, time.perf_counter() - started, dict(by_type))
            )
    return LoadReport(written, unchanged, time.perf_counter() - started, dict(by_type))


def _batches(stream: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(stream)
    while batch := list(islice(iterator, size)):
        yield batch
