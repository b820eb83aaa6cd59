"""The job store on both databases: claims, leases, reclaim, cancellation, idempotency."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Connection

from batchscribe.db import Database
from batchscribe.db.migrate import upgrade
from batchscribe.jobs.exceptions import (
    ActiveJobsLimitError,
    IdempotencyConflictError,
    InvalidCursorError,
    JobFinishedError,
    JobLeaseLostError,
    JobNotFoundError,
)
from batchscribe.jobs.models import Job, JobMode, JobStatus, NewJob
from batchscribe.jobs.results import JobResult
from batchscribe.jobs.store import JobStore
from tests.support.jobs import result_of

TENANT = "6f1c2a9e-3b7d-4c1e-9a8f-2d5b7c9e1f03"
OTHER_TENANT = "0b5f8a59-5c1e-4a43-8f7a-0f3c4e0f1b2d"


class RecordedEvents:
    """Remembers which final events the store asked for, inside which transaction."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None]] = []

    def completed(self, conn: Connection, job: Job, result: JobResult) -> None:
        assert conn.in_transaction()
        self.calls.append(("completed", job.id, None))

    def failed(self, conn: Connection, job: Job, code: str, message: str) -> None:
        assert conn.in_transaction()
        self.calls.append(("failed", job.id, code))


@pytest.fixture
def events() -> RecordedEvents:
    return RecordedEvents()


@pytest.fixture
def store(database: Database, events: RecordedEvents) -> Iterator[JobStore]:
    upgrade(database)
    return JobStore(database, events, max_attempts=2, timeout_factor=2.0)


def new_job(
    *, tenant: str = TENANT, mode: JobMode = JobMode.ASYNC, key: str | None = None,
    sha: str = "a" * 64, duration: float | None = 10.0,
) -> NewJob:  # fmt: skip
    return NewJob(
        id=str(uuid.uuid4()),
        tenant_id=tenant,
        user_id="alice",
        account_id=None,
        mode=mode,
        engine="sphinx",
        language=None,
        metadata={"meeting": "weekly"},
        filename="meeting.wav",
        content_type="audio/wav",
        audio_key=f"audio/{uuid.uuid4()}",
        audio_bytes=1000,
        audio_sha256=sha,
        duration_seconds=duration,
        idempotency_key=key,
    )


def test_a_created_job_is_queued_and_only_its_tenant_sees_it(store: JobStore) -> None:
    job, replayed = store.create(new_job())
    assert not replayed
    assert job.status is JobStatus.QUEUED
    assert job.metadata == {"meeting": "weekly"}
    assert store.get(job.id, TENANT).id == job.id
    with pytest.raises(JobNotFoundError):
        store.get(job.id, OTHER_TENANT)
    with pytest.raises(JobNotFoundError):
        store.cancel(job.id, OTHER_TENANT)


def test_pages_are_newest_first_and_the_cursor_walks_them_all(store: JobStore) -> None:
    ids = [store.create(new_job())[0].id for _ in range(7)]
    store.create(new_job(tenant=OTHER_TENANT))
    seen: list[str] = []
    cursor = None
    while True:
        page = store.page(TENANT, limit=3, cursor=cursor)
        seen += [job.id for job in page.jobs]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == list(reversed(ids))
    with pytest.raises(InvalidCursorError):
        store.page(TENANT, cursor="not-a-cursor")


def test_sync_jobs_are_claimed_before_older_async_ones(store: JobStore) -> None:
    older = store.create(new_job())[0]
    urgent = store.create(new_job(mode=JobMode.SYNC))[0]
    assert store.claim("w1", 30).id == urgent.id  # type: ignore[union-attr]
    assert store.claim("w1", 30).id == older.id  # type: ignore[union-attr]
    assert store.claim("w1", 30) is None


def test_concurrent_claimers_never_take_the_same_job(store: JobStore) -> None:
    created = {store.create(new_job())[0].id for _ in range(40)}
    claimed: Counter[str] = Counter()
    lock = threading.Lock()

    def claimer(name: str) -> None:
        while (job := store.claim(name, 30)) is not None:
            with lock:
                claimed[job.id] += 1

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(claimed) == created
    assert max(claimed.values()) == 1


def test_an_expired_lease_is_claimed_again_then_fails_as_worker_lost(
    store: JobStore, events: RecordedEvents
) -> None:
    job = store.create(new_job())[0]
    first = store.claim("dead-worker", lease_seconds=0.05)
    assert first is not None
    assert first.attempts == 1
    time.sleep(0.1)
    assert [j.status for j in store.reclaim_expired()] == [JobStatus.QUEUED]
    with pytest.raises(JobLeaseLostError):
        store.renew(job.id, "dead-worker", 30)
    second = store.claim("another-dead-worker", lease_seconds=0.05)
    assert second is not None
    assert second.attempts == 2
    time.sleep(0.1)
    (lost,) = store.reclaim_expired()
    assert lost.status is JobStatus.FAILED
    assert lost.error_code == "worker_lost"
    assert events.calls == [("failed", job.id, "worker_lost")]
    assert store.reclaim_expired() == []


