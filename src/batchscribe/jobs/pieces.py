"""`PieceStore`: the pieces of a long job (SPEC 16), each a task any worker can take.

A long job's life with pieces:

    job claimed ──split──> pieces queued, job `running` and held by no worker (`PIECES_OWNER`)
    piece: queued ──claim──> running ──ok──> completed (job progress = share of pieces done)
                     │  │ └──error, deadline, or lost more than JOB_MAX_ATTEMPTS times──> failed:
                     │  │        the job fails with the reason, its other pieces are cancelled
                     │  └──worker lost (lease expired, crashed), attempts left──> queued
                     └──job cancelled──> cancelled (the supervisor stops the piece's worker)
    the last piece completed ──> its worker takes the job's lease, merges the pieces' transcripts
        (times offset to the recording), cleans once, completes the job (`JobStore.complete`)

Pieces are claimed like jobs (`LeasedQueue`: the same lease, attempts and reclaim after a dead
worker's lease expires); their rows carry the job's priority, so a waiting synchronous request
still goes first. Each transition that touches the job (handing it to its pieces, taking it
back to merge, failing it) happens in the transaction that changes the piece, so a job can never
be left `running` with no piece or worker to finish it. A worker that dies while merging lets
the job's lease expire: the job is claimed again and, its pieces all done, merged again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlalchemy.engine import Connection

from batchscribe.db.listen import notify
from batchscribe.db.tables import job_pieces, jobs
from batchscribe.jobs.exceptions import JobLeaseLostError
from batchscribe.jobs.leases import LeasedQueue
from batchscribe.jobs.models import ACTIVE_STATUSES, Job, JobErrorCode, JobStatus
from batchscribe.jobs.store import JobStore
from batchscribe.pipeline.types import Segment
from batchscribe.signals import Topic

#: `lease_owner` of a job while its pieces run: no worker holds the job itself, and with no
#: lease expiry it is never reclaimed; its pieces carry the leases.
PIECES_OWNER = "pieces"


def piece_key(job_id: str, seq: int) -> str:
    """Where a piece's audio is kept in the blob store (deleted when its job ends)."""
    return f"pieces/{job_id}/{seq}.flac"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass(frozen=True, slots=True)
class Piece:
    """One row of `job_pieces`, typed."""

    id: str
    job_id: str
    seq: int
    pieces: int
    status: JobStatus
    priority: int
    start_seconds: float
    duration_seconds: float
    cut_in_speech: bool
    audio_key: str
    progress: float
    attempts: int
    lease_owner: str | None
    lease_expires_at: float | None
    next_attempt_at: float
    deadline_at: float | None
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    error_code: str | None
    error_message: str | None
    result_json: str | None
    regions_json: str | None

    @classmethod
    def from_row(cls, row: Any) -> Piece:
        data = dict(row._mapping)
        data["status"] = JobStatus(data["status"])
        data["cut_in_speech"] = bool(data["cut_in_speech"])
        return cls(**data)

    @property
    def label(self) -> str:
        """`part 3 of 6 (4:00-6:00)`: how messages name the piece to a user."""
        end = self.start_seconds + self.duration_seconds
        return f"part {self.seq + 1} of {self.pieces} ({_clock(self.start_seconds)}-{_clock(end)})"

    @property
    def regions(self) -> list[tuple[int, int]] | None:
        """Its stretches of speech (sample ranges from its start), as the splitter found them."""
        if self.regions_json is None:
            return None
        return [(int(first), int(end)) for first, end in json.loads(self.regions_json)]

    def output(self) -> PieceOutput:
        if self.result_json is None:
            raise ValueError(f"piece {self.id} has no transcript")
        return PieceOutput.from_json(self.result_json)


@dataclass(frozen=True, slots=True)
class NewPiece:
    """A piece the splitter stored: where it starts in the recording, how long it is, its
    audio's key, whether its end had to be cut inside speech, and its stretches of speech."""

    start_seconds: float
    duration_seconds: float
    audio_key: str
    cut_in_speech: bool = False
    regions: list[tuple[int, int]] | None = None


