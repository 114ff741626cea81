"""Typed search index tables (token, string, reference, date, number, quantity, uri).

The token table of 0001 is replaced: rows gain a composite group and display text.
Index rows are derived data; no database of revision 0001 was ever released, so
this revision does not rebuild them for resources stored before it.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_S = sa.String(255)


def _table(name: str, *columns: sa.Column[Any], lookup: tuple[str, ...], **lookup_kw: Any) -> None:
    op.create_table(
        name,
        sa.Column("row_id", SeqType, primary_key=True, autoincrement=True),
        sa.Column("res_type", sa.String(64), nullable=False),
        sa.Column("res_id", sa.String(64), nullable=False),
        sa.Column("param", sa.String(128), nullable=False),
        sa.Column("grp", sa.SmallInteger, nullable=False),
        *columns,
    )
    op.create_index(f"ix_{name}_lookup", name, ["res_type", "param", *lookup], **lookup_kw)
    op.create_index(f"ix_{name}_resource", name, ["res_type", "res_id"])


def upgrade() -> None:
    op.drop_table("sp_token")
    _table(
        "sp_token",
        sa.Column("system", _S, nullable=True),
        sa.Column("code", _S, nullable=True),
        sa.Column("text", _S, nullable=True),
        lookup=("code", "system"),
    )
    op.create_index("ix_sp_token_text", "sp_token", ["res_type", "param", "text"])
    _table(
        "sp_string",
        sa.Column("value_norm", _S, nullable=False),
        sa.Column("value_exact", _S, nullable=False),
        lookup=("value_norm",),
        postgresql_ops={"value_norm": "varchar_pattern_ops"},
    )
    _table(
        "sp_reference",
        sa.Column("target_type", sa.String(64), nullable=True),
        sa.Column("target_id", sa.String(64), nullable=True),
        sa.Column("url", _S, nullable=True),
        lookup=("target_id", "target_type"),
    )
    op.create_index("ix_sp_reference_target", "sp_reference", ["target_type", "target_id"])
    op.create_index("ix_sp_reference_url", "sp_reference", ["res_type", "param", "url"])
    _table(
        "sp_date",
        sa.Column("low", sa.DateTime, nullable=False),
        sa.Column("high", sa.DateTime, nullable=False),
        lookup=("low", "high"),
    )
    op.create_index("ix_sp_date_high", "sp_date", ["res_type", "param", "high"])
    _table("sp_number", sa.Column("value", sa.Float, nullable=False), lookup=("value",))
    _table(
        "sp_quantity",
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("system", _S, nullable=True),
        sa.Column("code", _S, nullable=True),
        sa.Column("unit", _S, nullable=True),
        lookup=("code", "value"),
    )
    _table("sp_uri", sa.Column("uri", _S, nullable=False), lookup=("uri",))


def downgrade() -> None:
    for name in ("sp_uri", "sp_quantity", "sp_number", "sp_date", "sp_reference", "sp_string"):
        op.drop_table(name)
    op.drop_table("sp_token")
    op.create_table(
        "sp_token",
        sa.Column("row_id", SeqType, primary_key=True, autoincrement=True),
        sa.Column("res_type", sa.String(64), nullable=False),
        sa.Column("res_id", sa.String(64), nullable=False),
        sa.Column("param", sa.String(64), nullable=False),
        sa.Column("system", _S, nullable=True),
        sa.Column("code", _S, nullable=False),
    )
    op.create_index("ix_sp_token_lookup", "sp_token", ["res_type", "param", "code", "system"])
    op.create_index("ix_sp_token_resource", "sp_token", ["res_type", "res_id"])