def test_a_result_is_recorded_only_by_the_worker_holding_the_lease(
    store: JobStore, events: RecordedEvents
) -> None:
    job = store.create(new_job())[0]
    store.claim("w1", 30)
    with pytest.raises(JobLeaseLostError):
        store.complete(job.id, "someone-else", result_of("x"))
    store.renew(job.id, "w1", 30, progress=0.5)
    assert store.get(job.id).progress == 0.5
    done = store.complete(job.id, "w1", result_of("hi"))
    assert done.status is JobStatus.COMPLETED
    assert done.result_json is not None
    assert JobResult.from_json(done.result_json).raw_transcript == "SPEAKER_0: hi"
    assert events.calls == [("completed", job.id, None)]
    with pytest.raises(JobLeaseLostError):
        store.complete(job.id, "w1", result_of("again"))
    assert events.calls == [("completed", job.id, None)]


def test_cancelling_stops_the_worker_from_recording_anything(
    store: JobStore, events: RecordedEvents
) -> None:
    queued = store.create(new_job())[0]
    assert store.cancel(queued.id, TENANT).status is JobStatus.CANCELLED
    running = store.create(new_job())[0]
    store.claim("w1", 30)
    assert store.cancel(running.id).status is JobStatus.CANCELLED
    with pytest.raises(JobLeaseLostError):
        store.renew(running.id, "w1", 30)
    with pytest.raises(JobLeaseLostError):
        store.complete(running.id, "w1", result_of("late"))
    assert store.fail(running.id, "w1", "engine_timeout", "late") is None
    with pytest.raises(JobFinishedError):
        store.cancel(running.id)
    assert events.calls == []
    assert store.claim("w2", 30) is None


def test_idempotency_key_replays_the_same_audio_and_refuses_other_audio(store: JobStore) -> None:
    first, replayed = store.create(new_job(key="upload-1"))
    assert not replayed
    again, replayed = store.create(new_job(key="upload-1"))
    assert replayed
    assert again.id == first.id
    assert store.find_idempotent(TENANT, "upload-1", "a" * 64).id == first.id  # type: ignore[union-attr]
    with pytest.raises(IdempotencyConflictError):
        store.create(new_job(key="upload-1", sha="b" * 64))
    # Keys are per tenant.
    other, replayed = store.create(new_job(key="upload-1", tenant=OTHER_TENANT, sha="b" * 64))
    assert not replayed
    assert other.id != first.id


def test_concurrent_requests_with_one_idempotency_key_make_one_job(store: JobStore) -> None:
    results: list[str] = []
    lock = threading.Lock()

    def submit() -> None:
        job, _ = store.create(new_job(key="race"))
        with lock:
            results.append(job.id)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    assert len(set(results)) == 1
    assert len(store.page(TENANT, limit=50).jobs) == 1


def test_concurrent_submissions_never_pass_the_active_jobs_limit(
    store: JobStore, database: Database, events: RecordedEvents
) -> None:
    """Twelve submitters at once, each on a connection of its own (as separate instances
    would be), for a tenant allowed three active jobs: exactly three get in."""
    accepted: list[str] = []
    refused: list[ActiveJobsLimitError] = []
    lock = threading.Lock()
    start = threading.Barrier(12)
    url = database.url.render_as_string(hide_password=False)
    stores = [JobStore(Database(url), events) for _ in range(12)]

    def submit(own: JobStore) -> None:
        start.wait(timeout=30)
        try:
            job, _ = own.create(new_job(), max_active=3)
        except ActiveJobsLimitError as exc:
            with lock:
                refused.append(exc)
        else:
            with lock:
                accepted.append(job.id)

    threads = [threading.Thread(target=submit, args=(own,)) for own in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for own in stores:
        own.db.dispose()
    assert len(accepted) == 3
    assert len(refused) == 9
    assert {exc.active for exc in refused} == {3}
    assert store.count_active(TENANT) == 3
    # Other tenants are not held back, and a finished job frees its place.
    store.create(new_job(tenant=OTHER_TENANT), max_active=3)
    claimed = store.claim("worker", 30)
    assert claimed is not None
    store.complete(claimed.id, "worker", result_of("done"))
    store.create(new_job(), max_active=3)
    assert store.count_active(TENANT) == 3


def test_deferring_does_not_spend_an_attempt(store: JobStore) -> None:
    job = store.create(new_job())[0]
    store.claim("w1", 30)
    deferred = store.defer(job.id, "w1", delay_seconds=60)
    assert deferred is not None
    assert deferred.attempts == 0
    assert deferred.status is JobStatus.QUEUED
    assert store.claim("w1", 30) is None  # not due yet


def test_results_are_redacted_after_retention(store: JobStore) -> None:
    job = store.create(new_job())[0]
    store.claim("w1", 30)
    store.complete(job.id, "w1", result_of("personal data"))
    assert store.redact_finished(older_than_seconds=3600) == []
    (redacted,) = store.redact_finished(older_than_seconds=-1)
    assert redacted.id == job.id
    after = store.get(job.id)
    assert after.status is JobStatus.COMPLETED
    assert after.result_json is None
