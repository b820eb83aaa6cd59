"""The pieces of a long job in the database (SPEC 16), on SQLite and PostgreSQL: claimed like
jobs, the job handed to them and back, progress, failures, lost workers and cancellation."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from batchscribe.db import Database
from batchscribe.db.tables import outbox
from batchscribe.jobs.exceptions import JobLeaseLostError
from batchscribe.jobs.models import Job, JobErrorCode, JobMode, JobStatus
from batchscribe.jobs.pieces import PIECES_OWNER, NewPiece, PieceOutput, PieceStore
from batchscribe.jobs.store import JobStore
from batchscribe.pipeline.types import Segment, Word
from tests.support.jobs import job_store, new_job


@pytest.fixture
def store(database: Database) -> JobStore:
    return job_store(database, max_attempts=2)


@pytest.fixture
def pieces(store: JobStore) -> PieceStore:
    return PieceStore(store)


def _split(store: JobStore, pieces: PieceStore, count: int = 3, **job: object) -> Job:
    """A claimed job, handed to `count` pieces of 120 s."""
    created, _ = store.create(new_job(duration=count * 120.0, **job))  # type: ignore[arg-type]
    claimed = store.claim("splitter", 30)
    assert claimed is not None
    assert claimed.id == created.id
    pieces.hand_over(
        claimed,
        "splitter",
        [NewPiece(seq * 120.0, 120.0, f"pieces/{created.id}/{seq}.flac") for seq in range(count)],
    )
    return store.get(created.id)


def _output(text: str) -> PieceOutput:
    word = Word(text, 1.0, 1.5, 0.9)
    return PieceOutput([Segment(0, text, 1.0, 1.5, (word,))], 120.0, "en")


def _failed_events(database: Database, job_id: str) -> list[str]:
    with database.read() as conn:
        return list(
            conn.scalars(
                sa.select(outbox.c.detail_type).where(outbox.c.interaction_id == job_id)
            ).all()
        )


def test_a_split_job_runs_while_any_worker_takes_its_pieces_in_order(
    store: JobStore, pieces: PieceStore
) -> None:
    job = _split(store, pieces)
    assert job.status is JobStatus.RUNNING
    assert job.lease_owner == PIECES_OWNER
    assert job.lease_expires_at is None  # never reclaimed while its pieces run
    assert store.reclaim_expired() == []
    first = pieces.claim("w1", 30)
    second = pieces.claim("w2", 30)
    third = pieces.claim("w1", 30)
    assert [p.seq for p in (first, second, third) if p is not None] == [0, 1, 2]
    assert pieces.claim("w3", 30) is None
    assert first is not None
    assert second is not None
    assert third is not None
    assert first.deadline_at is not None
    assert first.deadline_at == pytest.approx(time.time() + 2.0 * 120 + 60, abs=5)

    pieces.renew(second, "w2", 30, progress=0.5)
    assert pieces.complete(first, "w1", _output("one"), 30) is None
    progress = store.get(job.id).progress
    assert progress == pytest.approx((1 + 0.5) / 3)
    assert pieces.complete(third, "w1", _output("three"), 30) is None
    merging = pieces.complete(second, "w2", _output("two"), 30)
    # The last piece's worker holds the job now, to merge and complete it.
    assert merging is not None
    assert merging.lease_owner == "w2"
    assert merging.status is JobStatus.RUNNING
    assert merging.progress < 1.0
    outputs = [p.output().segments[0].text for p in pieces.pieces_of(job.id)]
    assert outputs == ["one", "two", "three"]


def test_progress_never_goes_back_when_a_piece_starts_over(
    store: JobStore, pieces: PieceStore
) -> None:
    job = _split(store, pieces, count=2)
    piece = pieces.claim("w1", 30)
    assert piece is not None
    pieces.renew(piece, "w1", 30, progress=0.8)
    assert pieces.release(piece, "w1") is None  # its worker died: back in the queue
    again = pieces.claim("w2", 30)
    assert again is not None
    assert again.seq == piece.seq
    assert again.attempts == 2
    pieces.renew(again, "w2", 30, progress=0.1)
    assert store.get(job.id).progress == pytest.approx(0.4)


def test_a_piece_lost_too_often_fails_its_job_with_the_part_named(
    database: Database, store: JobStore, pieces: PieceStore
) -> None:
    job = _split(store, pieces)
    for owner in ("w1", "w2"):  # max_attempts is 2
        piece = pieces.claim(owner, 30)
        assert piece is not None
        assert piece.seq == 0
        failed = pieces.release(piece, None)  # the supervisor hands back its dead child's piece
    assert failed is not None
    assert failed.status is JobStatus.FAILED
    assert failed.error_code == JobErrorCode.WORKER_LOST
    assert "part 1 of 3 (0:00-2:00)" in (failed.error_message or "")
    assert {p.status for p in pieces.pieces_of(job.id)} == {
        JobStatus.FAILED,
        JobStatus.CANCELLED,
    }
    assert pieces.claim("w3", 30) is None
    assert _failed_events(database, job.id) == ["BatchProcessingFailed"]


def test_a_failed_piece_fails_its_job_at_once(
    database: Database, store: JobStore, pieces: PieceStore
) -> None:
    job = _split(store, pieces)
    first, second = pieces.claim("w1", 30), pieces.claim("w2", 30)
    assert first is not None
    assert second is not None
    failed = pieces.fail(second, "w2", JobErrorCode.TRANSCRIPTION_FAILED, "Part 2 failed.")
    assert failed is not None
    assert (failed.status, failed.error_message) == (JobStatus.FAILED, "Part 2 failed.")
    # The other running piece's worker learns it at its next write.
    with pytest.raises(JobLeaseLostError):
        pieces.renew(first, "w1", 30, progress=0.5)
    with pytest.raises(JobLeaseLostError):
        pieces.complete(first, "w1", _output("one"), 30)
    assert store.get(job.id).status is JobStatus.FAILED
    assert _failed_events(database, job.id) == ["BatchProcessingFailed"]


def test_a_piece_whose_worker_vanished_is_claimed_again_after_its_lease(
    store: JobStore, pieces: PieceStore
) -> None:
    _split(store, pieces, count=2)
    lost = pieces.claim("machine-a", 0.05)
    assert lost is not None
    time.sleep(0.1)
    assert pieces.reclaim_expired() == []
    taken = pieces.claim("machine-b", 30)
    assert taken is not None
    assert taken.seq == lost.seq  # before the later piece: oldest first
    assert taken.attempts == 2
    with pytest.raises(JobLeaseLostError):
        pieces.complete(lost, "machine-a", _output("late"), 30)


def test_cancelling_the_job_cancels_its_pieces(store: JobStore, pieces: PieceStore) -> None:
    job = _split(store, pieces)
    running = pieces.claim("w1", 30)
    assert running is not None
    store.cancel(job.id)
    assert {p.status for p in pieces.pieces_of(job.id)} == {JobStatus.CANCELLED}
    assert pieces.claim("w2", 30) is None
    with pytest.raises(JobLeaseLostError):
        pieces.renew(running, "w1", 30, progress=0.5)
    # The sweep finds the cancelled job's piece audio to delete, once.
    assert pieces.leftovers() == [job.id]
    assert sorted(pieces.discard(job.id)) == [f"pieces/{job.id}/{n}.flac" for n in range(3)]
    assert pieces.leftovers() == []


def test_a_waiting_synchronous_request_goes_before_pieces(
    store: JobStore, pieces: PieceStore
) -> None:
    _split(store, pieces, count=2)
    urgent = store.create(new_job(mode=JobMode.SYNC))[0]
    assert store.has_due_work(min_priority=1)
    assert pieces.claim("w1", 30, min_priority=1) is None
    assert store.claim("w1", 30).id == urgent.id  # type: ignore[union-attr]
    assert pieces.claim("w1", 30, min_priority=0) is not None


def test_handing_over_a_job_this_worker_lost_writes_nothing(
    store: JobStore, pieces: PieceStore
) -> None:
    created, _ = store.create(new_job(duration=600.0))
    claimed = store.claim("splitter", 30)
    assert claimed is not None
    store.cancel(created.id)
    with pytest.raises(JobLeaseLostError):
        pieces.hand_over(claimed, "splitter", [NewPiece(0.0, 600.0, "pieces/x/0.flac")])
    assert pieces.pieces_of(created.id) == []


def test_a_job_reclaimed_while_merging_goes_back_to_its_pieces_or_merges(
    store: JobStore, pieces: PieceStore
) -> None:
    job = _split(store, pieces, count=2)
    first = pieces.claim("w1", 30)
    assert first is not None
    pieces.complete(first, "w1", _output("one"), 30)
    second = pieces.claim("w1", 30)
    assert second is not None
    merging = pieces.complete(second, "w1", _output("two"), 0.05)
    assert merging is not None
    time.sleep(0.1)  # the merging worker died: the job's lease expires
    (requeued,) = store.reclaim_expired()
    assert requeued.status is JobStatus.QUEUED
    again = store.claim("w2", 30)
    assert again is not None
    assert again.id == job.id
    assert pieces.resume(again, "w2") is False  # every piece done: w2 merges
