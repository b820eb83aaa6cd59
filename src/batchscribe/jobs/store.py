"""`JobStore`: every read and write of the `jobs` and `idempotency_keys` tables.

Claiming is the heart of it. A worker claims the oldest due job of the highest priority and
holds it with a lease it renews while it works (`LeasedQueue`, shared with the pieces of long
jobs): two claimers never get the same job, and every later write of a worker is conditional on
its lease, so a worker that lost its job (cancelled, or presumed dead and reclaimed) can never
overwrite what happened since.

A job whose lease expired (its worker died with its machine) is claimed again, at most
`max_attempts` times in all; then it fails with `worker_lost`. Final states, their event and
their webhook delivery are written in one transaction through the `JobEvents` hooks.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from batchscribe.db.engine import Database
from batchscribe.db.listen import notify
from batchscribe.db.tables import idempotency_keys, job_pieces, jobs
from batchscribe.jobs.exceptions import (
    ActiveJobsLimitError,
    IdempotencyConflictError,
    InvalidCursorError,
    JobFinishedError,
    JobLeaseLostError,
    JobNotFoundError,
)
from batchscribe.jobs.leases import LeasedQueue
from batchscribe.jobs.models import (
    ACTIVE_STATUSES,
    ERROR_MESSAGES,
    Job,
    JobErrorCode,
    JobMode,
    JobPage,
    JobStatus,
    NewJob,
)
from batchscribe.jobs.results import JobResult
from batchscribe.signals import Topic

IDEMPOTENCY_TTL_SECONDS = 24 * 3600.0
DEADLINE_GRACE_SECONDS = 60.0


class JobEvents(Protocol):
    """Writes a finished job's event inside the transaction that finishes the job."""

    def completed(self, conn: Connection, job: Job, result: JobResult) -> None: ...

    def failed(self, conn: Connection, job: Job, code: str, message: str) -> None: ...


class JobEventHooks:
    """Several `JobEvents` hooks as one (the outbox's event, then the job's webhook): each is
    called in order inside the same transaction, so a job ends with all of them or none."""

    def __init__(self, *hooks: JobEvents) -> None:
        self.hooks = hooks

    def completed(self, conn: Connection, job: Job, result: JobResult) -> None:
        for hook in self.hooks:
            hook.completed(conn, job, result)

    def failed(self, conn: Connection, job: Job, code: str, message: str) -> None:
        for hook in self.hooks:
            hook.failed(conn, job, code, message)


def _encode_cursor(job: Job) -> str:
    raw = f"{job.created_at!r}|{job.id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, _, job_id = base64.urlsafe_b64decode(padded).decode("ascii").partition("|")
        if not job_id or len(job_id) > 36:
            raise ValueError("no id")
        return float(created), job_id
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursorError() from exc


def _active_of(conn: Connection, tenant_id: str) -> int:
    return int(
        conn.scalar(
            sa.select(sa.func.count())
            .select_from(jobs)
            .where(jobs.c.tenant_id == tenant_id, jobs.c.status.in_(ACTIVE_STATUSES))
        )
        or 0
    )


