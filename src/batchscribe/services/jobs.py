"""`JobService`: what the routes call for jobs, asynchronous and synchronous alike.

Submitting: the upload is already on this machine's disk (bounded, streamed). The service reads
its container header (a duration over the limit is refused before it costs engine time), hashes
it, honours an `Idempotency-Key`, stores the audio in the blob store and inserts the queued job;
then it wakes this server's workers. Workers anywhere take it from there.

`POST /batch/process` is the same job, marked `sync` (claimed first) and waited for: the request
holds one of `WORKERS + MAX_QUEUED` slots while it waits (503 + Retry-After beyond), and a
client that disconnects cancels its job, which stops the worker within seconds.

Knows nothing of HTTP. Blocking calls (database, blob store, PyAV) run in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio

from batchscribe.auth.limits import check_active_jobs
from batchscribe.auth.service import active_jobs_limit
from batchscribe.blobs.base import BlobStore
from batchscribe.blobs.exceptions import BlobNotFoundError, BlobStoreError
from batchscribe.config import Settings
from batchscribe.db.exceptions import DatabaseUnavailableError
from batchscribe.identity import RequestContext
from batchscribe.jobs.exceptions import ActiveJobsLimitError
from batchscribe.jobs.models import Job, JobErrorCode, JobMode, JobPage, JobStatus, NewJob
from batchscribe.jobs.results import JobResult
from batchscribe.jobs.store import JobStore
from batchscribe.pipeline.audio import AudioInfo, probe_audio
from batchscribe.pipeline.exceptions import (
    AudioTooLongError,
    EngineTimeoutError,
    EngineUnavailableError,
    InvalidAudioError,
    OverloadedError,
    TranscriptionError,
)
from batchscribe.pipeline.languages import check_language
from batchscribe.services.exceptions import ClientGoneError, StorageUnavailableError
from batchscribe.signals import Signals, Topic

logger = logging.getLogger(__name__)

HASH_CHUNK_BYTES = 1024 * 1024
#: How often a waiting request checks whether its client is still there.
DISCONNECT_CHECK_SECONDS = 0.5


class Upload(Protocol):
    """An uploaded file on this machine's disk; `cleanup()` deletes it."""

    @property
    def path(self) -> Path: ...

    @property
    def filename(self) -> str: ...

    @property
    def content_type(self) -> str | None: ...

    @property
    def size(self) -> int: ...

    def cleanup(self) -> None: ...


class EngineState(Protocol):
    """What the service needs to know of local workers (None when this server has none)."""

    @property
    def ready(self) -> bool: ...

    @property
    def load_error(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Submitted:
    """A job accepted by `submit`; `replayed` when an Idempotency-Key named an existing one."""

    job: Job
    replayed: bool


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _too_long(limit: float, mode: JobMode) -> AudioTooLongError:
    if mode is JobMode.SYNC:
        return AudioTooLongError(
            f"The recording is longer than {limit:g} s, the limit for POST /batch/process. "
            "Submit it to POST /batch/jobs instead, and poll the job or use a callback."
        )
    return AudioTooLongError(
        f"The recording is longer than {limit:g} s, the limit per job. Split it into parts."
    )


class JobWaiter:
    """Lets requests await their jobs: woken by the "job finished" signal (this server's
    workers, or other machines through PostgreSQL), with a poll of the database as the backstop
    for hand-offs no signal reaches (SQLite with workers in other process trees)."""

    def __init__(self, store: JobStore, signals: Signals, poll_seconds: float) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self._waiting: dict[str, asyncio.Event] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe = signals.subscribe(Topic.JOB_FINISHED, self._on_finished)

    def close(self) -> None:
        self._unsubscribe()

    def _on_finished(self, job_id: str) -> None:
        """Called from any thread."""
        loop = self._loop
        if loop is None:
            return
        if job_id:
            event = self._waiting.get(job_id)
            if event is not None:
                loop.call_soon_threadsafe(event.set)
        else:  # a reconnected listener: anything may have finished
            for event in list(self._waiting.values()):
                loop.call_soon_threadsafe(event.set)

    async def wait(self, job_id: str) -> Job:
        """Until the job has finished; its final row."""
        self._loop = asyncio.get_running_loop()
        event = self._waiting.setdefault(job_id, asyncio.Event())
        try:
            while True:
                job = await anyio.to_thread.run_sync(self.store.get, job_id)
                if job.finished:
                    return job
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), self.poll_seconds)
                event.clear()
        finally:
            self._waiting.pop(job_id, None)


