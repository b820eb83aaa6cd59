"""The durable outbox: one SQLite file (WAL mode) holding every event until it is sent.

A row's life:

    pending ──claim──> sending (leased) ──ok──> sent ──(retention)──> purged
       ^                  │ retryable code / network error: back to pending, later
       └──────────────────┤ terminal code: failed (code kept)
    held (publishing disabled) ──replay──> pending        too_large (never sent)

Several processes may share the file. A relay claims rows inside `BEGIN IMMEDIATE` (SQLite's
write lock), so two claimers never take the same row; a claim is a lease that expires, so a
crashed relay's rows are picked up again. `synchronous=FULL`: a committed row survives a power
cut, not just a killed process; it costs one fsync on the request path.

Each thread gets its own connection (SQLite connections are not shared between threads here),
so readers never wait for the relay.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from batchscribe.events.exceptions import OutboxError, OutboxNotFoundError


class OutboxStatus(StrEnum):
    """The state of one outbox row (the diagram above). Stored as its value in SQLite, shown by
    `GET /events/{interaction_id}` and `batchscribe outbox`."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    HELD = "held"
    FAILED = "failed"
    TOO_LARGE = "too_large"


#: States whose rows still wait to be sent (a lease may be running on `sending` ones).
UNSENT = (OutboxStatus.PENDING, OutboxStatus.SENDING)

