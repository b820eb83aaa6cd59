"""Errors of the application database.

    DatabaseError
    ├── DatabaseUnavailableError   cannot read or write now (down, restarting, locked, disk
    │                              full, read-only, corrupt): retry later; HTTP 503
    └── SchemaOutOfDateError       the schema is older than this code: run `batchscribe migrate`

Messages name the failing component and what to do; never a password or a row's content.
"""

from __future__ import annotations


class DatabaseError(Exception):
    """Base class of the application database's errors."""


class DatabaseUnavailableError(DatabaseError):
    """The database cannot take this read or write now; the same call may succeed later."""


class SchemaOutOfDateError(DatabaseError):
    """The database schema is behind this version of batchscribe."""
