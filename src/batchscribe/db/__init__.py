"""The application database (SPEC 14): engine, tables, migrations.

SQLite by default (`sqlite:///var/batchscribe.db`, one machine), PostgreSQL for several machines
(`postgresql+psycopg://...`). Nothing above this package writes SQL dialect by dialect.
"""

from batchscribe.db.engine import Database, describe_url, normalise_url
from batchscribe.db.exceptions import (
    DatabaseError,
    DatabaseUnavailableError,
    SchemaOutOfDateError,
)

__all__ = [
    "Database",
    "DatabaseError",
    "DatabaseUnavailableError",
    "SchemaOutOfDateError",
    "describe_url",
    "normalise_url",
]
