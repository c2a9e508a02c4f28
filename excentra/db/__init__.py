"""Persistence: one facade over ``databases`` (SQLite by default, PostgreSQL in production),
exact value conversion, and the migration runner.

The rest of excentra imports from here only; nothing else imports ``databases``.
"""

from excentra.db.database import (
    Database,
    DatabaseError,
    DatabaseUnavailable,
    IntegrityError,
    InvalidDataError,
    ProjectionBehind,
    Row,
)
from excentra.db.migration_files import MigrationError, default_migrations_dir
from excentra.db.migration_runner import MIGRATION_LOCK_KEY, migrate
from excentra.db.url import DEFAULT_URL, Dialect, resolve_url
from excentra.db.values import (
    ColumnType,
    as_bool,
    as_datetime,
    as_decimal,
    as_uuid,
    decode_row,
    format_timestamp,
    from_db,
    to_db,
)

__all__ = [
    "DEFAULT_URL",
    "MIGRATION_LOCK_KEY",
    "ColumnType",
    "Database",
    "DatabaseError",
    "DatabaseUnavailable",
    "Dialect",
    "IntegrityError",
    "InvalidDataError",
    "MigrationError",
    "ProjectionBehind",
    "Row",
    "as_bool",
    "as_datetime",
    "as_decimal",
    "as_uuid",
    "decode_row",
    "default_migrations_dir",
    "format_timestamp",
    "from_db",
    "migrate",
    "resolve_url",
    "to_db",
]
