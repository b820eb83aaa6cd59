"""`JobRunner`: one claimed job through the pipeline, inside a worker process.

fetch the audio from the blob store -> probe -> transcribe -> clean -> record the result and the
completed event in one transaction -> delete the audio (unless KEEP_AUDIO).

A long recording on the embedded engine takes another road after the probe: it is cut into
pieces that any worker takes (`jobs.splitting`); the runner of its last piece merges and cleans.

While it works, a heartbeat thread renews the job's lease and records progress at least every
5 s. If the lease is lost (the job was cancelled, or this worker was presumed dead and the job
reclaimed) nothing more is recorded; the supervisor stops the process.

Failures are sorted by whose they are: bad audio fails the job at once with a reason the user
can act on; an engine that is down fails a waiting synchronous request at once (HTTP 503) but
gives an asynchronous job more attempts later; a blob store that cannot be reached puts the job
back without spending an attempt, since storage being down is not the job's fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from batchscribe.config import Settings
from batchscribe.db.exceptions import DatabaseUnavailableError
from batchscribe.jobs.exceptions import JobLeaseLostError
from batchscribe.jobs.models import Job, JobErrorCode, JobMode, JobStatus
from batchscribe.jobs.pieces import Piece
from batchscribe.jobs.results import JobResult
from batchscribe.jobs.store import JobStore
from batchscribe.logging_setup import interaction_id_var
from batchscribe.pipeline.audio import AudioInfo, probe_audio
from batchscribe.pipeline.cleaners.base import Cleaner
from batchscribe.pipeline.exceptions import (
    AudioTooLongError,
    EngineUnavailableError,
    InvalidAudioError,
    PipelineError,
    TranscriptionError,
)
from batchscribe.pipeline.transcribers.base import Control, Transcriber
from batchscribe.pipeline.types import Transcript

logger = logging.getLogger(__name__)

#: An asynchronous job whose hosted engine is down waits this long before its next attempt.
ENGINE_RETRY_DELAY_SECONDS = 60.0
#: Blob store unreachable: first delay before the job is tried again (doubles, capped).
STORAGE_RETRY_DELAY_SECONDS = 5.0
STORAGE_RETRY_MAX_SECONDS = 120.0
#: How long the final write keeps trying through a database outage (a restart takes seconds).
FINAL_WRITE_PATIENCE_SECONDS = 120.0
PROGRESS_INTERVAL_SECONDS = 5.0


class AudioStore(Protocol):
    """What the runner needs of the blob store."""

    def download(self, key: str, path: str | os.PathLike[str]) -> int: ...

    def local_path(self, key: str) -> Path | None: ...

    def delete(self, key: str) -> None: ...

    def put_file(self, key: str, path: str | os.PathLike[str]) -> Any: ...


class LongJobs(Protocol):
    """The steps of a split job (`jobs.splitting.Splitter`), as the runner calls them."""

    def was_split(self, job: Job) -> bool: ...

    def continue_job(self, job: Job, beat: Heartbeat) -> JobStatus | None: ...

    def wants(self, job: Job, info: AudioInfo) -> bool: ...

    def split(
        self, job: Job, path: Path, info: AudioInfo, beat: Heartbeat, limit: float
    ) -> bool: ...

    def run_piece(self, piece: Piece) -> JobStatus | None: ...


class Heartbeat:
    """Renews the lease of the running job from a thread; records progress."""

    def __init__(self, store: JobStore, job: Job, owner: str, lease_seconds: float) -> None:
        self.store = store
        self.job = job
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.interval = min(PROGRESS_INTERVAL_SECONDS, max(lease_seconds / 3, 0.2))
        self.progress: float | None = None
        self.duration_seconds: float | None = None
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-heartbeat", daemon=True)

    def set_progress(self, fraction: float) -> None:
        """Record progress (sent with the next lease renewal)."""
        self.progress = fraction

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop renewing (before handing the lease to someone else, or giving it up)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.interval + 5)

    def _renew(self) -> None:
        self.store.renew(
            self.job.id,
            self.owner,
            self.lease_seconds,
            progress=self.progress,
            duration_seconds=self.duration_seconds,
        )

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._renew()
            except JobLeaseLostError:
                logger.info("job no longer held by this worker (cancelled or reclaimed)")
                self.lost.set()
                return
            except DatabaseUnavailableError as exc:
                # The lease outlives a short outage; keep trying on the next beat.
                logger.warning("could not renew the job lease: %s", exc)


class JobRunner:
    """Runs claimed jobs with one loaded engine and cleaner (one instance per worker process)."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        blobs: AudioStore,
        transcriber: Transcriber,
        cleaner: Cleaner,
        owner: str,
        *,
        missing_error: type[Exception],
        unavailable_error: type[Exception],
        work_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self.transcriber = transcriber
        self.cleaner = cleaner
        self.owner = owner
        self._missing_error = missing_error
        self._unavailable_error = unavailable_error
        self.work_dir = work_dir
        #: What the last `run` measured, for the supervisor's metrics (engine, audio seconds).
        self.stats: dict[str, Any] = {}
        self._loop = asyncio.new_event_loop()
        #: Set by the worker (`jobs.splitting.Splitter`) to split long recordings.
        self.splitter: LongJobs | None = None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._loop.run_until_complete(self.cleaner.aclose())
        self._loop.close()

    def run(self, job: Job) -> JobStatus | None:
        """Process one claimed job; its final status, or None if it went back to the queue or
        stopped being ours."""
        interaction_id_var.set(job.id)
        self.stats = {"engine": self.transcriber.name, "audio_seconds": 0.0}
        started = time.perf_counter()
        lease = self.settings.job_lease_seconds
        with Heartbeat(self.store, job, self.owner, lease) as beat:
            outcome = self._run(job, beat)
        logger.info(
            "job finished" if outcome is not None and outcome.finished else "job handed back",
            extra={
                "job_status": str(outcome) if outcome is not None else None,
                "attempt": job.attempts,
                "elapsed_seconds": round(time.perf_counter() - started, 3),
            },
        )
        if outcome is not None and outcome.finished and not self.settings.keep_audio:
            self._delete_audio(job)
        return outcome

    def run_piece(self, piece: Piece) -> JobStatus | None:
        """Transcribe one piece of a long job; the job's final status when this run finished
        it (its last piece: merged and completed, or a piece that failed it), else None."""
        assert self.splitter is not None, "the worker gives its runner a splitter"
        return self.splitter.run_piece(piece)

    def _run(self, job: Job, beat: Heartbeat) -> JobStatus | None:
        try:
            if self.splitter is not None and self.splitter.was_split(job):
                return self.splitter.continue_job(job, beat)
            with self._local_audio(job) as path:
                return self._process(job, path, beat)
        except self._missing_error:
            return self._fail(job, JobErrorCode.AUDIO_MISSING, self.store.failure_message(
                JobErrorCode.AUDIO_MISSING))  # fmt: skip
        except self._unavailable_error as exc:
            delay = min(
                STORAGE_RETRY_DELAY_SECONDS * 2 ** min(job.attempts, 8), STORAGE_RETRY_MAX_SECONDS
            )
            logger.warning(
                "blob store unavailable (%s); job back in the queue in %.0f s", exc, delay
            )
            self._final(lambda: self.store.defer(job.id, self.owner, delay))
            return None
        except JobLeaseLostError:
            return None

    @contextlib.contextmanager
    def _local_audio(self, job: Job) -> Iterator[Path]:
        """The job's audio as a local file: the blob itself when the store is a local
        directory, else a download into a private temp dir."""
        if not job.audio_key:
            raise self._missing_error(job.id)
        local = self.blobs.local_path(job.audio_key)
        if local is not None:
            yield local
            return
        directory = Path(tempfile.mkdtemp(prefix="batchscribe-job-", dir=self.work_dir))
        try:
            path = directory / "audio"
            self.blobs.download(job.audio_key, path)
            yield path
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def _process(self, job: Job, path: Path, beat: Heartbeat) -> JobStatus | None:
        try:
            limit = (
                self.settings.max_sync_audio_seconds
                if job.mode is JobMode.SYNC
                else self.settings.max_audio_seconds
            )
            info = probe_audio(path, decode=not self.transcriber.decodes_locally, max_seconds=limit)
            if info.duration_seconds > limit:
                return self._fail(job, JobErrorCode.AUDIO_TOO_LONG, _too_long(limit, job.mode))
            beat.duration_seconds = info.duration_seconds
            if self.splitter is not None and self.splitter.wants(job, info):
                split = self.splitter.split(job, path, info, beat, limit)
                if split:
                    return None  # the job is in its pieces' hands now
            control = Control(max_seconds=limit, progress=beat.set_progress, language=job.language)
            output = self.transcriber.transcribe(path, info, control)
            duration = (
                output.duration_seconds
                if output.duration_seconds is not None
                else info.duration_seconds
            )
            transcript = Transcript.from_engine(
                output.segments, duration, self.transcriber.name, output.language
            )
            self.stats["audio_seconds"] = transcript.duration_seconds
            if beat.lost.is_set():
                return None
            cleaning = self._loop.run_until_complete(self.cleaner.clean(transcript))
            self.stats.update(cleaner=cleaning.engine, degraded=cleaning.degraded)
        except InvalidAudioError as exc:
            return self._fail(job, JobErrorCode.INVALID_AUDIO, str(exc))
        except AudioTooLongError as exc:
            return self._fail(job, JobErrorCode.AUDIO_TOO_LONG, str(exc))
        except EngineUnavailableError as exc:
            reason = str(exc)
            if job.mode is JobMode.SYNC:
                return self._fail(job, JobErrorCode.ENGINE_UNAVAILABLE, reason)
            released = self._final(
                lambda: self.store.release(
                    job.id,
                    self.owner,
                    delay_seconds=ENGINE_RETRY_DELAY_SECONDS,
                    code=JobErrorCode.ENGINE_UNAVAILABLE,
                    message=reason,
                )
            )
            return released.status if released is not None and released.finished else None
        except (TranscriptionError, PipelineError) as exc:
            return self._fail(job, JobErrorCode.TRANSCRIPTION_FAILED, str(exc))
        except (JobLeaseLostError, self._missing_error, self._unavailable_error):
            raise  # storing the pieces: handled by `_run`
        except Exception:
            logger.exception("the pipeline failed unexpectedly")
            return self._fail(
                job,
                JobErrorCode.TRANSCRIPTION_FAILED,
                "Transcription failed on this file. Try again; if it persists, report the job "
                "id to the operator.",
            )
        result = JobResult(transcript, cleaning)
        self._final(lambda: self.store.complete(job.id, self.owner, result))
        return JobStatus.COMPLETED

    def _fail(self, job: Job, code: JobErrorCode, message: str) -> JobStatus | None:
        failed = self._final(lambda: self.store.fail(job.id, self.owner, code, message))
        return JobStatus.FAILED if failed is not None else None

    def _final(self, write: Any) -> Any:
        """A final write, retried through a short database outage (a restart)."""
        return self.store.db.retrying(
            write, deadline_seconds=FINAL_WRITE_PATIENCE_SECONDS, what="recording a job outcome"
        )

    def _delete_audio(self, job: Job) -> None:
        if not job.audio_key:
            return
        try:
            self.blobs.delete(job.audio_key)
        except Exception as exc:  # retention sweeps catch what is left behind
            logger.warning("could not delete the job's audio (%s); it is swept later", exc)


def _too_long(limit: float, mode: JobMode) -> str:
    if mode is JobMode.SYNC:
        return (
            f"The recording is longer than {limit:g} s, the limit for POST /batch/process. "
            "Submit it to POST /batch/jobs instead."
        )
    return f"The recording is longer than {limit:g} s, the limit per job. Split it into parts."
