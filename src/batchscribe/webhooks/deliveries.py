"""`DeliveryStore`: the `webhook_deliveries` and `webhook_attempts` tables.

A delivery's life:

    pending ──claim──> sending (leased) ──2xx──> delivered
       ^                  │ 410 ──> gone (the receiver wants no more)
       │                  │ any other answer, timeout, network error, refused address:
       └──────────────────┤   back to pending at the schedule's next time
                          └ window over, or a URL that no longer passes: failed
    delivered, failed, gone ──replay──> pending (same message id, a new window)

A delivery is written in the transaction that ends its job (`insert_delivery`, called by the
job store's hook), so a job never ends without its webhook nor is a webhook sent for a job
that did not end. Several processes may send from one database: a sender claims rows with a
lease inside one write transaction (PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite
`BEGIN IMMEDIATE`), so two senders never attempt the same delivery at the same time, and a
crashed sender's lease expires. Every attempt is recorded, by whoever made it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from batchscribe.db.batches import count_by_status, due_or_abandoned, lease_due_rows
from batchscribe.db.engine import Database
from batchscribe.db.exceptions import DatabaseError
from batchscribe.db.tables import webhook_attempts, webhook_deliveries
from batchscribe.webhooks.exceptions import DeliveryNotFound, DeliveryStoreError
from batchscribe.webhooks.signing import new_message_id

deliveries = webhook_deliveries
attempts_table = webhook_attempts

#: Longest error text kept per attempt (receivers' answers are not stored, only our sentence).
MAX_ERROR_CHARS = 500


class DeliveryStatus(StrEnum):
    """The state of one delivery (the diagram above), as stored and as the API shows it."""

    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"
    GONE = "gone"


#: States a delivery ends in (a replay starts it again).
FINISHED = (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.GONE)
UNFINISHED = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One row of `webhook_deliveries`. `payload` is None once redacted (RETENTION_DAYS)."""

    id: int
    message_id: str
    job_id: str
    tenant_id: str
    url: str
    event_type: str
    payload: str | None
    payload_bytes: int
    status: DeliveryStatus
    attempts: int
    next_attempt_at: float
    give_up_at: float
    lease_owner: str | None
    lease_expires_at: float | None
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: float | None
    created_at: float
    updated_at: float
    delivered_at: float | None

    @classmethod
    def from_row(cls, row: Any) -> Delivery:
        data = dict(row._mapping)
        data["status"] = DeliveryStatus(data["status"])
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of a delivery: when, how long, what came back, which process sent it."""

    attempt: int
    started_at: float
    duration_ms: float
    outcome: str
    status_code: int | None
    error: str | None
    sender: str

    @classmethod
    def from_row(cls, row: Any) -> Attempt:
        return cls(
            attempt=row.attempt,
            started_at=row.started_at,
            duration_ms=row.duration_ms,
            outcome=row.outcome,
            status_code=row.status_code,
            error=row.error,
            sender=row.sender,
        )


def insert_delivery(
    conn: Connection,
    *,
    job_id: str,
    tenant_id: str,
    url: str,
    event_type: str,
    body: bytes,
    window_seconds: float,
) -> None:
    """Store a job's webhook inside the caller's transaction (the one that ends the job); due
    at once. A job has at most one delivery: a second call for it changes nothing."""
    now = time.time()
    exists = conn.execute(sa.select(deliveries.c.id).where(deliveries.c.job_id == job_id)).first()
    if exists is not None:
        return
    conn.execute(
        sa.insert(deliveries).values(
            message_id=new_message_id(),
            job_id=job_id,
            tenant_id=tenant_id,
            url=url,
            event_type=event_type,
            payload=body.decode("utf-8"),
            payload_bytes=len(body),
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            give_up_at=now + window_seconds,
            created_at=now,
            updated_at=now,
        )
    )


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """What the sender reports after one attempt of a claimed delivery."""

    delivery: Delivery
    started_at: float
    duration_ms: float
    outcome: str
    status_code: int | None
    error: str | None
    #: The state the delivery moves to, and (pending) when it is tried next.
    status: DeliveryStatus
    next_attempt_at: float | None = None


class DeliveryStore:
    """The webhook tables; every method raises `DeliveryStoreError` when the database fails."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _write(self) -> AbstractContextManager[Connection]:
        return _translated(self.db.transaction)

    def _read(self) -> AbstractContextManager[Connection]:
        return _translated(self.db.read)

    # -- the sender's side -----------------------------------------------------------------------

    @staticmethod
    def _due(now: float) -> sa.ColumnElement[bool]:
        return due_or_abandoned(
            deliveries, pending=DeliveryStatus.PENDING, sending=DeliveryStatus.SENDING, now=now
        )

    def has_due(self) -> bool:
        """A cheap read: is any delivery due now? (Wake-ups read before they write.)"""
        with self._read() as conn:
            row = conn.execute(
                sa.select(deliveries.c.id).where(self._due(time.time())).limit(1)
            ).first()
        return row is not None

    def claim(self, owner: str, limit: int, lease_seconds: float) -> list[Delivery]:
        """Lease up to `limit` due deliveries (pending and due, or sending with an expired
        lease) for one attempt each, oldest due first."""
        now = time.time()
        due = self._due(now)
        with self._write() as conn:
            rows = lease_due_rows(
                conn,
                deliveries,
                # A redacted delivery (no payload left) has nothing to send.
                due=sa.and_(due, deliveries.c.payload.is_not(None)),
                order_by=[deliveries.c.next_attempt_at, deliveries.c.id],
                limit=limit,
                values={
                    "status": DeliveryStatus.SENDING,
                    "lease_owner": owner,
                    "lease_expires_at": now + lease_seconds,
                    "attempts": deliveries.c.attempts + 1,
                    "last_attempt_at": now,
                    "updated_at": now,
                },
                skip_locked=not self.db.is_sqlite,
            )
        return sorted((Delivery.from_row(row) for row in rows), key=lambda d: d.next_attempt_at)

    def record(self, owner: str, record: AttemptRecord) -> bool:
        """Record one attempt and the delivery's new state, in one transaction.

        The attempt is always recorded (it happened). `delivered` is recorded whoever holds
        the lease now (the receiver has it); any other state only while `owner` still holds
        the lease. True when the delivery's state changed.
        """
        now = time.time()
        delivery = record.delivery
        values: dict[str, Any] = {
            "status": record.status,
            "lease_owner": None,
            "lease_expires_at": None,
            "last_status_code": record.status_code,
            "last_error": record.error[:MAX_ERROR_CHARS] if record.error else None,
            "updated_at": now,
        }
        where: tuple[sa.ColumnElement[bool], ...]
        if record.status is DeliveryStatus.DELIVERED:
            values["delivered_at"] = now
            where = (
                deliveries.c.id == delivery.id,
                deliveries.c.status.in_(UNFINISHED),
            )
        else:
            if record.next_attempt_at is not None:
                values["next_attempt_at"] = record.next_attempt_at
            where = (
                deliveries.c.id == delivery.id,
                deliveries.c.status == DeliveryStatus.SENDING,
                deliveries.c.lease_owner == owner,
            )
        with self._write() as conn:
            conn.execute(
                sa.insert(attempts_table).values(
                    delivery_id=delivery.id,
                    attempt=delivery.attempts,
                    started_at=record.started_at,
                    duration_ms=round(record.duration_ms, 1),
                    outcome=record.outcome,
                    status_code=record.status_code,
                    error=record.error[:MAX_ERROR_CHARS] if record.error else None,
                    sender=owner,
                )
            )
            changed = conn.execute(sa.update(deliveries).where(*where).values(**values))
        return bool(changed.rowcount)

    def release(self, owner: str) -> int:
        """Give back every lease `owner` holds (the deliveries become due at once)."""
        now = time.time()
        with self._write() as conn:
            return int(
                conn.execute(
                    sa.update(deliveries)
                    .where(
                        deliveries.c.status == DeliveryStatus.SENDING,
                        deliveries.c.lease_owner == owner,
                    )
                    .values(
                        status=DeliveryStatus.PENDING,
                        lease_owner=None,
                        lease_expires_at=None,
                        next_attempt_at=now,
                        updated_at=now,
                    )
                ).rowcount
            )

    def next_due_at(self) -> float | None:
        """The earliest time a delivery becomes claimable (a retry or an expiring lease)."""
        with self._read() as conn:
            retry = conn.scalar(
                sa.select(sa.func.min(deliveries.c.next_attempt_at)).where(
                    deliveries.c.status == DeliveryStatus.PENDING,
                    deliveries.c.payload.is_not(None),
                )
            )
            lease = conn.scalar(
                sa.select(sa.func.min(deliveries.c.lease_expires_at)).where(
                    deliveries.c.status == DeliveryStatus.SENDING
                )
            )
        times = [float(t) for t in (retry, lease) if t is not None]
        return min(times) if times else None

    # -- operators and the API -----------------------------------------------------------------

    def find(self, ref: str) -> Delivery:
        """The delivery a number (its id), a message id (`msg_...`) or a job id names."""
        ref = ref.strip()[:64]
        if ref.isdigit():
            where = deliveries.c.id == int(ref)
        elif ref.startswith("msg_"):
            where = deliveries.c.message_id == ref
        else:
            where = deliveries.c.job_id == ref
        with self._read() as conn:
            row = conn.execute(sa.select(deliveries).where(where)).first()
        if row is None:
            raise DeliveryNotFound(f"no webhook delivery {ref!r} (give an id, msg_... or job id)")
        return Delivery.from_row(row)

    def for_job(self, job_id: str) -> Delivery | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(deliveries).where(deliveries.c.job_id == job_id[:64])
            ).first()
        return Delivery.from_row(row) if row is not None else None

    def for_jobs(self, job_ids: Sequence[str]) -> dict[str, Delivery]:
        """job id -> its delivery, for the ids that have one (one query)."""
        if not job_ids:
            return {}
        with self._read() as conn:
            rows = conn.execute(
                sa.select(deliveries).where(deliveries.c.job_id.in_(list(job_ids)))
            ).all()
        return {row.job_id: Delivery.from_row(row) for row in rows}

    def attempts(self, delivery_id: int, limit: int = 20) -> list[Attempt]:
        """The delivery's latest attempts, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(attempts_table)
                .where(attempts_table.c.delivery_id == delivery_id)
                .order_by(attempts_table.c.id.desc())
                .limit(limit)
            ).all()
        return [Attempt.from_row(row) for row in reversed(rows)]

    def recent(
        self,
        *,
        status: DeliveryStatus | None = None,
        job_id: str | None = None,
        tenant_id: str | None = None,
        limit: int = 50,
    ) -> list[Delivery]:
        """Most recent deliveries first, optionally filtered."""
        query = sa.select(deliveries).order_by(deliveries.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(deliveries.c.status == status)
        if job_id is not None:
            query = query.where(deliveries.c.job_id == job_id)
        if tenant_id is not None:
            query = query.where(deliveries.c.tenant_id == tenant_id)
        with self._read() as conn:
            return [Delivery.from_row(row) for row in conn.execute(query)]

    def counts(self) -> dict[DeliveryStatus, int]:
        """Deliveries per status (every status present, zero when none)."""
        with self._read() as conn:
            return count_by_status(conn, deliveries, DeliveryStatus)

    def replay(
        self,
        *,
        ids: Sequence[int] = (),
        statuses: Sequence[DeliveryStatus] = (),
        window_seconds: float,
    ) -> list[Delivery]:
        """Start finished deliveries again: pending now, attempts from zero, a new window, the
        same message id (receivers that keep ids see it is the same webhook). Deliveries whose
        body was already redacted, and unfinished ones, are left alone."""
        if not ids and not statuses:
            return []
        if not set(statuses) <= set(FINISHED):
            raise ValueError("only delivered, failed and gone deliveries can be replayed")
        now = time.time()
        chosen = sa.or_(deliveries.c.id.in_(list(ids)), deliveries.c.status.in_(list(statuses)))
        with self._write() as conn:
            rows = conn.execute(
                sa.update(deliveries)
                .where(
                    chosen,
                    deliveries.c.status.in_(FINISHED),
                    deliveries.c.payload.is_not(None),
                )
                .values(
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    give_up_at=now + window_seconds,
                    delivered_at=None,
                    updated_at=now,
                )
                .returning(*deliveries.c)
            ).all()
        return [Delivery.from_row(row) for row in rows]

    def redact(self, older_than_seconds: float) -> int:
        """Drop the bodies (they hold transcripts) of finished deliveries whose last change is
        older than the retention period; the state and attempts stay."""
        cutoff = time.time() - older_than_seconds
        with self._write() as conn:
            return int(
                conn.execute(
                    sa.update(deliveries)
                    .where(
                        deliveries.c.status.in_(FINISHED),
                        deliveries.c.updated_at < cutoff,
                        deliveries.c.payload.is_not(None),
                    )
                    .values(payload=None)
                ).rowcount
            )


@contextmanager
def _translated(opener: Callable[[], AbstractContextManager[Connection]]) -> Iterator[Connection]:
    """A database connection whose failures leave as `DeliveryStoreError`."""
    try:
        with opener() as conn:
            yield conn
    except DatabaseError as exc:
        raise DeliveryStoreError(f"the webhook deliveries cannot be used now: {exc}") from exc
