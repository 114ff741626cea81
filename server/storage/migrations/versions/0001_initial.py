"""Resources, versions and token index.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSONBody = sa.JSON().with_variant(JSONB(), "postgresql")
SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "resource",
        sa.Column("res_type", sa.String(64), primary_key=True),
        sa.Column("res_id", sa.String(64), primary_key=True),
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("content", JSONBody, nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("org_scope", sa.String(64), nullable=True),
    )
    op.create_index("ix_resource_type_updated", "resource", ["res_type", "last_updated"])
    op.create_index("ix_resource_org_scope", "resource", ["org_scope"])
    op.create_table(
        "resource_version",
        sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
        sa.Column("res_type", sa.String(64), nullable=False),
        sa.Column("res_id", sa.String(64), nullable=False),
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("content", JSONBody, nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=True),
    )
    op.create_index(
        "ux_version_resource", "resource_version", ["res_type", "res_id", "version_id"], unique=True
    )
    op.create_index("ix_version_type_seq", "resource_version", ["res_type", "seq"])
    op.create_table(
        "sp_token",
        sa.Column("row_id", SeqType, primary_key=True, autoincrement=True),
        sa.Column("res_type", sa.String(64), nullable=False),
        sa.Column("res_id", sa.String(64), nullable=False),
        sa.Column("param", sa.String(64), nullable=False),
        sa.Column("system", sa.String(255), nullable=True),
        sa.Column("code", sa.String(255), nullable=False),
    )
    op.create_index("ix_sp_token_lookup", "sp_token", ["res_type", "param", "code", "system"])
    op.create_index("ix_sp_token_resource", "sp_token", ["res_type", "res_id"])


def downgrade() -> None:
    op.drop_table("sp_token")
    op.drop_table("resource_version")
    op.drop_table("resource")
