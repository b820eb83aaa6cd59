"""The worker process: load the engine once, then claim and run jobs until told to stop.

Started by a `WorkerSupervisor` (spawn context), which gives it a lease-owner name, a shared
"work available" event and one end of a pipe. It reports on the pipe:

    ("ready", None) | ("load_error", message)     once, after loading the engine
    ("started", job_id, deadline_at, seconds it waited in the queue, piece number or None)
    ("finished", job_id, status or None, {"engine", "audio_seconds"})  once recorded

and never needs an answer: the supervisor acts on its own (kills it past a deadline or when
its job is cancelled, and starts a replacement).

A worker takes the pieces of long jobs (SPEC 16) as well as jobs: a piece of a running job goes
before a queued job of the same priority (the job that started first finishes first), so only a
waiting synchronous request overtakes them. For a piece, `job_id` is its job's id (so the
supervisor's cancellation check stops it), the piece number comes last, and "finished" carries
the job's status when that piece's run ended the job (merged it, or failed it), else None.
"""

from __future__ import annotations

import logging
import multiprocessing.synchronize
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from batchscribe.config import Settings

logger = logging.getLogger(__name__)

RECLAIM_INTERVAL_SECONDS = 5.0


def _exit_with_parent(parent_pid: int) -> None:
    """A worker whose supervisor was SIGKILLed would run on alone; end it instead."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def worker_main(
    settings: Settings,
    owner: str,
    flags: list[multiprocessing.synchronize.Event],
    reports: Connection,
) -> None:
    """Entry point of a worker process (must be importable for the spawn context). `flags` is
    the supervisor's `[work_available, stopping]`."""
    work_available, stopping = flags
    from batchscribe.blobs import open_blob_store
    from batchscribe.blobs.exceptions import BlobNotFoundError, BlobStoreError
    from batchscribe.db import Database
    from batchscribe.jobs.factory import job_store
    from batchscribe.jobs.pieces import PieceStore
    from batchscribe.jobs.runner import JobRunner
    from batchscribe.jobs.splitting import Splitter
    from batchscribe.logging_setup import configure_logging
    from batchscribe.pipeline.cleaners import build_cleaner
    from batchscribe.pipeline.transcribers import build_transcriber

    configure_logging(settings.log_level)
    _exit_with_parent(os.getppid())
    # The supervisor decides when we stop; a terminal's Ctrl-C goes to it, not to us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def report(*message: Any) -> None:
        try:
            reports.send(message)
        except (BrokenPipeError, OSError):
            os._exit(0)  # the supervisor is gone

    try:
        transcriber = build_transcriber(settings)
        cleaner = build_cleaner(settings)
        db = Database(settings.database)
        blobs = open_blob_store(settings)
        store = job_store(settings, db, blobs)
    except Exception as exc:  # reported through readiness; this worker claims nothing
        logger.exception("worker could not load its engine")
        report("load_error", f"{type(exc).__name__}: {exc}")
        stopping.wait()
        return
    runner = JobRunner(
        settings,
        store,
        blobs,
        transcriber,
        cleaner,
        owner,
        missing_error=BlobNotFoundError,
        unavailable_error=BlobStoreError,
    )
    splitter = Splitter(runner, PieceStore(store))
    runner.splitter = splitter
    report("ready", None)
    logger.info("worker ready", extra={"worker": owner, "engine": transcriber.name})
    try:
        _loop(settings, store, runner, splitter, work_available, stopping, report)
    finally:
        runner.close()
        db.dispose()


def _loop(
    settings: Settings,
    store: Any,
    runner: Any,
    splitter: Any,
    work_available: multiprocessing.synchronize.Event,
    stopping: multiprocessing.synchronize.Event,
    report: Any,
) -> None:
    from batchscribe.db.exceptions import DatabaseUnavailableError

    owner = runner.owner
    next_reclaim = 0.0
    while not stopping.is_set():
        piece = None
        job = None
        try:
            if time.monotonic() >= next_reclaim:
                next_reclaim = time.monotonic() + RECLAIM_INTERVAL_SECONDS
                store.reclaim_expired()
                if splitter is not None:
                    splitter.pieces.reclaim_expired()
                    splitter.sweep()
            if splitter is not None and splitter.pieces.has_due_work():
                # A waiting synchronous request (priority 1) goes before asynchronous pieces.
                urgent = 1 if store.has_due_work(min_priority=1) else 0
                piece = splitter.pieces.claim(
                    owner, settings.job_lease_seconds, min_priority=urgent
                )
            if piece is None and store.has_due_work():
                job = store.claim(owner, settings.job_lease_seconds)
        except DatabaseUnavailableError as exc:
            logger.warning("cannot reach the database to claim jobs (%s); retrying", exc)
            stopping.wait(min(settings.job_poll_seconds * 4, 5.0))
            continue
        if piece is not None:
            report("started", piece.job_id, piece.deadline_at, None, piece.seq)
            status = runner.run_piece(piece)
            outcome = str(status) if status is not None else None
            report("finished", piece.job_id, outcome, runner.stats)
            continue
        if job is None:
            # Clear, then look once more, then wait: a job queued between the look and the
            # clear would otherwise wait a whole poll interval.
            work_available.clear()
            try:
                if store.has_due_work():
                    continue
            except DatabaseUnavailableError:
                pass
            work_available.wait(settings.job_poll_seconds)
            continue
        waited = max((job.started_at or time.time()) - job.created_at, 0.0)
        report("started", job.id, job.deadline_at, waited, None)
        status = runner.run(job)
        report("finished", job.id, str(status) if status is not None else None, runner.stats)
        if status is None:
            work_available.set()  # a split job's pieces are waiting: wake the other workers
