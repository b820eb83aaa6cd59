"""Helpers for tests of jobs and their events: a store with the real outbox and webhook hooks,
finished jobs in one call, results built from text, runtimes with local workers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from batchscribe.config import Settings
from batchscribe.db import Database
from batchscribe.db.migrate import upgrade
from batchscribe.events.outbox import ClaimCheck, OutboxJobEvents
from batchscribe.jobs.models import Job, JobMode, NewJob
from batchscribe.jobs.results import JobResult
from batchscribe.jobs.store import JobEventHooks, JobStore
from batchscribe.pipeline.types import CleaningResult, Segment, Transcript
from batchscribe.services.runtime import ServiceRuntime
from batchscribe.webhooks.hook import WebhookJobEvents

SOURCE = "com.yourapp.transcription"


def job_store(
    db: Database,
    *,
    max_bytes: int = 262144,
    claim_check: ClaimCheck | None = None,
    callback_inline_max_bytes: int = 65536,
    callback_window_seconds: float = 86400.0,
    **kwargs: Any,
) -> JobStore:
    """A migrated database's job store whose final states write real outbox rows (and webhook
    deliveries for jobs with a callback_url)."""
    upgrade(db)
    events = OutboxJobEvents(
        source=SOURCE, bus_name="default", max_bytes=max_bytes, claim_check=claim_check
    )
    webhooks = WebhookJobEvents(
        inline_max_bytes=callback_inline_max_bytes, window_seconds=callback_window_seconds
    )
    return JobStore(db, JobEventHooks(events, webhooks), **kwargs)


def new_job(
    *,
    tenant: str | None = None,
    mode: JobMode = JobMode.ASYNC,
    metadata: dict[str, Any] | None = None,
    account: str | None = None,
    key: str | None = None,
    sha: str = "a" * 64,
    duration: float | None = 10.0,
    callback_url: str | None = None,
) -> NewJob:
    job_id = str(uuid.uuid4())
    return NewJob(
        id=job_id,
        tenant_id=tenant or str(uuid.uuid4()),
        user_id="alice",
        account_id=account,
        mode=mode,
        engine="sphinx",
        language=None,
        metadata=metadata,
        filename="meeting.wav",
        content_type="audio/wav",
        audio_key=f"audio/{uuid.uuid4()}",
        audio_bytes=1000,
        audio_sha256=sha,
        duration_seconds=duration,
        idempotency_key=key,
        callback_url=callback_url,
        status_url=f"http://batchscribe.test/batch/jobs/{job_id}" if callback_url else None,
    )


def result_of(raw_text: str, cleaned_text: str | None = None) -> JobResult:
    """A result whose transcript is `raw_text` (one SPEAKER_0 utterance)."""
    transcript = Transcript.from_engine([Segment(0, raw_text, 0.0, 1.0)], 1.0, "sphinx", "en")
    cleaned = cleaned_text if cleaned_text is not None else raw_text
    return JobResult(transcript, CleaningResult(f"SPEAKER_0: {cleaned}", "rules"))


def completed_job(store: JobStore, raw_text: str = "hello there", **job: Any) -> Job:
    """Create, claim and complete one job (its event is written with it)."""
    created, _ = store.create(new_job(**job))
    store.claim("test-worker", 30)
    return store.complete(created.id, "test-worker", result_of(raw_text))


def failed_job(store: JobStore, code: str = "invalid_audio", **job: Any) -> Job:
    created, _ = store.create(new_job(**job))
    store.claim("test-worker", 30)
    failed = store.fail(created.id, "test-worker", code, "The file is not audio.")
    assert failed is not None
    return failed


@contextmanager
def local_runtimes(
    tmp_path: Path, *, workers: int = 1, **defaults: object
) -> Iterator[Callable[..., ServiceRuntime]]:
    """`start(workers=..., **settings)`: a runtime on SQLite and a file blob store under
    `tmp_path`, with local workers that poll quickly and short leases (no relay); every runtime
    started is stopped on exit. `defaults` are settings for every runtime of the block."""
    started: list[ServiceRuntime] = []

    def start(workers: int = workers, **overrides: object) -> ServiceRuntime:
        values: dict[str, object] = {
            "database_url": f"sqlite:///{tmp_path / 'app.db'}",
            "blob_store": f"file://{tmp_path / 'blobs'}",
            "job_poll_seconds": 0.1,
            "job_lease_seconds": 5,
            **defaults,
            **overrides,
        }
        settings = Settings(**values)  # type: ignore[arg-type]
        runtime = ServiceRuntime(settings, workers=workers, with_relay=False)
        runtime.start()
        started.append(runtime)
        return runtime

    try:
        yield start
    finally:
        for runtime in started:
            runtime.stop()