@dataclass(frozen=True, slots=True)
class PieceOutput:
    """What the engine made of one piece: segments timed from the piece's start, the decoded
    duration and the language."""

    segments: list[Segment]
    duration_seconds: float
    language: str | None = None

    def to_json(self) -> str:
        return json.dumps(_OUTPUT.dump_python(self, mode="json"), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> PieceOutput:
        output: PieceOutput = _OUTPUT.validate_json(text)
        return output


_OUTPUT = TypeAdapter(PieceOutput)


class PieceStore:
    """Pieces in the application database, beside the jobs they belong to. Thread-safe."""

    def __init__(self, jobs_store: JobStore) -> None:
        self.jobs = jobs_store
        self.db = jobs_store.db
        self.max_attempts = jobs_store.max_attempts
        self.lease = LeasedQueue(
            self.db,
            job_pieces,
            timeout_factor=jobs_store.timeout_factor,
            deadline_grace_seconds=jobs_store.deadline_grace_seconds,
        )

    # -- reads -----------------------------------------------------------------------------------

    def pieces_of(self, job_id: str) -> list[Piece]:
        """The job's pieces in order (none when it was not split)."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(job_pieces)
                .where(job_pieces.c.job_id == job_id)
                .order_by(job_pieces.c.seq)
            ).all()
        return [Piece.from_row(row) for row in rows]

    def held_by(self, owners: Sequence[str]) -> dict[str, Piece]:
        """Running pieces held by these lease owners, by owner."""
        if not owners:
            return {}
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(job_pieces).where(
                    job_pieces.c.lease_owner.in_(list(owners)),
                    job_pieces.c.status == JobStatus.RUNNING,
                )
            ).all()
        return {row.lease_owner: Piece.from_row(row) for row in rows}

    # -- the splitting worker --------------------------------------------------------------------

    def hand_over(self, job: Job, owner: str, pieces: Sequence[NewPiece]) -> None:
        """Queue the job's pieces and hand the job to them, in one transaction: the job stays
        `running`, held by `PIECES_OWNER`. `JobLeaseLostError` (and nothing written) when
        `owner` no longer holds the job."""
        now = time.time()
        with self.db.transaction() as conn:
            handed = conn.execute(
                sa.update(jobs)
                .where(*self.jobs.lease.held(job.id, owner))
                .values(
                    lease_owner=PIECES_OWNER,
                    lease_expires_at=None,
                    progress=0.0,
                    updated_at=now,
                )
            )
            if handed.rowcount != 1:
                raise JobLeaseLostError(job.id)
            conn.execute(
                sa.insert(job_pieces),
                [
                    {
                        "id": f"{job.id}.{seq}",
                        "job_id": job.id,
                        "seq": seq,
                        "pieces": len(pieces),
                        "status": JobStatus.QUEUED,
                        "priority": job.priority,
                        "start_seconds": piece.start_seconds,
                        "duration_seconds": piece.duration_seconds,
                        "cut_in_speech": piece.cut_in_speech,
                        "audio_key": piece.audio_key,
                        "regions_json": (
                            json.dumps(piece.regions, separators=(",", ":"))
                            if piece.regions is not None
                            else None
                        ),
                        "progress": 0.0,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for seq, piece in enumerate(pieces)
                ],
            )
            notify(conn, Topic.JOBS_QUEUED)

    def resume(self, job: Job, owner: str) -> bool:
        """A job claimed again (its merging worker died) whose pieces are not all done goes
        back to them; True when it did, False when every piece is done (merge now)."""
        with self.db.transaction() as conn:
            unfinished = conn.scalar(
                sa.select(sa.func.count())
                .select_from(job_pieces)
                .where(job_pieces.c.job_id == job.id, job_pieces.c.status != JobStatus.COMPLETED)
            )
            if not unfinished:
                return False
            handed = conn.execute(
                sa.update(jobs)
                .where(*self.jobs.lease.held(job.id, owner))
                .values(lease_owner=PIECES_OWNER, lease_expires_at=None, updated_at=time.time())
            )
            if handed.rowcount != 1:
                raise JobLeaseLostError(job.id)
            notify(conn, Topic.JOBS_QUEUED)
        return True

    # -- the piece's worker ----------------------------------------------------------------------

    def _of_running_job(self) -> sa.ColumnElement[bool]:
        return sa.exists().where(
            jobs.c.id == job_pieces.c.job_id, jobs.c.status == JobStatus.RUNNING
        )

    def claim(self, owner: str, lease_seconds: float, *, min_priority: int = 0) -> Piece | None:
        """Take the next due piece of a running job (at least `min_priority`), or None."""
        where = (job_pieces.c.priority >= min_priority, self._of_running_job())
        with self.db.transaction() as conn:
            row = self.lease.claim(conn, owner, lease_seconds, where=where)
        return Piece.from_row(row) if row is not None else None

    def has_due_work(self) -> bool:
        with self.db.read() as conn:
            return self.lease.due(conn, where=(self._of_running_job(),))

    def renew(self, piece: Piece, owner: str, lease_seconds: float, progress: float | None) -> None:
        """Extend the piece's lease and record its progress (and the job's); raises
        `JobLeaseLostError` when the piece is no longer this worker's."""
        values = {} if progress is None else {"progress": min(max(progress, 0.0), 1.0)}
        with self.db.transaction() as conn:
            if not self.lease.renew(conn, piece.id, owner, lease_seconds, **values):
                raise JobLeaseLostError(piece.id)
            if progress is not None:
                self._job_progress(conn, piece.job_id)

    def _job_progress(self, conn: Connection, job_id: str) -> None:
        """The job's progress: finished pieces plus the done share of running ones, over all
        pieces; it never goes back (a piece started again after its worker died)."""
        rows = conn.execute(
            sa.select(job_pieces.c.status, job_pieces.c.progress).where(
                job_pieces.c.job_id == job_id
            )
        ).all()
        if not rows:
            return
        done = sum(
            1.0
            if row.status == JobStatus.COMPLETED
            else (row.progress if row.status == JobStatus.RUNNING else 0.0)
            for row in rows
        )
        # The merge and the cleaning are still to come when the last piece is done.
        share = min(done / len(rows), 0.99)
        conn.execute(
            sa.update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status == JobStatus.RUNNING, jobs.c.progress < share)
            .values(progress=share, updated_at=time.time())
        )

    def complete(
        self, piece: Piece, owner: str, output: PieceOutput, lease_seconds: float
    ) -> Job | None:
        """Record the piece's transcript. When it was the job's last piece, `owner` takes the
        job's lease in the same transaction and gets the job back: merge it now. None while
        other pieces are still running. `JobLeaseLostError` when the piece is no longer ours."""
        now = time.time()
        with self.db.transaction() as conn:
            done = conn.execute(
                sa.update(job_pieces)
                .where(*self.lease.held(piece.id, owner))
                .values(
                    status=JobStatus.COMPLETED,
                    progress=1.0,
                    result_json=output.to_json(),
                    finished_at=now,
                    updated_at=now,
                    lease_expires_at=None,
                )
            )
            if done.rowcount != 1:
                raise JobLeaseLostError(piece.id)
            self._job_progress(conn, piece.job_id)
            left = conn.scalar(
                sa.select(sa.func.count())
                .select_from(job_pieces)
                .where(
                    job_pieces.c.job_id == piece.job_id,
                    job_pieces.c.status != JobStatus.COMPLETED,
                )
            )
            if left:
                return None
            row = conn.execute(
                sa.update(jobs)
                .where(
                    jobs.c.id == piece.job_id,
                    jobs.c.status == JobStatus.RUNNING,
                    jobs.c.lease_owner == PIECES_OWNER,
                )
                .values(lease_owner=owner, lease_expires_at=now + lease_seconds, updated_at=now)
                .returning(*jobs.c)
            ).first()
        return Job.from_row(row) if row is not None else None

    def fail(self, piece: Piece, owner: str | None, code: str, message: str) -> Job | None:
        """The piece failed for good: it, and its job with `message` (and the failed event),
        in one transaction; the job's other pieces are cancelled. With `owner`, only while
        that worker holds the piece. The failed job, or None when nothing changed."""
        with self.db.transaction() as conn:
            return self._fail_in(conn, self.lease.running(piece.id, owner), piece, code, message)

    def _fail_in(
        self,
        conn: Connection,
        where: tuple[sa.ColumnElement[bool], ...],
        piece: Piece,
        code: str,
        message: str,
    ) -> Job | None:
        now = time.time()
        failed = conn.execute(
            sa.update(job_pieces)
            .where(*where)
            .values(
                status=JobStatus.FAILED,
                error_code=code,
                error_message=message,
                finished_at=now,
                updated_at=now,
                lease_expires_at=None,
            )
        )
        if failed.rowcount != 1:
            return None
        conn.execute(
            sa.update(job_pieces)
            .where(
                job_pieces.c.job_id == piece.job_id,
                job_pieces.c.status.in_(ACTIVE_STATUSES),
            )
            .values(
                status=JobStatus.CANCELLED,
                finished_at=now,
                updated_at=now,
                lease_expires_at=None,
            )
        )
        return self.jobs.fail_in(conn, (jobs.c.id == piece.job_id,), code, message)

    def release(self, piece: Piece, owner: str | None, delay_seconds: float = 0.0) -> Job | None:
        """Its worker stopped without finishing: the piece goes back to the queue, or, out of
        attempts, fails its job with `worker_lost`. The failed job, or None."""
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.select(job_pieces).where(*self.lease.running(piece.id, owner))
            ).first()
            if row is None:
                return None
            return self._release_in(conn, Piece.from_row(row), delay_seconds)

    def _release_in(self, conn: Connection, piece: Piece, delay_seconds: float) -> Job | None:
        if piece.attempts >= self.max_attempts:
            message = (
                f"The workers transcribing {piece.label} of the recording stopped "
                f"{piece.attempts} times before finishing it. Try again later; if it happens "
                "again, report the job id to the operator."
            )
            return self._fail_in(
                conn, self.lease.running(piece.id, None), piece, JobErrorCode.WORKER_LOST, message
            )
        self.lease.requeue(conn, self.lease.running(piece.id, None), delay_seconds)
        notify(conn, Topic.JOBS_QUEUED)
        return None

    def defer(self, piece: Piece, owner: str, delay_seconds: float) -> bool:
        """Back to the queue without spending an attempt (storage unreachable: not the
        piece's fault); False when the worker no longer holds it."""
        with self.db.transaction() as conn:
            row = self.lease.requeue(
                conn, self.lease.held(piece.id, owner), delay_seconds, refund_attempt=True
            )
        return row is not None

    def reclaim_expired(self, limit: int = 50) -> list[Job]:
        """Pieces whose worker stopped renewing go back to the queue (or fail their job after
        `max_attempts`); the jobs that failed. Any process may call this; it is idempotent."""
        with self.db.transaction() as conn:
            expired = [Piece.from_row(row) for row in self.lease.expired(conn, limit)]
            failed = [self._release_in(conn, piece, 0.0) for piece in expired]
        return [job for job in failed if job is not None]

    # -- when the job ends -----------------------------------------------------------------------

    def discard(self, job_id: str) -> list[str]:
        """Forget the audio and transcripts of the pieces of a job that ended; the blob keys of
        their audio, to delete. The rows stay (which worker did what, how often) with the job;
        an empty `audio_key` takes them out of the sweep's index range."""
        with self.db.transaction() as conn:
            keys = conn.scalars(
                sa.select(job_pieces.c.audio_key).where(
                    job_pieces.c.job_id == job_id, job_pieces.c.audio_key > ""
                )
            ).all()
            conn.execute(
                sa.update(job_pieces)
                .where(job_pieces.c.job_id == job_id)
                .values(audio_key="", result_json=None, updated_at=time.time())
            )
        return list(keys)

    def leftovers(self, limit: int = 20) -> list[str]:
        """Jobs that ended (cancelled, failed) while their pieces still had audio: their ids,
        for `discard` (a sweep any worker runs now and then)."""
        with self.db.read() as conn:
            return list(
                conn.scalars(
                    sa.select(job_pieces.c.job_id)
                    .join(jobs, jobs.c.id == job_pieces.c.job_id)
                    .where(jobs.c.status.not_in(ACTIVE_STATUSES), job_pieces.c.audio_key > "")
                    .distinct()
                    .limit(limit)
                ).all()
            )
