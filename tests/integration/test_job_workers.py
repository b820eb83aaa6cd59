"""Real worker processes under their supervisor: per-job limits, deadlines, cancellation, a
crashed worker, and the sync path's disconnect (SPEC 11, 13, 14).

Each test runs a `ServiceRuntime` (the same object `batchscribe serve` runs) with one or two
worker processes loading the real engine, on a SQLite database and a file blob store in tmp.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from batchscribe.http.upload import ReceivedUpload
from batchscribe.identity import RequestContext
from batchscribe.jobs.models import Job, JobMode, JobStatus
from batchscribe.pipeline.exceptions import AudioTooLongError
from batchscribe.services.jobs import JobService
from batchscribe.services.runtime import ServiceRuntime
from tests.support.audio import make_long_wav, speech_fixture
from tests.support.events import wait_for
from tests.support.hostile_audio import flac, lying_flac, write
from tests.support.jobs import local_runtimes

pytestmark = pytest.mark.slow

TENANT = "6f1c2a9e-3b7d-4c1e-9a8f-2d5b7c9e1f03"


@pytest.fixture
def start_runtime(tmp_path: Path) -> Iterator[Callable[..., ServiceRuntime]]:
    """Start a runtime with N local workers; stopped after the test."""
    with local_runtimes(tmp_path) as start:
        yield start


def _upload(source: Path, tmp_path: Path) -> ReceivedUpload:
    """`source` as the HTTP layer hands an upload over (a temp copy the service consumes)."""
    copy = tmp_path / f"upload-{uuid.uuid4().hex}{source.suffix}"
    shutil.copyfile(source, copy)
    return ReceivedUpload(copy, source.name, None, copy.stat().st_size)


def _context() -> RequestContext:
    return RequestContext(TENANT, "alice", None, str(uuid.uuid4()))


def _submit(runtime: ServiceRuntime, source: Path, tmp_path: Path, **kwargs: object) -> Job:
    jobs = runtime.jobs
    assert jobs is not None
    submitted = asyncio.run(jobs.submit(_context(), _upload(source, tmp_path), **kwargs))  # type: ignore[arg-type]
    return submitted.job


def _wait(runtime: ServiceRuntime, job_id: str, timeout: float = 120.0) -> Job:
    assert runtime.store is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = runtime.store.get(job_id)
        if job.finished:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def _wait_running(runtime: ServiceRuntime, job_id: str) -> None:
    assert runtime.store is not None
    deadline = time.monotonic() + 60
    while runtime.store.get(job_id).status is not JobStatus.RUNNING:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)


def test_a_job_completes_with_progress_and_its_audio_is_deleted(
    start_runtime: Callable[..., ServiceRuntime], tmp_path: Path
) -> None:
    runtime = start_runtime()
    job = _submit(runtime, speech_fixture("flac"), tmp_path, metadata={"k": "v"})
    assert job.status is JobStatus.QUEUED
    assert job.duration_seconds is not None
    done = _wait(runtime, job.id)
    assert done.status is JobStatus.COMPLETED
    assert done.progress == 1.0
    assert done.attempts == 1
    # KEEP_AUDIO is off: the worker deletes the audio right after the final transaction.
    assert wait_for(lambda: not (tmp_path / "blobs" / "audio" / job.id).exists(), timeout=30)
    result = asyncio.run(runtime.jobs.result(done))  # type: ignore[union-attr]
    assert result is not None
    assert "SPEAKER_0:" in result.raw_transcript
    assert result.transcript.utterances[0].start is not None


def test_hours_of_silence_in_a_small_file_are_refused_before_any_engine_time(
    start_runtime: Callable[..., ServiceRuntime], tmp_path: Path
) -> None:
    runtime = start_runtime(max_audio_seconds=600)
    silence = write(tmp_path / "silence.flac", flac(20 * 60))
    assert silence.stat().st_size < 2_000_000  # twenty minutes in under 2 MB
    with pytest.raises(AudioTooLongError, match="600"):
        _submit(runtime, silence, tmp_path)
    assert runtime.store is not None
    assert runtime.store.page(TENANT).jobs == []  # nothing queued, nothing stored
    assert not any((tmp_path / "blobs").rglob("*"))


def test_a_lying_header_is_caught_while_decoding(
    start_runtime: Callable[..., ServiceRuntime], tmp_path: Path
) -> None:
    runtime = start_runtime(max_audio_seconds=20)
    liar = write(tmp_path / "liar.flac", lying_flac(actual_seconds=60, claimed_seconds=5))
    job = _submit(runtime, liar, tmp_path)  # the header says 5 s: accepted
    assert job.duration_seconds == pytest.approx(5, abs=0.1)
    done = _wait(runtime, job.id)
    assert done.status is JobStatus.FAILED
    assert done.error_code == "audio_too_long"
    assert "header" in (done.error_message or "")


def test_a_job_past_its_deadline_is_stopped_and_the_next_job_runs(
    start_runtime: Callable[..., ServiceRuntime], tmp_path: Path
) -> None:
    runtime = start_runtime(job_timeout_factor=0.02, job_deadline_grace_seconds=2)
    long_speech = make_long_wav(tmp_path / "long.wav", minutes=1.5)
    slow = _submit(runtime, long_speech, tmp_path)
    silence = write(tmp_path / "quiet.flac", flac(10))
    quick = _submit(runtime, silence, tmp_path)
    failed = _wait(runtime, slow.id)
    assert failed.status is JobStatus.FAILED
    assert failed.error_code == "engine_timeout"
    assert runtime.supervisor is not None
    assert _wait(runtime, quick.id).status is JobStatus.COMPLETED  # on the replacement worker
    assert runtime.supervisor.replacements == 1


def test_deleting_a_running_job_stops_its_worker(
    start_runtime: Callable[..., ServiceRuntime], tmp_path: Path
) -> None:
    runtime = start_runtime()
    supervisor = runtime.supervisor
    assert supervisor is not None
    job = _submit(runtime, make_long_wav(tmp_path / "long.wav", minutes=2), tmp_path)
    _wait_running(runtime, job.id)
    time.sleep(0.5)
    pid = supervisor.slots[0].process.pid
    assert pid is not None
    cancelled = asyncio.run(runtime.jobs.cancel(job.id, TENANT))  # type: ignore[union-attr]
    assert cancelled.status is JobStatus.CANCELLED
    # The supervisor stops the worker (and reaps it: only its thread may wait for the child).
    deadline = time.monotonic() + 30
    while supervisor.replacements < 1:
        assert time.monotonic() < deadline, "the cancelled job's worker was not stopped"
        time.sleep(0.05)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert runtime.store is not None
    assert runtime.store.get(job.id).status is JobStatus.CANCELLED
    # The replacement takes the next job.
    after = _submit(runtime, speech_fixture("wav", short=True), tmp_path)
    assert _wait(runtime, after.id).status is JobStatus.COMPLETED


def test_a_crashed_worker_costs_one_attempt_and_is_replaced(
    start_runtime: Callable[..., ServiceRuntime], tmp_path: Path
) -> None:
    runtime = start_runtime()
    supervisor = runtime.supervisor
    assert supervisor is not None
    job = _submit(runtime, speech_fixture("wav"), tmp_path)
    _wait_running(runtime, job.id)
    pid = supervisor.slots[0].process.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    done = _wait(runtime, job.id)
    assert done.status is JobStatus.COMPLETED
    assert done.attempts == 2
    assert supervisor.replacements == 1


def test_two_workers_share_the_queue(
    start_runtime: Callable[..., ServiceRuntime], tmp_path: Path
) -> None:
    runtime = start_runtime(workers=2)
    jobs = [_submit(runtime, speech_fixture("wav", short=True), tmp_path) for _ in range(4)]
    finished = [_wait(runtime, job.id) for job in jobs]
    assert {job.status for job in finished} == {JobStatus.COMPLETED}
    assert runtime.supervisor is not None
    # The worker that completed a job is the last one that held its lease.
    owners = {job.lease_owner for job in finished}
    assert owners == {slot.owner for slot in runtime.supervisor.slots}


def test_sync_jobs_overtake_queued_async_ones(
    start_runtime: Callable[..., ServiceRuntime], tmp_path: Path
) -> None:
    runtime = start_runtime()
    blocker = _submit(runtime, speech_fixture("wav"), tmp_path)
    _wait_running(runtime, blocker.id)
    waiting = _submit(runtime, speech_fixture("wav", short=True), tmp_path)
    urgent = _submit(runtime, speech_fixture("wav", short=True), tmp_path, mode=JobMode.SYNC)
    urgent_done, waiting_done = _wait(runtime, urgent.id), _wait(runtime, waiting.id)
    assert urgent_done.started_at is not None
    assert waiting_done.started_at is not None
    assert urgent_done.started_at < waiting_done.started_at


def test_a_sync_client_that_disconnects_cancels_its_job(
    start_runtime: Callable[..., ServiceRuntime], tmp_path: Path
) -> None:
    runtime = start_runtime()
    jobs: JobService = runtime.jobs  # type: ignore[assignment]
    checks = 0

    async def gone_after_a_while() -> bool:
        nonlocal checks
        checks += 1
        return checks >= 3

    upload = _upload(make_long_wav(tmp_path / "long.wav", minutes=2), tmp_path)
    from batchscribe.services.exceptions import ClientGoneError

    with pytest.raises(ClientGoneError):
        asyncio.run(jobs.process(_context(), upload, gone_after_a_while))
    assert runtime.store is not None
    (job,) = runtime.store.page(TENANT).jobs
    assert job.status is JobStatus.CANCELLED
    assert runtime.supervisor is not None
    worker = runtime.supervisor.slots[0]
    deadline = time.monotonic() + 30
    while worker.job_id is not None or not runtime.supervisor.slots[0].ready:
        assert time.monotonic() < deadline, "the worker was not freed"
        time.sleep(0.1)
