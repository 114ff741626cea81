"""Which Organizations a facility-bound client may see, as SQL (docs/security.md#facilities).

A client bound to an Organization sees that Organization and every one below it through
``Organization.partOf`` (any depth); a client bound to a region sees the Organizations whose
Kemendagri address code starts with the region's code, and those below them.  The set is a
recursive query over the ``partof`` and ``address-*`` index rows, so it is always current and
every search, count, include and history page filters on it inside the database.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, literal, select

from server.storage.schema import INDEX_TABLES

_REF = INDEX_TABLES["reference"].__table__
_TOKEN = INDEX_TABLES["token"].__table__
# the ILP SearchParameters (profiles/SearchParameter-address-*.json) index the codes
REGION_PARAMS = ("address-province", "address-city", "address-district", "address-village")


@dataclass(frozen=True)
class Binding:
    """Where a client acts: one Organization's subtree or a region's (never both)."""

    organization: str | None = None
    region: str | None = None


@functools.lru_cache(maxsize=1024)
def visible_organizations(binding: Binding) -> Select[Any]:
    """Ids of the Organizations ``binding`` covers (a SELECT of one column, ``id``).

    Cached per binding: building the statement costs more than running it.
    """
    ref, token = _REF.alias(), _TOKEN.alias()
    if binding.organization is not None:
        seed: Select[Any] = select(literal(binding.organization).label("id"))
    else:
        prefix = (binding.region or "").replace(".", "")
        seed = select(token.c.res_id.label("id")).where(
            token.c.res_type == "Organization",
            token.c.param.in_(REGION_PARAMS),
            func.replace(token.c.code, ".", "").like(prefix + "%"),
        )
    tree = seed.cte(recursive=True)  # anonymous: a query may hold several (chains)
    below = select(ref.c.res_id).where(
        ref.c.res_type == "Organization",
        ref.c.param == "partof",
        ref.c.target_type == "Organization",
        ref.c.target_id == tree.c.id,
    )
    tree = tree.union(below)  # UNION, not UNION ALL: a partOf cycle ends the recursion
    return select(tree.c.id)


def is_visible(connection: Connection, binding: Binding, organization: str) -> bool:
    """Whether ``organization`` is in the subtree or region of ``binding``."""
    statement = _membership(binding)
    return connection.execute(statement, {"organization": organization}).first() is not None


@functools.lru_cache(maxsize=1024)
def _membership(binding: Binding) -> Select[Any]:
    inside = visible_organizations(binding).subquery()
    return select(literal(1)).where(bindparam("organization").in_(select(inside.c.id)))