class JobService:
    """Submit, inspect, cancel and wait for jobs."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        blobs: BlobStore,
        signals: Signals,
        *,
        engine: EngineState | None = None,
        sync_capacity: int | None = None,
        storage_failing: Callable[[], bool] = lambda: False,
    ) -> None:
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self.signals = signals
        self.engine = engine
        self.sync_capacity = (
            sync_capacity
            if sync_capacity is not None
            else max(settings.workers, 1) + settings.max_queued
        )
        self._storage_failing = storage_failing
        self._sync_in_flight = 0
        self.waiter = JobWaiter(store, signals, settings.job_poll_seconds)

    def close(self) -> None:
        self.waiter.close()

    # -- submission ----------------------------------------------------------------------------

    async def submit(
        self,
        context: RequestContext,
        upload: Upload,
        *,
        mode: JobMode = JobMode.ASYNC,
        language: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        callback_url: str | None = None,
        status_url: str | None = None,
    ) -> Submitted:
        """Accept an uploaded file as a queued job (the upload's temp file is consumed).

        `language` is the request's BCP-47 tag, checked against the engine's languages
        (`UnsupportedLanguageError`, HTTP 400) before anything is stored. `callback_url`
        (checked by the caller) gets the job's webhook; `status_url` is the job's own URL, which
        a webhook too large to carry its result points to."""
        callback = (callback_url, status_url)
        try:
            language = self.language(language)
            return await self._submit(
                context, upload, mode, language, metadata, idempotency_key, callback
            )
        finally:
            upload.cleanup()

    def language(self, value: str | None) -> str | None:
        """A requested language as the job keeps it (canonical BCP-47), or
        `UnsupportedLanguageError` when the configured engine cannot transcribe it."""
        return check_language(value, self.settings.transcriber, self.settings.deepgram_model)

    async def _submit(
        self,
        context: RequestContext,
        upload: Upload,
        mode: JobMode,
        language: str | None,
        metadata: dict[str, Any] | None,
        idempotency_key: str | None,
        callback: tuple[str | None, str | None],
    ) -> Submitted:
        info = await self._probe(upload, mode)
        if self._storage_failing():
            # The last write probe of the database or the blob store failed (full, read-only,
            # corrupt): refuse now rather than store into what cannot keep it.
            raise StorageUnavailableError()
        sha256 = await anyio.to_thread.run_sync(_sha256, upload.path)
        if idempotency_key is not None:
            existing = await self._storage(
                lambda: self.store.find_idempotent(context.tenant_id, idempotency_key, sha256)
            )
            if existing is not None:
                return Submitted(existing, replayed=True)
        await self._check_tenant_limit(context.tenant_id)
        key = f"audio/{context.interaction_id}"
        await self._storage(lambda: self.blobs.put_file(key, upload.path))
        new = NewJob(
            id=context.interaction_id,
            tenant_id=context.tenant_id,
            user_id=context.user_id,
            account_id=context.account_id,
            mode=mode,
            engine=self.settings.transcriber,
            language=language,
            metadata=metadata,
            filename=upload.filename or None,
            content_type=upload.content_type,
            audio_key=key,
            audio_bytes=upload.size,
            audio_sha256=sha256,
            duration_seconds=info.duration_seconds or None,
            idempotency_key=idempotency_key,
            callback_url=callback[0],
            status_url=callback[1] if callback[0] else None,
        )
        limit = active_jobs_limit(self.settings)
        try:
            job, replayed = await self._storage(lambda: self.store.create(new, max_active=limit))
        except ActiveJobsLimitError as exc:
            # Another submission of the tenant took the last place since the early check.
            await anyio.to_thread.run_sync(self._forget_audio, key)
            check_active_jobs(exc.active, exc.limit)
            raise
        except BaseException:
            await anyio.to_thread.run_sync(self._forget_audio, key)
            raise
        if replayed:  # another request with this key won the race
            await anyio.to_thread.run_sync(self._forget_audio, key)
        else:
            self.signals.publish(Topic.JOBS_QUEUED)
            logger.info(
                "job queued",
                extra={
                    "job_mode": str(mode),
                    "bytes": upload.size,
                    "audio_seconds": round(info.duration_seconds, 3),
                },
            )
        return Submitted(job, replayed)

    async def _probe(self, upload: Upload, mode: JobMode) -> AudioInfo:
        """The upload's container header: accepted audio within the limit of `mode`, or the
        4xx error that says what is wrong (no engine time is spent)."""
        limit = (
            self.settings.max_sync_audio_seconds
            if mode is JobMode.SYNC
            else self.settings.max_audio_seconds
        )
        info = await anyio.to_thread.run_sync(lambda: probe_audio(upload.path, decode=False))
        if info.duration_seconds > limit:
            raise _too_long(limit, mode)
        return info

    async def _check_tenant_limit(self, tenant_id: str) -> None:
        """TENANT_MAX_ACTIVE_JOBS (api_key and gateway modes), counted in the database so it
        holds across instances; `TenantLimitError` (429) when the tenant is at it. An early,
        cheap refusal before the audio is stored; the insert counts again in its own
        transaction (`JobStore.create(max_active=...)`), which is what makes the limit hold."""
        limit = active_jobs_limit(self.settings)
        if limit is not None:
            active = await self._storage(lambda: self.store.count_active(tenant_id))
            check_active_jobs(active, limit)

    async def _storage(self, call: Callable[[], Any]) -> Any:
        """A blocking storage call in a thread; storage faults become `StorageUnavailableError`."""
        try:
            return await anyio.to_thread.run_sync(call)
        except (DatabaseUnavailableError, BlobStoreError) as exc:
            logger.error("storage unavailable for an upload: %s", exc)
            raise StorageUnavailableError() from exc

    def _forget_audio(self, key: str) -> None:
        with contextlib.suppress(BlobStoreError):
            self.blobs.delete(key)

    # -- the synchronous path ------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def sync_slot(self) -> AsyncIterator[None]:
        """One of the synchronous requests this server waits for at once, or
        `OverloadedError` at once (HTTP 503 + Retry-After). Taken after the upload is on disk
        and probed, so slow uploads never hold it."""
        if self.engine is not None and not self.engine.ready:
            raise EngineUnavailableError(
                "The transcription engine is not available. Try again later; if it persists, "
                "an operator should check the server logs.",
                retry_after=30,
            )
        if self._sync_in_flight >= self.sync_capacity:
            raise OverloadedError(
                "The server is busy with other transcriptions. Retry in a little while.",
                retry_after=10,
            )
        self._sync_in_flight += 1
        try:
            yield
        finally:
            self._sync_in_flight -= 1

    @property
    def sync_in_flight(self) -> int:
        return self._sync_in_flight

    async def process(
        self,
        context: RequestContext,
        upload: Upload,
        disconnected: Callable[[], Awaitable[bool]],
        *,
        language: str | None = None,
    ) -> tuple[Job, JobResult]:
        """Run an upload as a synchronous job and wait for it; (final job, its result).

        A failed job raises the error its code stands for (422, 413, 503...). When the client
        disconnects, the job is cancelled and `ClientGoneError` raised.
        """
        # Probe before taking a slot: a slot is only ever held by audio that is on disk, readable
        # and within the limit (a failed probe deletes the upload and raises its 4xx).
        try:
            language = self.language(language)
            await self._probe(upload, JobMode.SYNC)
        except BaseException:
            upload.cleanup()
            raise
        async with self.sync_slot():
            submitted = await self.submit(context, upload, mode=JobMode.SYNC, language=language)
            job = await self._wait_or_cancel(submitted.job.id, disconnected)
        if job.status is JobStatus.COMPLETED:
            result = await self.result(job)
            if result is not None:
                return job, result
        raise _failure(job)

    async def _wait_or_cancel(
        self, job_id: str, disconnected: Callable[[], Awaitable[bool]]
    ) -> Job:
        waiting = asyncio.ensure_future(self.waiter.wait(job_id))
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=DISCONNECT_CHECK_SECONDS)
                if done:
                    return waiting.result()
                if await disconnected():
                    logger.info("client disconnected; cancelling its job")
                    with contextlib.suppress(Exception):
                        await anyio.to_thread.run_sync(self.store.cancel, job_id)
                    raise ClientGoneError()
        finally:
            waiting.cancel()

    # -- reading, cancelling -------------------------------------------------------------------

    async def get(self, job_id: str, tenant_id: str) -> Job:
        job: Job = await self._read(lambda: self.store.get(job_id, tenant_id))
        return job

    async def page(
        self, tenant_id: str, *, status: JobStatus | None, limit: int, cursor: str | None
    ) -> JobPage:
        page: JobPage = await self._read(
            lambda: self.store.page(tenant_id, status=status, limit=limit, cursor=cursor)
        )
        return page

    async def cancel(self, job_id: str, tenant_id: str) -> Job:
        job: Job = await self._storage(lambda: self.store.cancel(job_id, tenant_id))
        if not self.settings.keep_audio and job.audio_key:
            await anyio.to_thread.run_sync(self._forget_audio, job.audio_key)
        return job

    async def _read(self, call: Callable[[], Any]) -> Any:
        try:
            return await anyio.to_thread.run_sync(call)
        except DatabaseUnavailableError as exc:
            raise StorageUnavailableError() from exc

    async def result(self, job: Job) -> JobResult | None:
        """A completed job's result, inline or from the blob store (None once redacted)."""
        if job.result_json:
            return JobResult.from_json(job.result_json)
        if job.result_key:
            try:
                raw = await anyio.to_thread.run_sync(self._read_blob, job.result_key)
            except BlobNotFoundError:
                return None
            except BlobStoreError as exc:
                raise StorageUnavailableError() from exc
            return JobResult.from_json(raw)
        return None

    def _read_blob(self, key: str) -> bytes:
        with self.blobs.open(key) as stream:
            return stream.read()


def _failure(job: Job) -> Exception:
    """The pipeline error a failed synchronous job stands for (mapped to HTTP as before)."""
    message = job.error_message or "Transcription failed."
    code = job.error_code
    if job.status is JobStatus.CANCELLED:
        return TranscriptionError("The job was cancelled before it finished.")
    if code == JobErrorCode.INVALID_AUDIO:
        return InvalidAudioError(message)
    if code == JobErrorCode.AUDIO_TOO_LONG:
        return AudioTooLongError(message)
    if code == JobErrorCode.ENGINE_TIMEOUT:
        return EngineTimeoutError(message)
    if code == JobErrorCode.ENGINE_UNAVAILABLE:
        return EngineUnavailableError(message, retry_after=60)
    if code in (JobErrorCode.STORAGE_UNAVAILABLE, JobErrorCode.AUDIO_MISSING):
        return StorageUnavailableError()
    return TranscriptionError(message)
