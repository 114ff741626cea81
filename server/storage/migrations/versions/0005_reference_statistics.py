"""Reference statistics on PostgreSQL: the lookup columns together, and frequent targets.

Every chain, ``_has`` and reference condition reads ``sp_reference`` by ``res_type, param,
target_type, target_id``.  Taken as independent columns, ``Patient.organization`` pointing to
an Organization was estimated at 5 rows against 5,140, and one Puskesmas at 2 patients against
2,720 (1 million Observations): the planner then started from them and probed thousands of
rows (docs/benchmarks.md).  A Puskesmas or a Posyandu is a frequent target among millions of
patient ids, so the samples need the larger statistics target to find them.  SQLite has no
such statistics: nothing to do there.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TARGET = 1000  # rows sampled: 300 times this (the default is 100)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE STATISTICS sp_reference_lookup_stats (dependencies, mcv) "
            "ON res_type, param, target_type, target_id FROM sp_reference"
        )
        op.execute(f"ALTER STATISTICS sp_reference_lookup_stats SET STATISTICS {TARGET}")
        op.execute(f"ALTER TABLE sp_reference ALTER COLUMN target_id SET STATISTICS {TARGET}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE sp_reference ALTER COLUMN target_id SET STATISTICS -1")
        op.execute("DROP STATISTICS sp_reference_lookup_stats")
