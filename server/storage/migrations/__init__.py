"""Alembic migrations, run identically on SQLite and PostgreSQL."""
