"""OAuth2 clients in SQL: add, look up, list, revoke (``services/clients.py`` decides the rules)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from server.storage.schema import ApiClient, ClientAssertion

_C = cast(Table, ApiClient.__table__)
_A = cast(Table, ClientAssertion.__table__)


class DuplicateClient(Exception):
    """A client with this id exists already."""


@dataclass(frozen=True)
class ClientRow:
    client_id: str
    secret_hash: str
    scopes: str
    organization: str | None
    region: str | None
    revoked: bool
    created_at: datetime
    jwks: str | None = None


def add_client(connection: Connection, row: ClientRow) -> None:
    """Insert ``row``; DuplicateClient when its id is taken (revoked ids stay taken)."""
    try:
        with connection.begin_nested():
            connection.execute(insert(_C).values(**row.__dict__))
    except IntegrityError:
        raise DuplicateClient(row.client_id) from None


_FIND = select(_C).where(_C.c.client_id == bindparam("client_id"))


def find_client(connection: Connection, client_id: str) -> ClientRow | None:
    row = connection.execute(_FIND, {"client_id": client_id}).one_or_none()
    return ClientRow(**row._mapping) if row is not None else None


def all_clients(connection: Connection) -> list[ClientRow]:
    return [
        ClientRow(**row._mapping) for row in connection.execute(select(_C).order_by(_C.c.client_id))
    ]


def revoke_client(connection: Connection, client_id: str) -> bool:
    """Mark the client revoked; False when there is no such client."""
    result = connection.execute(update(_C).where(_C.c.client_id == client_id).values(revoked=True))
    return result.rowcount > 0


def use_assertion(connection: Connection, jti: str, client_id: str, expires_at: datetime) -> bool:
    """Record a client assertion's ``jti``; False when it was used before (a replay)."""
    connection.execute(delete(_A).where(_A.c.expires_at < now()))
    try:
        with connection.begin_nested():
            connection.execute(
                insert(_A).values(jti=jti, client_id=client_id, expires_at=expires_at)
            )
    except IntegrityError:
        return False
    return True


def now() -> datetime:
    return datetime.now(UTC)
