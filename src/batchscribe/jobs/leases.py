"""`LeasedQueue`: claiming, renewing and handing back rows of a table that workers take turns
on, with a lease. Jobs (`JobStore`) and the pieces of a long job (`PieceStore`) are both such
tables, and both go through this one implementation.

A queue table has the columns `id`, `status` (`queued`, `running`, ...), `priority`,
`created_at`, `next_attempt_at`, `attempts`, `lease_owner`, `lease_expires_at`, `deadline_at`,
`duration_seconds`, `started_at` and `updated_at`.

Two claimers never get the same row: PostgreSQL picks it with `FOR UPDATE SKIP LOCKED`
(concurrent claimers skip it instead of waiting), SQLite runs the claim inside `BEGIN IMMEDIATE`
(one writer at a time). Every later write of a worker is conditional on its lease (`held`:
`lease_owner = me AND status = 'running'`), so a worker that lost its row (cancelled, or
presumed dead and reclaimed) can never overwrite what happened since. A claim spends an
attempt and sets a deadline: `timeout_factor` x the row's audio duration + the grace.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from batchscribe.db.engine import Database
from batchscribe.jobs.models import JobStatus


class LeasedQueue:
    """The lease statements for one queue table."""

    def __init__(
        self,
        db: Database,
        table: sa.Table,
        *,
        timeout_factor: float,
        deadline_grace_seconds: float,
    ) -> None:
        self.db = db
        self.table = table
        self.timeout_factor = timeout_factor
        self.deadline_grace_seconds = deadline_grace_seconds

    def claim(
        self,
        conn: Connection,
        owner: str,
        lease_seconds: float,
        *,
        where: tuple[sa.ColumnElement[bool], ...] = (),
    ) -> Row[Any] | None:
        """Take the next due row (highest priority, oldest first) for `owner`, or None."""
        c = self.table.c
        now = time.time()
        pick = (
            sa.select(c.id)
            .where(c.status == JobStatus.QUEUED, c.next_attempt_at <= now, *where)
            .order_by(c.priority.desc(), c.created_at, c.id)
            .limit(1)
        )
        if not self.db.is_sqlite:
            pick = pick.with_for_update(skip_locked=True)
        return conn.execute(
            sa.update(self.table)
            .where(c.id == pick.scalar_subquery(), c.status == JobStatus.QUEUED)
            .values(
                status=JobStatus.RUNNING,
                lease_owner=owner,
                lease_expires_at=now + lease_seconds,
                attempts=c.attempts + 1,
                started_at=sa.func.coalesce(c.started_at, now),
                updated_at=now,
                deadline_at=(
                    now
                    + self.timeout_factor * sa.func.coalesce(c.duration_seconds, 0.0)
                    + self.deadline_grace_seconds
                ),
            )
            .returning(*c)
        ).first()

    def due(self, conn: Connection, *, where: tuple[sa.ColumnElement[bool], ...] = ()) -> bool:
        """A cheap read: is any row waiting to be claimed?"""
        c = self.table.c
        row = conn.execute(
            sa.select(c.id)
            .where(c.status == JobStatus.QUEUED, c.next_attempt_at <= time.time(), *where)
            .limit(1)
        ).first()
        return row is not None

    def held(self, row_id: str, owner: str) -> tuple[sa.ColumnElement[bool], ...]:
        """The row, while `owner` holds it."""
        c = self.table.c
        return (c.id == row_id, c.lease_owner == owner, c.status == JobStatus.RUNNING)

    def running(self, row_id: str, owner: str | None) -> tuple[sa.ColumnElement[bool], ...]:
        """With `owner`, the row while that worker holds it; without (a supervisor acting on
        its dead or stopped child), the row while anyone does."""
        c = self.table.c
        if owner is not None:
            return self.held(row_id, owner)
        return (c.id == row_id, c.status == JobStatus.RUNNING)

    def renew(
        self, conn: Connection, row_id: str, owner: str, lease_seconds: float, **values: Any
    ) -> bool:
        """Extend the lease (and write `values`); False when `owner` no longer holds the row."""
        now = time.time()
        result = conn.execute(
            sa.update(self.table)
            .where(*self.held(row_id, owner))
            .values(lease_expires_at=now + lease_seconds, updated_at=now, **values)
        )
        return result.rowcount == 1

    def requeue(
        self,
        conn: Connection,
        where: tuple[sa.ColumnElement[bool], ...],
        delay_seconds: float,
        *,
        refund_attempt: bool = False,
    ) -> Row[Any] | None:
        """The row `where` selects back in the queue after `delay_seconds`; with
        `refund_attempt` the attempt its claim spent is given back (the failure was not the
        row's fault). None when `where` matched nothing."""
        c = self.table.c
        now = time.time()
        values: dict[str, Any] = {
            "status": JobStatus.QUEUED,
            "lease_owner": None,
            "lease_expires_at": None,
            "next_attempt_at": now + delay_seconds,
            "updated_at": now,
        }
        if refund_attempt:
            greatest = sa.func.max if self.db.is_sqlite else sa.func.greatest
            values["attempts"] = greatest(c.attempts - 1, 0)
        return conn.execute(
            sa.update(self.table).where(*where).values(**values).returning(*c)
        ).first()

    def expired(self, conn: Connection, limit: int) -> list[Row[Any]]:
        """Running rows whose worker stopped renewing its lease, locked for this transaction
        (other reclaimers skip them)."""
        c = self.table.c
        pick = (
            sa.select(self.table)
            .where(c.status == JobStatus.RUNNING, c.lease_expires_at < time.time())
            .order_by(c.lease_expires_at)
            .limit(limit)
        )
        if not self.db.is_sqlite:
            pick = pick.with_for_update(skip_locked=True)
        return list(conn.execute(pick))
