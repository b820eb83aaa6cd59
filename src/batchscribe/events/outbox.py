"""The durable outbox: the `outbox` table of the application database, holding every event
until EventBridge has it.

A row's life:

    pending ──claim──> sending (leased) ──ok──> sent ──(retention)──> purged
       ^                  │ retryable code / network error: back to pending, later
       └──────────────────┤ terminal code: failed (code kept) ──(retention)──> purged
    held (publishing disabled) ──replay──> pending        too_large (never sent, no transcripts)

Rows are written in the transaction that finishes their job (`OutboxJobEvents`), so a job is
never completed without its event nor its event sent for a job that did not complete. Several
processes may relay from one database: a relay claims rows with a lease inside one write
transaction (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: `BEGIN IMMEDIATE`), so two relays
never send a row at the same time, and a crashed relay's leases expire.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from batchscribe.db.batches import count_by_status, due_or_abandoned, lease_due_rows
from batchscribe.db.engine import Database
from batchscribe.db.exceptions import DatabaseError
from batchscribe.db.listen import notify
from batchscribe.db.tables import outbox
from batchscribe.events import metrics
from batchscribe.events.entry import (
    EventEntry,
    build_completed_entry,
    build_completed_ref_entry,
    build_failed_entry,
)
from batchscribe.events.exceptions import EventValidationError, OutboxError
from batchscribe.events.schema import DataRef
from batchscribe.identity import RequestContext
from batchscribe.signals import Topic

logger = logging.getLogger(__name__)


class OutboxStatus(StrEnum):
    """The state of one outbox row (the diagram above), as stored and as shown by
    `GET /events/{interaction_id}` and `batchscribe outbox`."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    HELD = "held"
    FAILED = "failed"
    TOO_LARGE = "too_large"


#: States whose rows still wait to be sent (a lease may be running on `sending` ones).
UNSENT = (OutboxStatus.PENDING, OutboxStatus.SENDING)
#: States whose rows are kept only for the retention period (they hold transcripts).
RETAINED = (OutboxStatus.SENT, OutboxStatus.HELD, OutboxStatus.FAILED, OutboxStatus.TOO_LARGE)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One stored event. `entry` is the PutEvents entry exactly as it will be sent."""

    id: int
    interaction_id: str
    tenant_id: str
    detail_type: str
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
    def from_row(cls, row: Any) -> OutboxRow:
        data = dict(row._mapping)
        data["entry"] = json.loads(data["entry"])
        data["status"] = OutboxStatus(data["status"])
        return cls(**data)

    def summary(self) -> dict[str, Any]:
        """Everything but the transcripts: what the CLI and logs may show."""
        return {
            "interaction_id": self.interaction_id,
            "tenant_id": self.tenant_id,
            "detail_type": self.detail_type,
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


# What `Outbox.apply` runs per row. `sent` is recorded whoever holds the lease now (the event did
# go out); a retry or a failure only while the row is still leased to the caller.
_RECORD_SENT = (
    sa.update(outbox)
    # (`in_` would be expanded per call, which executemany cannot take.)
    .where(
        outbox.c.id == sa.bindparam("row_id"),
        sa.or_(*(outbox.c.status == status for status in UNSENT)),
    )
    .values(
        status=OutboxStatus.SENT,
        event_id=sa.bindparam("new_event_id"),
        lease_owner=None,
        lease_expires_at=None,
        error_code=None,
        error_message=None,
    )
)
_RECORD_UNSENT = (
    sa.update(outbox)
    .where(outbox.c.id == sa.bindparam("row_id"), outbox.c.status == OutboxStatus.SENDING)
    .values(
        status=sa.bindparam("new_status"),
        error_code=sa.bindparam("new_error_code"),
        error_message=sa.bindparam("new_error_message"),
        next_attempt_at=sa.bindparam("new_next_attempt_at"),
        lease_owner=None,
        lease_expires_at=None,
    )
)


def _stub(entry: EventEntry) -> dict[str, Any]:
    """What a `too_large` row keeps: the envelope without the detail (it is never sent, so the
    transcripts would only be personal data kept for nothing)."""
    return {key: value for key, value in entry.entry.items() if key != "Detail"}


def insert_event(
    conn: Connection,
    entry: EventEntry,
    *,
    status: OutboxStatus,
    raw_len: int = 0,
    cleaned_len: int = 0,
    error_code: str | None = None,
) -> None:
    """Store one event inside the caller's transaction (the one that finishes its job)."""
    now = time.time()
    stored = _stub(entry) if status == OutboxStatus.TOO_LARGE else entry.entry
    conn.execute(
        sa.insert(outbox).values(
            interaction_id=entry.interaction_id,
            tenant_id=entry.tenant_id,
            detail_type=entry.detail_type,
            entry=json.dumps(stored, ensure_ascii=False),
            size_bytes=entry.size_bytes,
            raw_len=raw_len,
            cleaned_len=cleaned_len,
            status=status,
            attempts=0,
            created_at=now,
            updated_at=now,
            next_attempt_at=now,
            error_code=error_code,
        )
    )
    if status == OutboxStatus.PENDING:
        notify(conn, Topic.OUTBOX_WRITTEN)


