"""Long recordings in parallel with real worker processes (SPEC 16): split at silences, pieces
spread over the workers, merged with absolute times and the same words as one worker decoding
the whole file; a worker killed mid-piece, cancellation, speech without pauses.

Each test runs a `ServiceRuntime` with real workers on a SQLite database and a file blob store,
with SPLIT_MIN_SECONDS and SPLIT_TARGET_SECONDS small so that a minute or two of speech makes
several pieces.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import tempfile
import time
import uuid
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from batchscribe.http.upload import ReceivedUpload
from batchscribe.identity import RequestContext
from batchscribe.jobs.models import Job, JobStatus
from batchscribe.jobs.pieces import Piece, PieceStore
from batchscribe.pipeline.audio import SAMPLE_RATE, iter_pcm, probe_audio
from batchscribe.pipeline.split import analyse, plan_pieces, read_pcm, regions_of, write_flac
from batchscribe.pipeline.transcribers.sphinx import SphinxTranscriber
from batchscribe.pipeline.types import Transcript, Word
from batchscribe.services.runtime import ServiceRuntime
from tests.support.audio import (
    known_text,
    known_timing,
    make_long_wav,
    speech_fixture,
    word_error_rate,
)
from tests.support.events import wait_for
from tests.support.jobs import local_runtimes

pytestmark = pytest.mark.slow

TENANT = "6f1c2a9e-3b7d-4c1e-9a8f-2d5b7c9e1f03"
#: The words of a split transcript are those of one engine decoding the whole file: every piece
#: is decoded with the utterances the detector found over the whole recording. What may still
#: differ is the first utterance or two of a piece: the engine normalises each utterance with a
#: running average of the spectrum learnt from the utterances before it, and a piece's worker
#: heard other audio before. Measured: 0 words differ on 3 minutes cut into 7 pieces decoded
#: after another file, about 1.5 per cut in the test below (the first utterance of a piece,
#: within 4.6 s of its start); before the pieces took the whole recording's utterances, 46 of
#: 442 (both sides counted) differed on those 3 minutes, most of them far from any cut.
BOUNDARY_SECONDS = 6.0


@pytest.fixture
def start_runtime(tmp_path: Path) -> Iterator[Callable[..., ServiceRuntime]]:
    """Runtimes with two workers that split anything past 30 s into 15 s pieces."""
    with local_runtimes(
        tmp_path, workers=2, split_min_seconds=30, split_target_seconds=15
    ) as start:
        yield start


def _submit(runtime: ServiceRuntime, source: Path, tmp_path: Path) -> Job:
    copy = tmp_path / f"upload-{uuid.uuid4().hex}{source.suffix}"
    shutil.copyfile(source, copy)
    upload = ReceivedUpload(copy, source.name, None, copy.stat().st_size)
    context = RequestContext(TENANT, "alice", None, str(uuid.uuid4()))
    assert runtime.jobs is not None
    return asyncio.run(runtime.jobs.submit(context, upload)).job


def _wait(runtime: ServiceRuntime, job_id: str, timeout: float = 240.0) -> Job:
    assert runtime.store is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = runtime.store.get(job_id)
        if job.finished:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def _pieces(runtime: ServiceRuntime, job_id: str) -> list[Piece]:
    assert runtime.store is not None
    return PieceStore(runtime.store).pieces_of(job_id)


def _wait_for_pieces(
    runtime: ServiceRuntime, job_id: str, running: int, timeout: float = 120.0
) -> list[Piece]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pieces = _pieces(runtime, job_id)
        if sum(piece.status is JobStatus.RUNNING for piece in pieces) >= running:
            return pieces
        time.sleep(0.05)
    raise AssertionError(f"{running} pieces of {job_id} never ran at once")


def _transcript(runtime: ServiceRuntime, job: Job) -> Transcript:
    assert runtime.jobs is not None
    result = asyncio.run(runtime.jobs.result(job))
    assert result is not None
    return result.transcript


def _words(transcript: Transcript) -> list[Word]:
    return [word for utterance in transcript.utterances for word in utterance.words]


def _unsplit(path: Path) -> Transcript:
    """The whole file through one engine, as a worker decodes a short job."""
    output = SphinxTranscriber().transcribe(path, probe_audio(path))
    return Transcript.from_engine(output.segments, output.duration_seconds or 0.0, "sphinx")


def _only_in(words: list[Word], other: list[Word]) -> list[Word]:
    """Words of `words` that `other` does not have at the same place (same text, start within
    0.15 s)."""
    return [
        word
        for word in words
        if not any(o.text == word.text and abs(o.start - word.start) < 0.15 for o in other)
    ]


def _stored_files(tmp_path: Path) -> list[Path]:
    return [path for path in (tmp_path / "blobs").rglob("*") if path.is_file()]


def _assert_absolute_and_in_order(transcript: Transcript, duration: float) -> None:
    times = [
        (u.start, u.end) for u in transcript.utterances if u.start is not None and u.end is not None
    ]
    assert len(times) == len(transcript.utterances)
    for (start, end), (next_start, _) in itertools.pairwise(times):
        assert 0.0 <= start <= end <= next_start, (start, end, next_start)
    assert times[-1][1] <= duration
    words = _words(transcript)
    assert all(a.start <= a.end <= b.start for a, b in itertools.pairwise(words))


def test_a_long_recording_is_split_across_two_workers_and_merged_with_absolute_times(
    start_runtime: Callable[..., ServiceRuntime], tmp_path: Path
) -> None:
    runtime = start_runtime(workers=2)
    recording = make_long_wav(tmp_path / "long.wav", minutes=1.5)
    job = _submit(runtime, recording, tmp_path)
    done = _wait(runtime, job.id)
    assert done.status is JobStatus.COMPLETED, done.error_message
    assert done.progress == 1.0

    pieces = _pieces(runtime, job.id)
    assert len(pieces) >= 5
    assert {piece.status for piece in pieces} == {JobStatus.COMPLETED}
    assert runtime.supervisor is not None
    # Any worker takes any piece: both did.
    assert {piece.lease_owner for piece in pieces} == {
        slot.owner for slot in runtime.supervisor.slots
    }
    cuts = [piece.start_seconds for piece in pieces[1:]]
    # No cut falls inside a spoken word: the recording is the fixture over and over, and the
    # fixture's timing says where each of its words was spoken.
    timing = known_timing()
    spoken = [
        (copy * timing["duration"] + word["start"], copy * timing["duration"] + word["end"])
        for copy in range(int(90 // timing["duration"]) + 1)
        for sentence in timing["sentences"]
        for word in sentence["words"]
    ]
    assert not [(cut, word) for cut in cuts for word in spoken if word[0] < cut < word[1]]
    # Nothing is left in storage: neither the upload nor the pieces (deleted by the worker
    # right after the job's final transaction, so a moment after the job reads `completed`).
    assert wait_for(lambda: not _stored_files(tmp_path), timeout=30), _stored_files(tmp_path)

    transcript = _transcript(runtime, done)
    assert transcript.duration_seconds == pytest.approx(90.0, abs=0.01)
    _assert_absolute_and_in_order(transcript, 90.0)

    # The words agree with one engine decoding the whole file, except right after a cut.
    whole = _words(_unsplit(recording))
    split = _words(transcript)
    differing = _only_in(split, whole) + _only_in(whole, split)
    far = [
        (word.text, round(word.start, 2))
        for word in differing
        if not any(0.0 <= word.start - cut <= BOUNDARY_SECONDS for cut in cuts)
    ]
    assert far == [], f"words differ away from the cuts {cuts}"
    # Measured here: 9 words (counting each side of a substitution) over 6 cuts.
    assert len(differing) <= 3 * len(cuts)


def test_a_worker_killed_mid_piece_costs_only_that_piece(
    start_runtime: Callable[..., ServiceRuntime], tmp_path: Path
) -> None:
    runtime = start_runtime(workers=2)
    supervisor = runtime.supervisor
    assert supervisor is not None
    job = _submit(runtime, make_long_wav(tmp_path / "long.wav", minutes=1.5), tmp_path)
    _wait_for_pieces(runtime, job.id, running=1)
    deadline = time.monotonic() + 30
    while not any(slot.piece is not None for slot in supervisor.slots):
        assert time.monotonic() < deadline, "no worker reported a piece"
        time.sleep(0.02)
    victim = next(slot for slot in supervisor.slots if slot.piece is not None)
    killed_piece = victim.piece
    assert victim.process.pid is not None
    os.kill(victim.process.pid, signal.SIGKILL)

    done = _wait(runtime, job.id)
    assert done.status is JobStatus.COMPLETED, done.error_message
    attempts = {piece.seq: piece.attempts for piece in _pieces(runtime, job.id)}
    assert attempts[killed_piece] == 2  # type: ignore[index]
    assert {n for n, count in attempts.items() if count != 1} == {killed_piece}
    assert supervisor.replacements == 1
    _assert_absolute_and_in_order(_transcript(runtime, done), 90.0)


def test_cancelling_a_split_job_stops_all_its_pieces(
    start_runtime: Callable[..., ServiceRuntime], tmp_path: Path
) -> None:
    runtime = start_runtime(workers=2)
    supervisor = runtime.supervisor
    assert supervisor is not None
    job = _submit(runtime, make_long_wav(tmp_path / "long.wav", minutes=3), tmp_path)
    _wait_for_pieces(runtime, job.id, running=2)
    assert runtime.jobs is not None
    cancelled = asyncio.run(runtime.jobs.cancel(job.id, TENANT))
    assert cancelled.status is JobStatus.CANCELLED

    # Every worker busy with one of its pieces is stopped and replaced...
    deadline = time.monotonic() + 30
    while any(slot.job_id == job.id for slot in supervisor.slots) or supervisor.replacements < 1:
        assert time.monotonic() < deadline, "a piece of the cancelled job kept running"
        time.sleep(0.05)
    # ... no piece runs or starts afterwards, and the pieces' audio is swept away.
    time.sleep(1.0)
    pieces = _pieces(runtime, job.id)
    assert {piece.status for piece in pieces} <= {JobStatus.CANCELLED, JobStatus.COMPLETED}
    assert sum(piece.status is JobStatus.CANCELLED for piece in pieces) >= 2
    assert all(slot.job_id != job.id for slot in supervisor.slots)
    assert runtime.store is not None
    assert runtime.store.get(job.id).status is JobStatus.CANCELLED
    deadline = time.monotonic() + 30
    while list((tmp_path / "blobs").rglob("*.flac")):
        assert time.monotonic() < deadline, "the cancelled job's pieces stayed in storage"
        time.sleep(0.2)
    # The workers take the next job.
    after = _submit(runtime, speech_fixture("wav", short=True), tmp_path)
    assert _wait(runtime, after.id).status is JobStatus.COMPLETED


def _speech_without_pauses(path: Path, copies: int) -> Path:
    """The fixture's sentences with the pauses between them taken out, repeated: a minute of
    speech in which the voice activity detector finds no silence at all."""
    source = speech_fixture("flac")
    pcm = b"".join(iter_pcm(source))
    with tempfile.TemporaryFile() as spool:
        regions = analyse(source, spool).regions
    speech = b"".join(pcm[int(a * SAMPLE_RATE) * 2 : int(b * SAMPLE_RATE) * 2] for a, b in regions)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        for _ in range(copies):
            out.writeframes(speech)
    return path


def test_speech_without_a_pause_longer_than_the_target_is_still_split_safely(
    start_runtime: Callable[..., ServiceRuntime], tmp_path: Path
) -> None:
    recording = _speech_without_pauses(tmp_path / "no-pauses.wav", copies=3)
    duration = probe_audio(recording).duration_seconds
    with tempfile.TemporaryFile() as spool:
        assert len(analyse(recording, spool).regions) == 1  # one stretch of speech
    # A piece here is one long utterance, decoded in one call that holds the interpreter: the
    # lease must outlast it (the default lease does; the other tests' short one may not).
    runtime = start_runtime(
        workers=2, split_min_seconds=20, split_target_seconds=10, job_lease_seconds=30
    )
    job = _submit(runtime, recording, tmp_path)
    done = _wait(runtime, job.id)
    assert done.status is JobStatus.COMPLETED, done.error_message
    pieces = _pieces(runtime, job.id)
    assert len(pieces) >= 3
    assert any(piece.cut_in_speech for piece in pieces)
    assert all(piece.duration_seconds <= 1.5 * 10 + 0.5 for piece in pieces)
    transcript = _transcript(runtime, done)
    _assert_absolute_and_in_order(transcript, duration)
    # Cut at its quietest moments, the speech keeps most of its words: measured against what
    # was said, the split transcript is about as good as the whole file decoded at once (which
    # the engine itself cuts every 20 s in speech this long).
    reference = " ".join([known_text()] * 3)
    split_wer = word_error_rate(reference, transcript.raw_text)
    whole_wer = word_error_rate(reference, _unsplit(recording).raw_text)
    assert split_wer <= whole_wer + 0.1


def test_a_piece_decoded_with_the_whole_recordings_utterances_has_the_same_words(
    tmp_path: Path,
) -> None:
    recording = make_long_wav(tmp_path / "minute.wav", minutes=1)
    engine = SphinxTranscriber()
    whole = engine.transcribe(recording, probe_audio(recording))
    with tempfile.TemporaryFile() as spool:
        analysis = analyse(recording, spool)
        plans = plan_pieces(analysis, 15.0)
        assert len(plans) >= 4
        words: list[tuple[str, float]] = []
        for seq, plan in enumerate(plans):
            piece = write_flac(read_pcm(spool, plan), tmp_path / f"{seq}.flac")
            output = engine.transcribe_regions(piece, regions_of(analysis, plan))
            words += [
                (word.text, round(word.start + plan.start_seconds, 2))
                for segment in output.segments
                for word in segment.words
            ]
    expected = [(w.text, round(w.start, 2)) for s in whole.segments for w in s.words]
    assert words == expected
