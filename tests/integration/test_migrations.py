"""Migrations build exactly the schema the code declares, on both databases, and an outbox file
of an earlier version carries its events over."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from batchscribe.db import Database, SchemaOutOfDateError
from batchscribe.db.migrate import (
    current_revision,
    head_revision,
    import_legacy_outbox,
    require_current,
    upgrade,
)
from batchscribe.db.tables import metadata, outbox

# The outbox schema shipped before the application database existed, verbatim.
LEGACY_OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    interaction_id   TEXT NOT NULL UNIQUE,
    tenant_id        TEXT NOT NULL,
    entry            TEXT NOT NULL,
    size_bytes       INTEGER NOT NULL,
    raw_len          INTEGER NOT NULL,
    cleaned_len      INTEGER NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    next_attempt_at  REAL NOT NULL,
    lease_owner      TEXT,
    lease_expires_at REAL,
    event_id         TEXT,
    error_code       TEXT,
    error_message    TEXT,
    sent_at          REAL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS outbox_lease ON outbox (status, lease_expires_at);
CREATE INDEX IF NOT EXISTS outbox_sent ON outbox (status, sent_at);
"""


def legacy_outbox(path: Path, statuses: list[str]) -> list[str]:
    """An outbox file as earlier versions wrote it, one row per status; the interaction ids."""
    conn = sqlite3.connect(path)
    conn.executescript(LEGACY_OUTBOX_SCHEMA)
    ids = []
    now = time.time()
    for number, status in enumerate(statuses):
        iid = f"00000000-0000-4000-8000-{number:012d}"
        ids.append(iid)
        conn.execute(
            "INSERT INTO outbox (interaction_id, tenant_id, entry, size_bytes, raw_len, "
            "cleaned_len, status, created_at, updated_at, next_attempt_at, lease_owner) "
            "VALUES (?, ?, ?, 100, 10, 9, ?, ?, ?, ?, ?)",
            (iid, "t", json.dumps({"Detail": "{}"}), status, now, now, now,
             "old-relay" if status == "sending" else None),
        )  # fmt: skip
    conn.commit()
    conn.close()
    return ids


def _sqlite_spelling(diff: list[tuple[object, ...]]) -> bool:
    (change,) = diff
    kind, _, table, column = change[:4]
    if kind == "modify_type":
        return type(change[-2]).__name__ == "REAL" and type(change[-1]).__name__ == "Double"
    return kind == "modify_nullable" and (table, column) == ("outbox", "id")


def test_migrated_schema_is_what_the_code_declares(database: Database) -> None:
    with pytest.raises(SchemaOutOfDateError, match="batchscribe migrate"):
        require_current(database)
    upgrade(database)
    assert current_revision(database) == head_revision()
    require_current(database)
    with database.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
    assert upgrade(database)[0] == head_revision()  # a second run changes nothing
    database.check_writable()


def test_an_outbox_file_named_by_outbox_path_is_adopted_in_place(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    ids = legacy_outbox(path, ["pending", "held", "sent"])
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    with db.read() as conn:
        rows = conn.execute(
            sa.select(outbox.c.interaction_id, outbox.c.status, outbox.c.detail_type)
        ).all()
    assert [(r.interaction_id, r.status) for r in rows] == list(
        zip(ids, ["pending", "held", "sent"], strict=True)
    )
    assert {r.detail_type for r in rows} == {"BatchProcessingCompleted"}
    with db.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    # The adopted table spells its float columns REAL (DOUBLE in new tables) and its rowid key
    # without NOT NULL: the same storage and behaviour in SQLite. Nothing else may differ.
    assert [d for d in differences if not _sqlite_spelling(d)] == []
    assert import_legacy_outbox(db, path) == 0  # the same file: nothing to import


def test_an_old_outbox_file_beside_a_new_database_is_imported_once(
    database: Database, tmp_path: Path
) -> None:
    path = tmp_path / "outbox.db"
    ids = legacy_outbox(path, ["pending", "sending", "failed"])
    upgrade(database)
    assert import_legacy_outbox(database, path) == 3
    assert not path.exists()
    assert (tmp_path / "outbox.db.imported").exists()
    with database.read() as conn:
        rows = dict(conn.execute(sa.select(outbox.c.interaction_id, outbox.c.status)).all())
    # The row that was being sent when the old process stopped is pending again.
    assert rows == dict(zip(ids, ["pending", "pending", "failed"], strict=True))
    assert import_legacy_outbox(database, path) == 0