class Outbox:
    """The outbox table; every method raises `OutboxError` when the database fails."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writing -------------------------------------------------------------------------------

    def insert_in(self, conn: Connection, entry: EventEntry, **kwargs: Any) -> None:
        """Store one event inside the caller's transaction (see `insert_event`)."""
        insert_event(conn, entry, **kwargs)

    def insert(self, entry: EventEntry, *, status: OutboxStatus, **kwargs: Any) -> None:
        """Store one event in its own transaction."""
        with self._write() as conn:
            self.insert_in(conn, entry, status=status, **kwargs)

    def _write(self) -> AbstractContextManager[Connection]:
        return _translated(self.db.transaction)

    def _read(self) -> AbstractContextManager[Connection]:
        return _translated(self.db.read)

    def claim(self, owner: str, limit: int, lease_seconds: float) -> list[OutboxRow]:
        """Lease up to `limit` due rows (pending and due, or sending with an expired lease)."""
        now = time.time()
        due = due_or_abandoned(
            outbox, pending=OutboxStatus.PENDING, sending=OutboxStatus.SENDING, now=now
        )
        with self._write() as conn:
            rows = lease_due_rows(
                conn,
                outbox,
                due=due,
                order_by=[outbox.c.id],
                limit=limit,
                values={
                    "status": OutboxStatus.SENDING,
                    "lease_owner": owner,
                    "lease_expires_at": now + lease_seconds,
                    "attempts": outbox.c.attempts + 1,
                    "updated_at": now,
                },
                skip_locked=not self.db.is_sqlite,
            )
        return sorted((OutboxRow.from_row(row) for row in rows), key=lambda row: row.id)

    def apply(self, owner: str, outcomes: Iterable[Outcome]) -> int:
        """Record the results of one PutEvents call in one transaction.

        `sent` is recorded whoever holds the lease now (the event did go out); retries and
        failures only while `owner` still holds the lease. Returns the rows updated.
        """
        now = time.time()
        sent = [
            {"row_id": o.row_id, "new_event_id": o.event_id}
            for o in outcomes
            if o.status == OutboxStatus.SENT
        ]
        unsent = [
            {
                "row_id": o.row_id,
                "new_status": o.status,
                "new_error_code": o.error_code,
                "new_error_message": o.error_message,
                "new_next_attempt_at": o.next_attempt_at,
            }
            for o in outcomes
            if o.status != OutboxStatus.SENT
        ]
        changed = 0
        with self._write() as conn:
            # One statement each, run for every row (executemany): a batch costs two round
            # trips at most, whatever its size.
            if sent:
                changed += conn.execute(
                    _RECORD_SENT.values(sent_at=now, updated_at=now), sent
                ).rowcount
            if unsent:
                changed += conn.execute(
                    _RECORD_UNSENT.values(updated_at=now).where(outbox.c.lease_owner == owner),
                    unsent,
                ).rowcount
        return changed

    def release(self, owner: str) -> int:
        """Give back every lease `owner` holds (rows become pending and due at once)."""
        now = time.time()
        with self._write() as conn:
            return int(
                conn.execute(
                    sa.update(outbox)
                    .where(outbox.c.status == OutboxStatus.SENDING, outbox.c.lease_owner == owner)
                    .values(
                        status=OutboxStatus.PENDING,
                        lease_owner=None,
                        lease_expires_at=None,
                        next_attempt_at=now,
                        updated_at=now,
                    )
                ).rowcount
            )

    def hold_pending(self) -> list[str]:
        """Mark every pending row `held` (publishing is disabled); their interaction ids."""
        now = time.time()
        with self._write() as conn:
            ids = list(
                conn.scalars(
                    sa.update(outbox)
                    .where(outbox.c.status == OutboxStatus.PENDING)
                    .values(status=OutboxStatus.HELD, updated_at=now)
                    .returning(outbox.c.interaction_id)
                )
            )
        return ids

    def requeue(self, statuses: Sequence[OutboxStatus]) -> list[str]:
        """Move rows in `statuses` (held, failed) back to pending; return their interaction ids."""
        if not set(statuses) <= {OutboxStatus.HELD, OutboxStatus.FAILED}:
            raise ValueError("only held and failed rows can be requeued")
        now = time.time()
        with self._write() as conn:
            ids = list(
                conn.scalars(
                    sa.update(outbox)
                    .where(outbox.c.status.in_(list(statuses)))
                    .values(
                        status=OutboxStatus.PENDING,
                        next_attempt_at=now,
                        updated_at=now,
                        attempts=0,
                    )
                    .returning(outbox.c.interaction_id)
                )
            )
            if ids:
                notify(conn, Topic.OUTBOX_WRITTEN)
        return ids

    def purge(self, older_than_seconds: float) -> int:
        """Delete rows that hold transcripts (sent, held, failed, too_large) once their last
        change is older than the retention period: transcripts are personal data."""
        cutoff = time.time() - older_than_seconds
        with self._write() as conn:
            return int(
                conn.execute(
                    sa.delete(outbox).where(
                        outbox.c.status.in_(RETAINED), outbox.c.updated_at < cutoff
                    )
                ).rowcount
            )

    def check_writable(self) -> None:
        """Raise `OutboxError` unless the database takes a write now (for /readyz)."""
        try:
            self.db.check_writable()
        except DatabaseError as exc:
            raise OutboxError(str(exc)) from exc

    # -- reading -------------------------------------------------------------------------------

    def get(self, interaction_id: str) -> OutboxRow | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(outbox).where(outbox.c.interaction_id == interaction_id)
            ).first()
        return OutboxRow.from_row(row) if row is not None else None

    def list(self, status: OutboxStatus | None = None, limit: int = 50) -> list[OutboxRow]:
        """Most recent rows first, optionally of one status."""
        query = sa.select(outbox).order_by(outbox.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(outbox.c.status == status)
        with self._read() as conn:
            return [OutboxRow.from_row(row) for row in conn.execute(query)]

    def statuses_of(self, interaction_ids: Sequence[str]) -> dict[str, OutboxStatus]:
        """interaction_id -> status, for the ids that exist."""
        result: dict[str, OutboxStatus] = {}
        with self._read() as conn:
            for start in range(0, len(interaction_ids), 500):
                chunk = list(interaction_ids[start : start + 500])
                for row in conn.execute(
                    sa.select(outbox.c.interaction_id, outbox.c.status).where(
                        outbox.c.interaction_id.in_(chunk)
                    )
                ):
                    result[row.interaction_id] = OutboxStatus(row.status)
        return result

    def counts(self) -> dict[OutboxStatus, int]:
        """Number of rows per status (every status present, zero when none)."""
        with self._read() as conn:
            return count_by_status(conn, outbox, OutboxStatus)

    def oldest_unsent_created_at(self) -> float | None:
        """Creation time of the oldest row still waiting to be sent (pending or sending)."""
        with self._read() as conn:
            value = conn.scalar(
                sa.select(sa.func.min(outbox.c.created_at)).where(outbox.c.status.in_(UNSENT))
            )
        return float(value) if value is not None else None

    def next_due_at(self) -> float | None:
        """The earliest time a row becomes claimable (a retry or an expiring lease)."""
        with self._read() as conn:
            retry = conn.scalar(
                sa.select(sa.func.min(outbox.c.next_attempt_at)).where(
                    outbox.c.status == OutboxStatus.PENDING
                )
            )
            lease = conn.scalar(
                sa.select(sa.func.min(outbox.c.lease_expires_at)).where(
                    outbox.c.status == OutboxStatus.SENDING
                )
            )
        times = [float(t) for t in (retry, lease) if t is not None]
        return min(times) if times else None


@contextmanager
def _translated(opener: Callable[[], AbstractContextManager[Connection]]) -> Iterator[Connection]:
    """A database connection whose failures leave as `OutboxError`."""
    try:
        with opener() as conn:
            yield conn
    except DatabaseError as exc:
        raise OutboxError(f"The outbox cannot be used now: {exc}") from exc


ClaimCheck = Callable[[str, bytes], DataRef]


class OutboxJobEvents:
    """Writes a finished job's event into the outbox, inside the job's final transaction.

    An event over `EVENT_MAX_BYTES` goes, with an S3 blob store, to a JSON document in S3 and
    the event carries `data_ref` instead (`claim_check`); without one it is kept `too_large`.
    """

    def __init__(
        self,
        *,
        source: str,
        bus_name: str,
        max_bytes: int,
        claim_check: ClaimCheck | None = None,
    ) -> None:
        self.source = source
        self.bus_name = bus_name
        self.max_bytes = max_bytes
        self.claim_check = claim_check

    @staticmethod
    def _context(job: Any) -> RequestContext:
        return RequestContext(job.tenant_id, job.user_id, job.account_id, job.id)

    def completed(self, conn: Connection, job: Any, result: Any) -> None:
        raw, cleaned = result.raw_transcript, result.cleaned_transcript
        lengths = {"raw_len": len(raw), "cleaned_len": len(cleaned)}
        context = self._context(job)
        try:
            built = build_completed_entry(
                context, raw, cleaned, source=self.source, bus_name=self.bus_name,
                metadata=job.metadata,
            )  # fmt: skip
            if not built.fits(self.max_bytes) and self.claim_check is not None:
                document = built.event.model_dump_json(include={"data"}).encode("utf-8")
                data_ref = self.claim_check(job.id, document)
                built = build_completed_ref_entry(
                    context, data_ref, source=self.source, bus_name=self.bus_name,
                    metadata=job.metadata,
                )  # fmt: skip
        except EventValidationError:
            logger.exception("completed event does not match its model; not stored")
            metrics.EVENTS_RECORDED.labels(status="not_stored").inc()
            return
        self._store(conn, built, **lengths)

    def failed(self, conn: Connection, job: Any, code: str, message: str) -> None:
        try:
            built = build_failed_entry(
                self._context(job), code, message, source=self.source, bus_name=self.bus_name,
                metadata=job.metadata,
            )  # fmt: skip
        except EventValidationError:
            logger.exception("failed event does not match its model; not stored")
            metrics.EVENTS_RECORDED.labels(status="not_stored").inc()
            return
        self._store(conn, built)

    def _store(
        self, conn: Connection, built: EventEntry, raw_len: int = 0, cleaned_len: int = 0
    ) -> None:
        if built.fits(self.max_bytes):
            status = OutboxStatus.PENDING
        else:
            status = OutboxStatus.TOO_LARGE
            logger.error(
                "event too large to publish (%d bytes, limit %d); recorded as too_large",
                built.size_bytes,
                self.max_bytes,
                extra={"interaction_id": built.interaction_id, "raw_len": raw_len},
            )
        insert_event(
            conn,
            built,
            status=status,
            raw_len=raw_len,
            cleaned_len=cleaned_len,
            error_code="TooLarge" if status == OutboxStatus.TOO_LARGE else None,
        )
        metrics.EVENTS_RECORDED.labels(
            status="queued" if status == OutboxStatus.PENDING else str(status)
        ).inc()
