"""OAuth2 clients of this server and used client assertions (``ilp clients``, docs/security.md).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_client",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("secret_hash", sa.String(255), nullable=False),
        sa.Column("scopes", sa.String(2000), nullable=False),
        sa.Column("organization", sa.String(64), nullable=True),
        sa.Column("region", sa.String(16), nullable=True),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("jwks", sa.Text, nullable=True),
    )
    op.create_table(
        "client_assertion",
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_client_assertion_expires_at", "client_assertion", ["expires_at"])


def downgrade() -> None:
    op.drop_table("client_assertion")
    op.drop_table("api_client")