class JobStore:
    """Jobs in the application database. Thread-safe (each call takes its own connection)."""

    def __init__(
        self,
        db: Database,
        events: JobEvents,
        *,
        max_attempts: int = 3,
        timeout_factor: float = 2.0,
        deadline_grace_seconds: float = DEADLINE_GRACE_SECONDS,
    ) -> None:
        self.db = db
        self.events = events
        self.max_attempts = max_attempts
        self.timeout_factor = timeout_factor
        self.deadline_grace_seconds = deadline_grace_seconds
        self.lease = LeasedQueue(
            db,
            jobs,
            timeout_factor=timeout_factor,
            deadline_grace_seconds=deadline_grace_seconds,
        )

    # -- submission ----------------------------------------------------------------------------

    def find_idempotent(self, tenant_id: str, key: str, audio_sha256: str) -> Job | None:
        """The job an unexpired `Idempotency-Key` names, or None; raises
        `IdempotencyConflictError` when the key came with other audio."""
        now = time.time()
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(idempotency_keys).where(
                    idempotency_keys.c.tenant_id == tenant_id,
                    idempotency_keys.c.key == key,
                    idempotency_keys.c.expires_at > now,
                )
            ).first()
            if row is None:
                return None
            if row.audio_sha256 != audio_sha256:
                raise IdempotencyConflictError(row.job_id)
            job = conn.execute(sa.select(jobs).where(jobs.c.id == row.job_id)).first()
        return Job.from_row(job) if job is not None else None

    def create(self, new: NewJob, *, max_active: int | None = None) -> tuple[Job, bool]:
        """Insert a queued job; (job, replayed). With an idempotency key already used for the
        same audio, the existing job comes back with `replayed=True` and nothing is inserted.

        With `max_active`, the tenant's queued and running jobs are counted in the same
        transaction as the insert, with the tenant's submissions serialised (PostgreSQL: a
        transaction-scoped advisory lock per tenant; SQLite: one writer at a time), so
        instances submitting at the same moment cannot pass the limit together:
        `ActiveJobsLimitError` when the tenant is at it."""
        for _ in range(2):
            try:
                return self._create(new, max_active)
            except IntegrityError:
                # Another request inserted the same key between our check and our insert
                # (PostgreSQL; SQLite serialises writers): read the winner.
                if new.idempotency_key is None:
                    raise
        raise RuntimeError("idempotency key insert kept conflicting")  # pragma: no cover

    def _create(self, new: NewJob, max_active: int | None) -> tuple[Job, bool]:
        now = time.time()
        with self.db.transaction() as conn:
            if new.idempotency_key is not None:
                existing = self._idempotent_in(conn, new, now)
                if existing is not None:
                    return existing, True
            if max_active is not None:
                self._hold_active_limit(conn, new.tenant_id, max_active)
            priority = 1 if new.mode is JobMode.SYNC else 0
            row = conn.execute(
                sa.insert(jobs)
                .values(
                    id=new.id,
                    tenant_id=new.tenant_id,
                    user_id=new.user_id,
                    account_id=new.account_id,
                    status=JobStatus.QUEUED,
                    mode=new.mode,
                    priority=priority,
                    engine=new.engine,
                    language=new.language,
                    metadata_json=json.dumps(new.metadata) if new.metadata is not None else None,
                    filename=new.filename,
                    content_type=new.content_type,
                    audio_key=new.audio_key,
                    audio_bytes=new.audio_bytes,
                    audio_sha256=new.audio_sha256,
                    duration_seconds=new.duration_seconds,
                    progress=0.0,
                    attempts=0,
                    next_attempt_at=now,
                    cancel_requested=False,
                    created_at=now,
                    updated_at=now,
                    idempotency_key=new.idempotency_key,
                    callback_url=new.callback_url,
                    status_url=new.status_url,
                )
                .returning(*jobs.c)
            ).one()
            if new.idempotency_key is not None:
                conn.execute(
                    sa.insert(idempotency_keys).values(
                        tenant_id=new.tenant_id,
                        key=new.idempotency_key,
                        job_id=new.id,
                        audio_sha256=new.audio_sha256,
                        created_at=now,
                        expires_at=now + IDEMPOTENCY_TTL_SECONDS,
                    )
                )
            notify(conn, Topic.JOBS_QUEUED)
        return Job.from_row(row), False

    def _idempotent_in(self, conn: Connection, new: NewJob, now: float) -> Job | None:
        key = new.idempotency_key
        conn.execute(
            sa.delete(idempotency_keys).where(
                idempotency_keys.c.tenant_id == new.tenant_id,
                idempotency_keys.c.key == key,
                idempotency_keys.c.expires_at <= now,
            )
        )
        row = conn.execute(
            sa.select(idempotency_keys).where(
                idempotency_keys.c.tenant_id == new.tenant_id, idempotency_keys.c.key == key
            )
        ).first()
        if row is None:
            return None
        if row.audio_sha256 != new.audio_sha256:
            raise IdempotencyConflictError(row.job_id)
        job = conn.execute(sa.select(jobs).where(jobs.c.id == row.job_id)).first()
        if job is None:  # the job was purged: the key is free again
            conn.execute(
                sa.delete(idempotency_keys).where(
                    idempotency_keys.c.tenant_id == new.tenant_id, idempotency_keys.c.key == key
                )
            )
            return None
        return Job.from_row(job)

    # -- reads -------------------------------------------------------------------------------

    def get(self, job_id: str, tenant_id: str | None = None) -> Job:
        """The job, or `JobNotFoundError`; with `tenant_id`, another tenant's job is not found."""
        query = sa.select(jobs).where(jobs.c.id == job_id[:64])
        if tenant_id is not None:
            query = query.where(jobs.c.tenant_id == tenant_id)
        with self.db.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise JobNotFoundError(job_id)
        return Job.from_row(row)

    def statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        """Current status of each given job that exists (one query; used by waiters)."""
        if not job_ids:
            return {}
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(jobs.c.id, jobs.c.status).where(jobs.c.id.in_(list(job_ids)))
            ).all()
        return {row.id: JobStatus(row.status) for row in rows}

    def page(
        self,
        tenant_id: str,
        *,
        status: JobStatus | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> JobPage:
        """The tenant's jobs, newest first; pass the previous page's `next_cursor` for more."""
        query = sa.select(jobs).where(jobs.c.tenant_id == tenant_id)
        if status is not None:
            query = query.where(jobs.c.status == status)
        if cursor:
            created, job_id = _decode_cursor(cursor)
            query = query.where(
                sa.or_(
                    jobs.c.created_at < created,
                    sa.and_(jobs.c.created_at == created, jobs.c.id < job_id),
                )
            )
        query = query.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit + 1)
        with self.db.read() as conn:
            rows = [Job.from_row(row) for row in conn.execute(query)]
        more = len(rows) > limit
        rows = rows[:limit]
        return JobPage(rows, _encode_cursor(rows[-1]) if more and rows else None)

    def count_active(self, tenant_id: str) -> int:
        """Queued and running jobs of a tenant, across every instance."""
        with self.db.read() as conn:
            return _active_of(conn, tenant_id)

    def _hold_active_limit(self, conn: Connection, tenant_id: str, limit: int) -> None:
        if not self.db.is_sqlite:
            # Until this transaction ends, the tenant's other submissions wait here.
            key = sa.func.hashtextextended(f"batchscribe.active-jobs:{tenant_id}", 0)
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
        active = _active_of(conn, tenant_id)
        if active >= limit:
            raise ActiveJobsLimitError(active, limit)

    def queued_count(self) -> int:
        with self.db.read() as conn:
            return int(
                conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(jobs)
                    .where(jobs.c.status == JobStatus.QUEUED)
                )
                or 0
            )

    # -- cancellation ------------------------------------------------------------------------

    def cancel(self, job_id: str, tenant_id: str | None = None) -> Job:
        """Cancel a queued or running job at once (a running one's worker is stopped by its
        supervisor within seconds); `JobFinishedError` when it already ended."""
        now = time.time()
        with self.db.transaction() as conn:
            query = sa.select(jobs).where(jobs.c.id == job_id[:64])
            if tenant_id is not None:
                query = query.where(jobs.c.tenant_id == tenant_id)
            row = conn.execute(query).first()
            if row is None:
                raise JobNotFoundError(job_id)
            job = Job.from_row(row)
            if job.finished:
                raise JobFinishedError(job.id, job.status)
            updated = conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job.id, jobs.c.status.in_(ACTIVE_STATUSES))
                .values(
                    status=JobStatus.CANCELLED,
                    cancel_requested=True,
                    finished_at=now,
                    updated_at=now,
                    lease_expires_at=None,
                )
                .returning(*jobs.c)
            ).one()
            # A long job's pieces stop with it (their workers are stopped by the supervisor).
            conn.execute(
                sa.update(job_pieces)
                .where(job_pieces.c.job_id == job.id, job_pieces.c.status.in_(ACTIVE_STATUSES))
                .values(
                    status=JobStatus.CANCELLED,
                    finished_at=now,
                    updated_at=now,
                    lease_expires_at=None,
                )
            )
            notify(conn, Topic.JOB_FINISHED, job.id)
        return Job.from_row(updated)

    # -- the worker side -----------------------------------------------------------------------

    def claim(self, owner: str, lease_seconds: float) -> Job | None:
        """Take the next due job (highest priority, oldest first) for `owner`, or None."""
        with self.db.transaction() as conn:
            row = self.lease.claim(conn, owner, lease_seconds)
        return Job.from_row(row) if row is not None else None

    def has_due_work(self, *, min_priority: int | None = None) -> bool:
        """A cheap read: is any job (of at least `min_priority`) waiting to be claimed? (Polls
        read before they write.)"""
        where = () if min_priority is None else (jobs.c.priority >= min_priority,)
        with self.db.read() as conn:
            return self.lease.due(conn, where=where)

    def renew(
        self,
        job_id: str,
        owner: str,
        lease_seconds: float,
        *,
        progress: float | None = None,
        duration_seconds: float | None = None,
    ) -> None:
        """Extend the lease (and record progress); `JobLeaseLostError` if the job is no longer
        this worker's (cancelled, or reclaimed after the lease expired)."""
        values: dict[str, Any] = {}
        if progress is not None:
            values["progress"] = min(max(progress, 0.0), 1.0)
        if duration_seconds is not None:
            values["duration_seconds"] = duration_seconds
        with self.db.transaction() as conn:
            renewed = self.lease.renew(conn, job_id, owner, lease_seconds, **values)
        if not renewed:
            raise JobLeaseLostError(job_id)

    def _held(self, job_id: str, owner: str) -> tuple[sa.ColumnElement[bool], ...]:
        return self.lease.held(job_id, owner)

    def complete(
        self,
        job_id: str,
        owner: str,
        result: JobResult,
        *,
        result_key: str | None = None,
    ) -> Job:
        """Record the result and the completed event in one transaction.

        `result_key` names a blob holding the result when it is too large to keep inline (the
        row then stores no inline copy). Raises `JobLeaseLostError` when the job is no longer
        this worker's: nothing is written then.
        """
        now = time.time()
        values: dict[str, Any] = {
            "status": JobStatus.COMPLETED,
            "progress": 1.0,
            "finished_at": now,
            "updated_at": now,
            "lease_expires_at": None,
            "result_json": None if result_key else result.to_json(),
            "result_key": result_key,
            "error_code": None,
            "error_message": None,
            "duration_seconds": result.transcript.duration_seconds,
        }
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.update(jobs)
                .where(*self._held(job_id, owner))
                .values(**values)
                .returning(*jobs.c)
            ).first()
            if row is None:
                raise JobLeaseLostError(job_id)
            job = Job.from_row(row)
            self.events.completed(conn, job, result)
            notify(conn, Topic.JOB_FINISHED, job.id)
        return job

    def fail(self, job_id: str, owner: str | None, code: str, message: str) -> Job | None:
        """Fail a running job with its failed event, in one transaction.

        With `owner`, only if that worker still holds it; without (a supervisor acting on its
        dead or stopped child), any running job with that id. None when nothing changed.
        """
        with self.db.transaction() as conn:
            return self.fail_in(conn, self.lease.running(job_id, owner), code, message)

    def fail_in(
        self,
        conn: Connection,
        where: tuple[sa.ColumnElement[bool], ...],
        code: str,
        message: str,
    ) -> Job | None:
        """`fail` inside the caller's transaction, for the running job `where` selects (the
        pieces of a long job fail it in the transaction that records their failure)."""
        now = time.time()
        row = conn.execute(
            sa.update(jobs)
            .where(*where, jobs.c.status == JobStatus.RUNNING)
            .values(
                status=JobStatus.FAILED,
                finished_at=now,
                updated_at=now,
                lease_expires_at=None,
                error_code=code,
                error_message=message,
            )
            .returning(*jobs.c)
        ).first()
        if row is None:
            return None
        job = Job.from_row(row)
        self.events.failed(conn, job, code, message)
        notify(conn, Topic.JOB_FINISHED, job.id)
        return job

    def release(
        self,
        job_id: str,
        owner: str | None,
        *,
        delay_seconds: float = 0.0,
        code: str = JobErrorCode.WORKER_LOST,
        message: str | None = None,
    ) -> Job | None:
        """Put a running job back in the queue for another attempt after `delay_seconds`, or
        fail it with `code` when it used up its attempts (by default `worker_lost`: its worker
        stopped without finishing). With `owner`, only if that worker still holds it. None when
        nothing changed."""
        now = time.time()
        with self.db.transaction() as conn:
            row = conn.execute(sa.select(jobs).where(*self.lease.running(job_id, owner))).first()
            if row is None:
                return None
            return self._release_in(conn, Job.from_row(row), now, delay_seconds, code, message)

    def defer(self, job_id: str, owner: str, delay_seconds: float) -> Job | None:
        """Back to the queue without spending an attempt (storage was unreachable: not the
        job's fault). None when the worker no longer holds it."""
        with self.db.transaction() as conn:
            row = self.lease.requeue(
                conn, self._held(job_id, owner), delay_seconds, refund_attempt=True
            )
        return Job.from_row(row) if row is not None else None

    def _release_in(
        self,
        conn: Connection,
        job: Job,
        now: float,
        delay: float,
        code: str = JobErrorCode.WORKER_LOST,
        message: str | None = None,
    ) -> Job:
        if job.attempts >= self.max_attempts:
            if message is None:
                message = ERROR_MESSAGES[JobErrorCode.WORKER_LOST].format(attempts=job.attempts)
            row = conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job.id, jobs.c.status == JobStatus.RUNNING)
                .values(
                    status=JobStatus.FAILED,
                    finished_at=now,
                    updated_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                    error_code=code,
                    error_message=message,
                )
                .returning(*jobs.c)
            ).one()
            failed = Job.from_row(row)
            self.events.failed(conn, failed, code, message)
            notify(conn, Topic.JOB_FINISHED, failed.id)
            return failed
        requeued = self.lease.requeue(conn, self.lease.running(job.id, None), delay)
        assert requeued is not None  # the caller read it running in this transaction
        notify(conn, Topic.JOBS_QUEUED)
        return Job.from_row(requeued)

    def reclaim_expired(self, limit: int = 50) -> list[Job]:
        """Jobs whose worker stopped renewing its lease go back to the queue (or fail with
        `worker_lost` after `max_attempts`). Any process may call this; it is idempotent."""
        now = time.time()
        with self.db.transaction() as conn:
            expired = [Job.from_row(row) for row in self.lease.expired(conn, limit)]
            return [self._release_in(conn, job, now, 0.0) for job in expired]

    def overdue(self, owner_prefix: str | None = None) -> list[Job]:
        """Running jobs past their deadline (optionally only those of workers whose lease owner
        starts with `owner_prefix`)."""
        query = sa.select(jobs).where(
            jobs.c.status == JobStatus.RUNNING, jobs.c.deadline_at < time.time()
        )
        if owner_prefix is not None:
            query = query.where(jobs.c.lease_owner.startswith(owner_prefix, autoescape=True))
        with self.db.read() as conn:
            return [Job.from_row(row) for row in conn.execute(query)]

    def held_by(self, owners: Sequence[str]) -> dict[str, Job]:
        """Running jobs held by these lease owners, by owner."""
        if not owners:
            return {}
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(jobs).where(
                    jobs.c.lease_owner.in_(list(owners)), jobs.c.status == JobStatus.RUNNING
                )
            ).all()
        return {row.lease_owner: Job.from_row(row) for row in rows}

    # -- retention ---------------------------------------------------------------------------

    def redact_finished(self, older_than_seconds: float) -> list[Job]:
        """Drop the results of jobs finished before the retention period (SPEC 11): the row
        stays (status, times, error), the transcripts go. Returns the redacted jobs so the
        caller can delete result blobs."""
        cutoff = time.time() - older_than_seconds
        with self.db.transaction() as conn:
            expired = [
                Job.from_row(row)
                for row in conn.execute(
                    sa.select(jobs).where(
                        jobs.c.finished_at < cutoff,
                        sa.or_(jobs.c.result_json.is_not(None), jobs.c.result_key.is_not(None)),
                    )
                )
            ]
            if expired:
                conn.execute(
                    sa.update(jobs)
                    .where(jobs.c.id.in_([job.id for job in expired]))
                    .values(result_json=None, result_key=None, updated_at=time.time())
                )
            conn.execute(
                sa.delete(idempotency_keys).where(idempotency_keys.c.expires_at < time.time())
            )
        return expired

    def failure_message(self, code: JobErrorCode) -> str:
        return ERROR_MESSAGES[code].format(
            factor=self.timeout_factor,
            grace=f"{self.deadline_grace_seconds:g}",
            attempts=self.max_attempts,
        )