_SCHEMA = """
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


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One stored event. `entry` is the PutEvents entry exactly as it will be sent."""

    id: int
    interaction_id: str
    tenant_id: str
    entry: dict[str, Any]
    size_bytes: int
    raw_len: int
    cleaned_len: int
    status: OutboxStatus
    attempts: int
    created_at: float
    updated_at: float
    next_attempt_at: float
    lease_owner: str | None
    lease_expires_at: float | None
    event_id: str | None
    error_code: str | None
    error_message: str | None
    sent_at: float | None

    @classmethod
    def from_sql(cls, row: sqlite3.Row) -> OutboxRow:
        data = dict(row)
        data["entry"] = json.loads(data["entry"])
        data["status"] = OutboxStatus(data["status"])
        return cls(**data)

    def summary(self) -> dict[str, Any]:
        """The row without its entry (no transcript text): safe to print, log or return."""
        return {
            "interaction_id": self.interaction_id,
            "tenant_id": self.tenant_id,
            "status": self.status,
            "attempts": self.attempts,
            "event_id": self.event_id,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "size_bytes": self.size_bytes,
            "raw_len": self.raw_len,
            "cleaned_len": self.cleaned_len,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "next_attempt_at": (
                self.next_attempt_at if self.status == OutboxStatus.PENDING else None
            ),
            "sent_at": self.sent_at,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one claimed row after a PutEvents call."""

    row_id: int
    status: OutboxStatus  # SENT, PENDING (retry later) or FAILED
    event_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    next_attempt_at: float = 0.0


class Outbox:
    """The outbox file at `path`; every method raises `OutboxError` on a database failure."""

    def __init__(
        self, path: Path | str, busy_timeout_seconds: float = 5.0, *, create: bool = True
    ) -> None:
        """Open (with `create`, create if needed) the outbox at `path`.

        Raises `OutboxNotFoundError` when `create` is false and there is no file at `path`.
        """
        self.path = Path(path)
        self._busy_ms = int(busy_timeout_seconds * 1000)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        if not create and not self.path.is_file():
            raise OutboxNotFoundError(f"There is no outbox at {self.path}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._conn()
            with conn:
                conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            self.close()
            raise OutboxError(f"Cannot open the outbox at {self.path}: {exc}") from exc

    # -- connections -------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise OutboxError("The outbox is closed")
        # isolation_level=None: we issue BEGIN ourselves (BEGIN IMMEDIATE for writes).
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection this object opened (from any thread)."""
        self._closed = True
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding SQLite's write lock from its first statement."""
        try:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise OutboxError(f"Cannot write the outbox at {self.path}: {exc}") from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise OutboxError(f"Outbox write failed at {self.path}: {exc}") from exc
            raise

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return list(self._conn().execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise OutboxError(f"Cannot read the outbox at {self.path}: {exc}") from exc

    # -- writing -----------------------------------------------------------------------------

    def insert(
        self,
        *,
        interaction_id: str,
        tenant_id: str,
        entry: dict[str, Any],
        size_bytes: int,
        raw_len: int,
        cleaned_len: int,
        status: OutboxStatus,
        error_code: str | None = None,
        error_message: str | None = None,
        now: float | None = None,
    ) -> None:
        """Store one event with its initial status (pending, held or too_large)."""
        now = time.time() if now is None else now
        with self._write() as conn:
            conn.execute(
                "INSERT INTO outbox (interaction_id, tenant_id, entry, size_bytes, raw_len,"
                " cleaned_len, status, created_at, updated_at, next_attempt_at, error_code,"
                " error_message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    interaction_id,
                    tenant_id,
                    json.dumps(entry, ensure_ascii=False),
                    size_bytes,
                    raw_len,
                    cleaned_len,
                    status,
                    now,
                    now,
                    now,
                    error_code,
                    error_message,
                ),
            )

    def claim(
        self, owner: str, limit: int, lease_seconds: float, now: float | None = None
    ) -> list[OutboxRow]:
        """Lease up to `limit` due rows (pending and due, or leased with an expired lease).

        The UPDATE re-checks the condition inside the same IMMEDIATE transaction, so a row is
        leased by one owner at a time even with several processes claiming.
        """
        now = time.time() if now is None else now
        due = (
            "(status = :pending AND next_attempt_at <= :now)"
            " OR (status = :sending AND lease_expires_at <= :now)"
        )
        params = {
            "now": now,
            "owner": owner,
            "expires": now + lease_seconds,
            "limit": limit,
            "pending": OutboxStatus.PENDING,
            "sending": OutboxStatus.SENDING,
        }
        with self._write() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    f"SELECT id FROM outbox WHERE {due} ORDER BY id LIMIT :limit",  # noqa: S608
                    params,
                )
            ]
            if not ids:
                return []
            id_list = ",".join(str(int(i)) for i in ids)  # integers from our own SELECT
            conn.execute(
                "UPDATE outbox SET status = :sending, lease_owner = :owner,"  # noqa: S608
                " lease_expires_at = :expires, attempts = attempts + 1, updated_at = :now"
                f" WHERE id IN ({id_list}) AND ({due})",
                params,
            )
            rows = conn.execute(
                f"SELECT * FROM outbox WHERE id IN ({id_list}) AND lease_owner = :owner"  # noqa: S608
                " AND status = :sending AND lease_expires_at = :expires ORDER BY id",
                params,
            ).fetchall()
        return [OutboxRow.from_sql(r) for r in rows]

    def apply(self, owner: str, outcomes: Iterable[Outcome], now: float | None = None) -> int:
        """Record the results of one PutEvents call in one transaction.

        `sent` is recorded whoever holds the lease now (the event did go out); retries and
        failures only while `owner` still holds the lease. Returns the rows updated.
        """
        now = time.time() if now is None else now
        changed = 0
        with self._write() as conn:
            for o in outcomes:
                if o.status == OutboxStatus.SENT:
                    cur = conn.execute(
                        "UPDATE outbox SET status = ?, event_id = ?, sent_at = ?,"
                        " updated_at = ?, lease_owner = NULL, lease_expires_at = NULL,"
                        " error_code = NULL, error_message = NULL"
                        " WHERE id = ? AND status IN (?, ?)",
                        (OutboxStatus.SENT, o.event_id, now, now, o.row_id, *UNSENT),
                    )
                else:
                    cur = conn.execute(
                        "UPDATE outbox SET status = ?, error_code = ?, error_message = ?,"
                        " next_attempt_at = ?, updated_at = ?, lease_owner = NULL,"
                        " lease_expires_at = NULL"
                        " WHERE id = ? AND status = ? AND lease_owner = ?",
                        (
                            o.status,
                            o.error_code,
                            o.error_message,
                            o.next_attempt_at,
                            now,
                            o.row_id,
                            OutboxStatus.SENDING,
                            owner,
                        ),
                    )
                changed += cur.rowcount
        return changed

    def release(self, owner: str, now: float | None = None) -> int:
        """Give back every lease `owner` holds (rows become pending and due at once)."""
        now = time.time() if now is None else now
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE outbox SET status = ?, lease_owner = NULL, lease_expires_at = NULL,"
                " next_attempt_at = ?, updated_at = ? WHERE status = ? AND lease_owner = ?",
                (OutboxStatus.PENDING, now, now, OutboxStatus.SENDING, owner),
            )
            return cur.rowcount

    def requeue(self, statuses: Sequence[OutboxStatus], now: float | None = None) -> list[str]:
        """Move rows in `statuses` (held, failed) back to pending; return their interaction ids."""
        if not set(statuses) <= {OutboxStatus.HELD, OutboxStatus.FAILED}:
            raise ValueError("only held and failed rows can be requeued")
        now = time.time() if now is None else now
        marks = ",".join("?" * len(statuses))
        with self._write() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    f"SELECT interaction_id FROM outbox WHERE status IN ({marks})",  # noqa: S608
                    list(statuses),
                )
            ]
            conn.execute(
                f"UPDATE outbox SET status = ?, next_attempt_at = ?, updated_at = ?,"  # noqa: S608
                f" attempts = 0 WHERE status IN ({marks})",
                [OutboxStatus.PENDING, now, now, *statuses],
            )
        return ids

    def purge_sent(self, older_than_seconds: float, now: float | None = None) -> int:
        """Delete sent rows whose `sent_at` is older than the retention (transcripts are PII)."""
        now = time.time() if now is None else now
        with self._write() as conn:
            cur = conn.execute(
                "DELETE FROM outbox WHERE status = ? AND sent_at < ?",
                (OutboxStatus.SENT, now - older_than_seconds),
            )
            return cur.rowcount

    def check_writable(self) -> None:
        """Raise `OutboxError` unless the write lock can be taken now (for /readyz)."""
        with self._write():
            pass

    # -- reading -----------------------------------------------------------------------------

    def _rows(self, rows: Iterable[sqlite3.Row]) -> list[OutboxRow]:
        try:
            return [OutboxRow.from_sql(r) for r in rows]
        except (KeyError, TypeError, ValueError) as exc:  # a file from another version or tool
            raise OutboxError(f"The outbox at {self.path} holds rows of another layout") from exc

    def get(self, interaction_id: str) -> OutboxRow | None:
        rows = self._read("SELECT * FROM outbox WHERE interaction_id = ?", (interaction_id,))
        return self._rows(rows[:1])[0] if rows else None

    def list(self, status: OutboxStatus | None = None, limit: int = 50) -> list[OutboxRow]:
        """Most recent rows first, optionally of one status."""
        if status is None:
            rows = self._read("SELECT * FROM outbox ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self._read(
                "SELECT * FROM outbox WHERE status = ? ORDER BY id DESC LIMIT ?", (status, limit)
            )
        return self._rows(rows)

    def statuses_of(self, interaction_ids: Sequence[str]) -> dict[str, OutboxStatus]:
        """interaction_id -> status, for the ids that exist."""
        result: dict[str, OutboxStatus] = {}
        for start in range(0, len(interaction_ids), 500):
            chunk = list(interaction_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for r in self._read(
                f"SELECT interaction_id, status FROM outbox WHERE interaction_id IN ({marks})",  # noqa: S608
                chunk,
            ):
                result[r[0]] = OutboxStatus(r[1])
        return result

    def counts(self) -> dict[OutboxStatus, int]:
        """Number of rows per status (every status present, zero when none)."""
        counts = dict.fromkeys(OutboxStatus, 0)
        for r in self._read("SELECT status, COUNT(*) FROM outbox GROUP BY status"):
            counts[OutboxStatus(r[0])] = int(r[1])
        return counts

    def oldest_unsent_created_at(self) -> float | None:
        """Creation time of the oldest row still waiting to be sent (pending or sending)."""
        rows = self._read("SELECT MIN(created_at) FROM outbox WHERE status IN (?, ?)", UNSENT)
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def next_due_at(self) -> float | None:
        """The earliest time a row becomes claimable (a retry or an expiring lease)."""
        rows = self._read(
            "SELECT MIN(t) FROM ("
            " SELECT MIN(next_attempt_at) AS t FROM outbox WHERE status = ?"
            " UNION ALL"
            " SELECT MIN(lease_expires_at) FROM outbox WHERE status = ?)",
            UNSENT,
        )
        return float(rows[0][0]) if rows and rows[0][0] is not None else None
