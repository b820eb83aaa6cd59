"""`WorkerSupervisor`: keeps N worker processes running and holds each to its job's limits.

Per tick (a few times a second) it:
- reads what its workers report (ready, started job X with deadline D, finished X);
- kills a worker whose job passed its deadline (`JOB_TIMEOUT_FACTOR` x duration + 60 s) and
  fails the job with `engine_timeout`;
- kills a worker whose job was cancelled (the job is already `cancelled`);
- notices a worker that died (crashed, OOM-killed) and gives its job back: another attempt,
  or `worker_lost` after `JOB_MAX_ATTEMPTS`;
- starts one replacement for each worker it lost or killed.
Killing is the only reliable way to stop an engine busy in C code; a replacement loads its
engine in a second or two.

A worker busy with a piece of a long job (SPEC 16) is held to the piece's deadline and stopped
when the piece's job is cancelled; a piece past its deadline fails its job with
`engine_timeout`, and a dead worker's piece goes back to the queue like a job.

`batchscribe worker` runs it in the foreground; `batchscribe serve` runs it in a thread beside
the API. It forwards "work available" signals to its workers and publishes their results
("job finished", "outbox written") to the process's `Signals`.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.synchronize
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from typing import Any

from batchscribe.config import Settings
from batchscribe.db.exceptions import DatabaseUnavailableError
from batchscribe.jobs.models import JobErrorCode, JobStatus
from batchscribe.jobs.pieces import PieceStore
from batchscribe.jobs.store import JobStore
from batchscribe.jobs.worker import worker_main
from batchscribe.metrics import (
    AUDIO_SECONDS,
    CLEANINGS,
    JOB_WAIT_SECONDS,
    JOBS_FINISHED,
    TRANSCRIPTIONS,
    WORKER_REPLACEMENTS,
    WORKERS_BUSY,
)
from batchscribe.signals import Signals, Topic

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.25
CANCEL_CHECK_SECONDS = 1.0
#: A worker that dies before it is ready is restarted no faster than this (no crash loop).
RESTART_BACKOFF_SECONDS = 2.0


@dataclass
class WorkerSlot:
    """One worker process and what the supervisor knows about it."""

    index: int
    owner: str
    process: SpawnProcess
    reports: Connection
    started_at: float
    ready: bool = False
    load_error: str | None = None
    job_id: str | None = None
    #: The piece of `job_id` being transcribed, when the worker holds a piece.
    piece: int | None = None
    deadline_at: float | None = None
    job_started: float = 0.0
    jobs_done: int = 0
    killed_for: str | None = None


class WorkerSupervisor:
    """Starts, watches and replaces `count` worker processes."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        signals: Signals,
        count: int,
    ) -> None:
        self.settings = settings
        self.store = store
        self.pieces = PieceStore(store)
        self.signals = signals
        self.count = count
        self._ctx = multiprocessing.get_context("spawn")
        # The flags every worker shares: [work_available, stopping]. Each worker process object
        # keeps a reference to this list among its arguments, so `stop()` empties it: collected,
        # the flags' named semaphores are unlinked. (Uvicorn ends the process by raising SIGTERM
        # again after its shutdown, which skips the exit handlers that would unlink them, and
        # the resource tracker would warn about "leaked semaphore objects".)
        self._flags = [self._ctx.Event(), self._ctx.Event()]
        self._prefix = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._generation = 0
        self.slots: list[WorkerSlot] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop_requested = threading.Event()
        self._next_cancel_check = 0.0
        self.replacements = 0
        self._unsubscribe = signals.subscribe(Topic.JOBS_QUEUED, self._on_jobs_queued)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, *, wait_ready: float = 60.0) -> None:
        """Start the workers and wait (up to `wait_ready` s) until each has loaded its engine."""
        with self._lock:
            self.slots = [self._spawn(index) for index in range(self.count)]
        deadline = time.monotonic() + wait_ready
        while time.monotonic() < deadline and not all(
            slot.ready or slot.load_error for slot in self.slots
        ):
            self.tick()
            time.sleep(0.05)
        logger.info(
            "workers started" if self.ready else "workers started without a working engine",
            extra={
                "workers": self.count,
                "engine": self.settings.transcriber,
                "load_error": self.load_error,
            },
        )

    def run_in_thread(self) -> None:
        self._thread = threading.Thread(target=self.run, name="worker-supervisor", daemon=True)
        self._thread.start()

    def run(self) -> None:
        """Supervise until `stop()`."""
        while not self._stop_requested.is_set():
            try:
                self.tick()
            except Exception:  # the supervisor must outlive any one bad tick
                logger.exception("worker supervisor tick failed")
            self._stop_requested.wait(TICK_SECONDS)

    def stop(self, grace_seconds: float = 0.0) -> None:
        """Stop claiming; give running jobs up to `grace_seconds` to finish, then stop the
        workers and hand unfinished jobs back to the queue (no attempt spent)."""
        if not self._flags:
            return  # stopped already
        self._unsubscribe()
        self._stop_requested.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
        self.stopping.set()
        self.work_available.set()
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline and any(
            slot.job_id and slot.process.is_alive() for slot in self.slots
        ):
            self._drain_reports()
            time.sleep(0.1)
        self._drain_reports()
        for slot in self.slots:
            if slot.process.is_alive():
                slot.process.kill()
            slot.process.join(5.0)
            self._hand_back(slot, spend_attempt=False)
            slot.reports.close()
        self._flags.clear()

    @property
    def work_available(self) -> multiprocessing.synchronize.Event:
        """Set when work may be waiting: idle workers look at once."""
        return self._flags[0]

    @property
    def stopping(self) -> multiprocessing.synchronize.Event:
        """Set when the workers must stop claiming and exit."""
        return self._flags[1]

    # -- state -----------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True when at least one worker has its engine loaded."""
        return any(slot.ready for slot in self.slots)

    @property
    def load_error(self) -> str | None:
        return next((slot.load_error for slot in self.slots if slot.load_error), None)

    @property
    def busy(self) -> int:
        return sum(1 for slot in self.slots if slot.job_id)

    # -- the tick --------------------------------------------------------------------------------

    def tick(self) -> None:
        self._drain_reports()
        now = time.time()
        for slot in list(self.slots):
            if not slot.process.is_alive():
                self._replace(slot, reason="died")
            elif slot.job_id and slot.deadline_at is not None and now > slot.deadline_at:
                self._kill_overdue(slot)
        if time.monotonic() >= self._next_cancel_check:
            self._next_cancel_check = time.monotonic() + CANCEL_CHECK_SECONDS
            self._kill_cancelled()

    def _drain_reports(self) -> None:
        for slot in self.slots:
            try:
                while slot.reports.poll():
                    self._on_report(slot, slot.reports.recv())
            except (EOFError, OSError):
                continue  # the process died; `tick` replaces it

    def _on_report(self, slot: WorkerSlot, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            slot.ready = True
        elif kind == "load_error":
            slot.load_error = str(message[1])
        elif kind == "started":
            slot.job_id, slot.deadline_at = message[1], message[2]
            slot.piece = message[4] if len(message) > 4 else None
            slot.job_started = time.monotonic()
            if message[3] is not None:
                JOB_WAIT_SECONDS.observe(message[3])
            WORKERS_BUSY.set(self.busy)
        elif kind == "finished":
            job_id, status, stats = message[1], message[2], message[3]
            slot.job_id, slot.deadline_at, slot.piece = None, None, None
            slot.jobs_done += 1
            WORKERS_BUSY.set(self.busy)
            if status is not None:
                JOBS_FINISHED.labels(status).inc()
                engine = str(stats.get("engine", self.settings.transcriber))
                TRANSCRIPTIONS.labels(engine, status).inc()
                AUDIO_SECONDS.labels(engine).inc(float(stats.get("audio_seconds", 0.0)))
                if "cleaner" in stats:
                    degraded = str(bool(stats.get("degraded"))).lower()
                    CLEANINGS.labels(str(stats["cleaner"]), degraded).inc()
                self.signals.publish(Topic.JOB_FINISHED, job_id)
                if status in (JobStatus.COMPLETED, JobStatus.FAILED):
                    self.signals.publish(Topic.OUTBOX_WRITTEN)

    def _on_jobs_queued(self, _payload: str) -> None:
        self.work_available.set()

    # -- stopping and replacing workers ----------------------------------------------------------

    def _spawn(self, index: int) -> WorkerSlot:
        self._generation += 1
        owner = f"{self._prefix}-w{index}.{self._generation}"
        receive, send = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(
            target=worker_main,
            args=(self.settings, owner, self._flags, send),
            name=f"batchscribe-worker-{index}",
            daemon=True,
        )
        process.start()
        send.close()
        return WorkerSlot(index, owner, process, receive, time.monotonic())

    def _replace(self, slot: WorkerSlot, *, reason: str) -> None:
        self._drain_reports()
        code = slot.process.exitcode
        if slot.killed_for is None:
            logger.error(
                "worker %s %s (exit code %s); starting a replacement",
                slot.owner,
                reason,
                code,
                extra={"job_id": slot.job_id},
            )
        self._hand_back(slot, spend_attempt=True)
        slot.reports.close()
        WORKER_REPLACEMENTS.labels(slot.killed_for or "died").inc()
        if self.stopping.is_set():
            self.slots.remove(slot)
            return
        if not slot.ready and time.monotonic() - slot.started_at < RESTART_BACKOFF_SECONDS:
            time.sleep(RESTART_BACKOFF_SECONDS)
        with self._lock:
            position = self.slots.index(slot)
            self.slots[position] = self._spawn(slot.index)
        self.replacements += 1

    def _hand_back(self, slot: WorkerSlot, *, spend_attempt: bool) -> None:
        """A stopped worker's job goes back to the queue (or fails, out of attempts)."""
        try:
            held = self.store.held_by([slot.owner])
        except DatabaseUnavailableError:
            logger.warning("cannot hand back %s's job now; its lease will expire", slot.owner)
            return
        for job in held.values():
            if spend_attempt:
                result = self.store.release(job.id, slot.owner)
            else:
                result = self.store.defer(job.id, slot.owner, 0.0)
            if result is not None and result.finished:
                self.signals.publish(Topic.JOB_FINISHED, job.id)
                self.signals.publish(Topic.OUTBOX_WRITTEN)
            elif result is not None:
                self.work_available.set()
        self._hand_back_piece(slot, spend_attempt=spend_attempt)
        slot.job_id = None
        slot.piece = None

    def _hand_back_piece(self, slot: WorkerSlot, *, spend_attempt: bool) -> None:
        """A stopped worker's piece goes back to the queue (or, out of attempts, fails its
        job with `worker_lost`)."""
        try:
            held = self.pieces.held_by([slot.owner])
            for piece in held.values():
                if spend_attempt:
                    failed = self.pieces.release(piece, slot.owner)
                else:
                    self.pieces.defer(piece, slot.owner, 0.0)
                    failed = None
                if failed is not None:
                    self.signals.publish(Topic.JOB_FINISHED, failed.id)
                    self.signals.publish(Topic.OUTBOX_WRITTEN)
                else:
                    self.work_available.set()
        except DatabaseUnavailableError:
            logger.warning("cannot hand back %s's piece now; its lease will expire", slot.owner)

    def _kill(self, slot: WorkerSlot, why: str) -> None:
        slot.killed_for = why
        slot.process.kill()
        slot.process.join(5.0)

    def _kill_overdue(self, slot: WorkerSlot) -> None:
        job_id = slot.job_id
        assert job_id is not None
        logger.error(
            "job passed its deadline; stopping its worker",
            extra={"job_id": job_id, "worker": slot.owner},
        )
        self._kill(slot, "deadline")
        try:
            if slot.piece is not None:
                failed = self._fail_overdue_piece(slot)
            else:
                failed = self.store.fail(
                    job_id,
                    slot.owner,
                    JobErrorCode.ENGINE_TIMEOUT,
                    self.store.failure_message(JobErrorCode.ENGINE_TIMEOUT),
                )
        except DatabaseUnavailableError:
            failed = None  # the lease expires; the next claim fails it once out of attempts
        if failed is not None:
            self.signals.publish(Topic.JOB_FINISHED, job_id)
            self.signals.publish(Topic.OUTBOX_WRITTEN)
        self._replace(slot, reason="was stopped at its job's deadline")

    def _fail_overdue_piece(self, slot: WorkerSlot) -> Any:
        """A piece past its deadline fails its job, like a job past its own."""
        for piece in self.pieces.held_by([slot.owner]).values():
            message = (
                f"Transcribing {piece.label} of the recording took longer than its deadline "
                f"({self.store.timeout_factor:g} x its duration + "
                f"{self.store.deadline_grace_seconds:g} s) and was stopped. Try again; if it "
                "happens again, report the job id to the operator."
            )
            return self.pieces.fail(piece, slot.owner, JobErrorCode.ENGINE_TIMEOUT, message)
        # The worker may have been merging the job: it held the job itself.
        return self.store.fail(
            slot.job_id or "",
            slot.owner,
            JobErrorCode.ENGINE_TIMEOUT,
            self.store.failure_message(JobErrorCode.ENGINE_TIMEOUT),
        )

    def _kill_cancelled(self) -> None:
        running = {slot.job_id: slot for slot in self.slots if slot.job_id}
        if not running:
            return
        try:
            statuses = self.store.statuses(list(running))
        except DatabaseUnavailableError:
            return
        for job_id, slot in running.items():
            # Only a cancellation: the worker itself writes every other final state, and its
            # report of it may simply not have arrived yet.
            if statuses.get(job_id) is JobStatus.CANCELLED:
                logger.info("job cancelled; stopping its worker", extra={"job_id": job_id})
                self._kill(slot, "cancelled")
                self._replace(slot, reason="was stopped because its job was cancelled")
