"""Database: SQLAlchemy 2 models, engine, Alembic migrations and the idempotency store."""

from pyros_common.db.engine import Database, DatabaseNotMigrated, DatabaseUnreachable

__all__ = ["Database", "DatabaseNotMigrated", "DatabaseUnreachable"]
