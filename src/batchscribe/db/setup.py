"""Opening the application database the way every entry point needs it.

`open_database(settings)` connects (creating a SQLite file's directory when the service starts;
tools that only read use `must_exist=True` and never create an empty database somewhere by
accident). `prepare_database(db, settings)` brings the schema up to date when AUTO_MIGRATE is
on (the default with SQLite), otherwise checks it, and imports an outbox file of an earlier
version once (see `batchscribe.db.migrate`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from batchscribe.config import Settings
from batchscribe.db.engine import Database, normalise_url
from batchscribe.db.exceptions import DatabaseError
from batchscribe.db.migrate import (
    LEGACY_OUTBOX_DEFAULT,
    import_legacy_outbox,
    require_current,
    upgrade,
)

logger = logging.getLogger(__name__)


class DatabaseNotFoundError(DatabaseError):
    """A tool asked for an existing SQLite database and there is none at the path."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"no database at {path}; run this where the service runs, or set DATABASE_URL "
            "(or OUTBOX_PATH for an earlier version's outbox file) to the service's database"
        )
        self.path = path


def open_database(settings: Settings, *, must_exist: bool = False) -> Database:
    """The application database of `settings` (`DATABASE_URL`, else the default SQLite file).

    With `must_exist`, a SQLite file that is not there raises `DatabaseNotFoundError` instead
    of being created empty.
    """
    url = normalise_url(settings.database)
    if (
        must_exist
        and url.get_backend_name() == "sqlite"
        and url.database not in (None, "", ":memory:")
    ):
        path = Path(str(url.database))
        if not path.is_file():
            raise DatabaseNotFoundError(path)
    return Database(settings.database)


def legacy_outbox_path(settings: Settings) -> Path | None:
    """The outbox file of an earlier version to import, if any (see `batchscribe.db.migrate`)."""
    explicit_outbox = "outbox_path" in settings.model_fields_set
    if settings.database_url and explicit_outbox:
        return settings.outbox_path
    if not settings.database_url and not explicit_outbox:
        return LEGACY_OUTBOX_DEFAULT
    return None  # OUTBOX_PATH alone: that file is the database, adopted in place


def prepare_database(db: Database, settings: Settings) -> None:
    """Migrate (AUTO_MIGRATE) or check the schema; import an earlier outbox file once."""
    if settings.migrate_at_startup:
        upgrade(db)
    else:
        require_current(db)
    legacy = legacy_outbox_path(settings)
    if legacy is not None and legacy.is_file():
        import_legacy_outbox(db, legacy)


def open_for_tool(settings: Settings, *, create: bool = False) -> Database:
    """The service's database for a command-line tool. With `create` it is prepared as the
    service would prepare it (migrated with AUTO_MIGRATE, the SQLite default), so keys and
    secrets can be made before the first start; otherwise it must exist and be current. Raises
    `DatabaseError` saying what is wrong (nothing is created by a tool that only reads)."""
    db = open_database(settings, must_exist=not create)
    try:
        if create:
            prepare_database(db, settings)
        else:
            require_current(db)
    except DatabaseError:
        db.dispose()
        raise
    return db
