"""The PWS indicators: facts kept with each write and per-month sums (docs/indicators.md).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# As in 0001: migrations keep their own copies, not the live schema's.
SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ind_person",
        sa.Column("patient_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("sex", sa.String(16), nullable=True),
        sa.Column("birth_date", sa.String(10), nullable=True),
        sa.Column("village", sa.String(16), nullable=False),
        sa.Column("posyandu", sa.String(64), nullable=True),
        sa.Column("posyandu_day", sa.String(10), nullable=True),
    )
    op.create_table(
        "ind_event",
        sa.Column("res_type", sa.String(64), primary_key=True),
        sa.Column("res_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("value2", sa.Float, nullable=True),
        sa.Column("facility", sa.String(64), nullable=True),
    )
    op.create_index("ix_ind_event_month_kind", "ind_event", ["month", "kind"])
    op.create_index("ix_ind_event_patient_day", "ind_event", ["patient_id", "day"])
    op.create_table(
        "ind_facility",
        sa.Column("org_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=True),
        sa.Column("village", sa.String(16), nullable=True),
        sa.Column("parent", sa.String(64), nullable=True),
        sa.Column("location", sa.String(64), nullable=True),
    )
    op.create_table(
        "ind_area",
        sa.Column("code", sa.String(16), primary_key=True),
        sa.Column("location", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
    )
    op.create_table(
        "ind_summary",
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("village", sa.String(16), primary_key=True),
        sa.Column("posyandu", sa.String(64), primary_key=True),
        sa.Column("indicator", sa.String(32), primary_key=True),
        sa.Column("numerator", sa.Integer, nullable=False),
        sa.Column("denominator", sa.Integer, nullable=True),
    )
    op.create_table(
        "ind_month",
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "ind_change",
        sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
        sa.Column("month", sa.String(7), nullable=False),
    )
    op.create_index("ix_ind_change_month", "ind_change", ["month"])


def downgrade() -> None:
    for table in (
        "ind_change",
        "ind_month",
        "ind_summary",
        "ind_area",
        "ind_facility",
        "ind_event",
        "ind_person",
    ):
        op.drop_table(table)
