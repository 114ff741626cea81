"""Covering search indexes: ``res_id`` last in every lookup index; token statistics.

A condition is ``res_id IN (SELECT res_id FROM sp_x WHERE res_type, param, value...)``:
with ``res_id`` in the index that list comes from the index alone.  On PostgreSQL,
extended statistics tell the planner that ``param`` and ``code`` are not independent
(it underestimated ``code=8302-2`` eightfold without them; docs/benchmarks.md).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# index name -> (table, columns before res_id, PostgreSQL operator classes)
LOOKUPS: dict[str, tuple[str, tuple[str, ...], dict[str, str]]] = {
    "ix_sp_token_lookup": ("sp_token", ("res_type", "param", "code", "system"), {}),
    "ix_sp_token_text": ("sp_token", ("res_type", "param", "text"), {}),
    "ix_sp_string_lookup": (
        "sp_string",
        ("res_type", "param", "value_norm"),
        {"value_norm": "varchar_pattern_ops"},
    ),
    "ix_sp_reference_lookup": (
        "sp_reference",
        ("res_type", "param", "target_id", "target_type"),
        {},
    ),
    "ix_sp_reference_url": ("sp_reference", ("res_type", "param", "url"), {}),
    "ix_sp_date_lookup": ("sp_date", ("res_type", "param", "low", "high"), {}),
    "ix_sp_date_high": ("sp_date", ("res_type", "param", "high"), {}),
    "ix_sp_number_lookup": ("sp_number", ("res_type", "param", "value"), {}),
    "ix_sp_quantity_lookup": ("sp_quantity", ("res_type", "param", "code", "value"), {}),
    "ix_sp_uri_lookup": ("sp_uri", ("res_type", "param", "uri"), {}),
}


def _recreate(with_res_id: bool) -> None:
    for name, (table, columns, ops) in LOOKUPS.items():
        op.drop_index(name, table_name=table)
        op.create_index(
            name, table, [*columns, *(["res_id"] if with_res_id else [])], postgresql_ops=ops
        )


def upgrade() -> None:
    _recreate(with_res_id=True)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE STATISTICS sp_token_lookup_stats (dependencies, mcv) "
            "ON res_type, param, code, system FROM sp_token"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS sp_token_lookup_stats")
    _recreate(with_res_id=False)
