"""Schema migrations (Alembic, shipped inside the package) and the one-time outbox import.

`batchscribe migrate` and `AUTO_MIGRATE=true` call `upgrade`. A process that does not migrate
checks the schema with `require_current` at startup and stops with a clear message when the
database is behind (it never runs against a schema it does not know).

Upgrading from the SQLite outbox of earlier versions:
- with `OUTBOX_PATH` set and no `DATABASE_URL`, that file *is* the application database and the
  first migration adopts its `outbox` table in place (the rows stay where they are);
- otherwise, an outbox file found at `OUTBOX_PATH` (or the old default `var/outbox.db`) is
  imported into the application database once, then renamed `*.imported` so it is never read
  again. Rows already present (same interaction id) are skipped, so an interrupted import can
  simply run again.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from batchscribe.db.engine import Database
from batchscribe.db.exceptions import SchemaOutOfDateError
from batchscribe.db.tables import outbox

logger = logging.getLogger(__name__)

SCRIPT_LOCATION = "batchscribe.db:migrations"
LEGACY_OUTBOX_DEFAULT = Path("var/outbox.db")
_LEGACY_COLUMNS = (
    "interaction_id",
    "tenant_id",
    "entry",
    "size_bytes",
    "raw_len",
    "cleaned_len",
    "status",
    "attempts",
    "created_at",
    "updated_at",
    "next_attempt_at",
    "event_id",
    "error_code",
    "error_message",
    "sent_at",
)


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def head_revision() -> str:
    """The newest migration this code ships."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError("no migrations found in the package")
    return head


def current_revision(db: Database) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with db.read() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database) -> tuple[str | None, str]:
    """Apply every pending migration; (revision before, revision after). Raises
    `DatabaseUnavailableError` when the database cannot be reached."""
    before = current_revision(db)
    config = _config()
    with db.transaction() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    after = current_revision(db)
    if before != after:
        logger.info("database migrated", extra={"from_revision": before, "to_revision": after})
    return before, str(after)


def require_current(db: Database) -> None:
    """Raise `SchemaOutOfDateError` unless the database is at this code's head revision."""
    current, head = current_revision(db), head_revision()
    if current != head:
        raise SchemaOutOfDateError(
            f"the database schema is at revision {current or 'none'} but this version needs "
            f"{head}; run `batchscribe migrate` (or start with AUTO_MIGRATE=true)"
        )


def import_legacy_outbox(db: Database, path: Path) -> int:
    """Copy the rows of an earlier version's outbox file into the database; rename the file.

    Returns the number of rows imported. Rows being sent when the old process stopped
    (`sending`) come back as `pending`: their lease died with it.
    """
    if not path.is_file():
        return 0
    target = db.sqlite_path
    if target is not None and target.resolve() == path.resolve():
        return 0  # the same file: the migration adopted it in place
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in source.execute("SELECT name FROM sqlite_master")}
        if "outbox" not in tables or "alembic_version" in tables:
            return 0
        rows = source.execute(
            f"SELECT {', '.join(_LEGACY_COLUMNS)} FROM outbox ORDER BY id"  # noqa: S608 - fixed
        ).fetchall()
    finally:
        source.close()
    imported = 0
    with db.transaction() as conn:
        present = set(conn.scalars(sa.select(outbox.c.interaction_id)))
        for row in rows:
            values = dict(zip(_LEGACY_COLUMNS, row, strict=True))
            if values["interaction_id"] in present:
                continue
            if values["status"] == "sending":
                values["status"] = "pending"
            conn.execute(sa.insert(outbox).values(**values))
            imported += 1
    done = path.with_name(path.name + ".imported")
    path.rename(done)
    for suffix in ("-wal", "-shm"):
        leftover = path.with_name(path.name + suffix)
        if leftover.exists():
            leftover.rename(done.with_name(done.name + suffix))
    logger.warning(
        "imported %d events from the earlier outbox file %s (renamed to %s)",
        imported,
        path,
        done.name,
    )
    return imported
