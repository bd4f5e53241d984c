"""Alembic migrations for monitor's schema, shipped inside the package and run by monitor.db.migrate."""
