"""Stale indicator months per desa: a write marks its desa, a page recounts only that desa.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ind_change") as batch:
        batch.add_column(sa.Column("village", sa.String(16), nullable=True))
    op.create_index("ix_ind_person_village", "ind_person", ["village"])


def downgrade() -> None:
    op.drop_index("ix_ind_person_village", table_name="ind_person")
    with op.batch_alter_table("ind_change") as batch:
        batch.drop_column("village")
