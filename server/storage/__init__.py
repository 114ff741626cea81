"""Storage: SQLAlchemy tables and queries. Knows nothing of HTTP."""
