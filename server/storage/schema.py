"""SQL tables: current resources, every version, and token search indexes.

HAPI-like shape: ``resource`` holds the current version of each resource (one
primary-key lookup per read), ``resource_version`` every version in a global
order (``seq``), which is also the change feed the sync outbox will follow.
Bodies are JSON, stored as JSONB on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Index, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JSONBody = JSON().with_variant(JSONB(), "postgresql")
# SQLite only autoincrements an INTEGER PRIMARY KEY.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class Resource(Base):
    """The current version of every resource, tombstones included (``deleted``)."""

    __tablename__ = "resource"

    res_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    res_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(Integer)
    last_updated: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deleted: Mapped[bool] = mapped_column(Boolean)
    content: Mapped[dict[str, Any] | None] = mapped_column(JSONBody, nullable=True)
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The Organization a resource belongs to, for facility-bound access control.
    org_scope: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        Index("ix_resource_type_updated", "res_type", "last_updated"),
        Index("ix_resource_org_scope", "org_scope"),
    )


class ResourceVersion(Base):
    """Every version ever written; ``seq`` orders all writes of the server."""

    __tablename__ = "resource_version"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    res_type: Mapped[str] = mapped_column(String(64))
    res_id: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(8))
    last_updated: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deleted: Mapped[bool] = mapped_column(Boolean)
    content: Mapped[dict[str, Any] | None] = mapped_column(JSONBody, nullable=True)
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        Index("ux_version_resource", "res_type", "res_id", "version_id", unique=True),
        Index("ix_version_type_seq", "res_type", "seq"),
    )


class TokenIndex(Base):
    """Token search values (``system|code``) of the current version of each resource."""

    __tablename__ = "sp_token"

    row_id: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    res_type: Mapped[str] = mapped_column(String(64))
    res_id: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(64))
    system: Mapped[str | None] = mapped_column(String(255), nullable=True)
    code: Mapped[str] = mapped_column(String(255))

    __table_args__ = (
        Index("ix_sp_token_lookup", "res_type", "param", "code", "system"),
        Index("ix_sp_token_resource", "res_type", "res_id"),
    )


metadata = Base.metadata
