"""State of SearchParameters stored on the server (for ``ilp reindex``).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_param_state",
        sa.Column("res_id", sa.String(64), primary_key=True),
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cursor_type", sa.String(64), nullable=True),
        sa.Column("cursor_id", sa.String(64), nullable=True),
        sa.Column("done", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("search_param_state")
