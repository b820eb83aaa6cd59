"""Merging the pieces of a long recording (SPEC 16): segments and words in order, every time
moved to its place in the recording, speakers and language kept."""

from __future__ import annotations

import itertools
import time

import pytest

from batchscribe.jobs.models import JobStatus
from batchscribe.jobs.pieces import Piece, PieceOutput
from batchscribe.jobs.splitting import merge_pieces
from batchscribe.pipeline.types import Segment, Word


def _piece(seq: int, start: float, output: PieceOutput) -> Piece:
    now = time.time()
    return Piece(
        id=f"job.{seq}", job_id="job", seq=seq, pieces=3, status=JobStatus.COMPLETED,
        priority=0, start_seconds=start, duration_seconds=output.duration_seconds,
        cut_in_speech=False, audio_key="", progress=1.0, attempts=1, lease_owner="w",
        lease_expires_at=None, next_attempt_at=now, deadline_at=None, created_at=now,
        updated_at=now, started_at=now, finished_at=now, error_code=None, error_message=None,
        result_json=output.to_json(), regions_json=None,
    )  # fmt: skip


def _said(text: str, start: float) -> Segment:
    words = tuple(
        Word(word, start + 0.5 * n, start + 0.5 * n + 0.4, 0.9)
        for n, word in enumerate(text.split())
    )
    return Segment(0, text, words[0].start, words[-1].end, words)


def test_pieces_merge_in_order_with_times_absolute_in_the_recording() -> None:
    outputs = [
        PieceOutput([_said("the weather is nice", 1.0), _said("today", 100.0)], 118.5, "en"),
        PieceOutput([_said("please send the report", 0.2)], 60.25, "en"),
        PieceOutput([], 30.0, "en"),  # a piece of silence
    ]
    starts = [0.0, 118.5, 178.75]
    # Stored out of order: the merge goes by sequence number.
    pieces = [_piece(seq, starts[seq], outputs[seq]) for seq in (2, 0, 1)]
    transcript = merge_pieces(pieces, "sphinx")

    assert transcript.duration_seconds == 208.75
    assert transcript.language == "en"
    assert [u.text for u in transcript.utterances] == [
        "the weather is nice",
        "today",
        "please send the report",
    ]
    third = transcript.utterances[2]
    assert (third.start, third.words[0].start) == (118.7, 118.7)
    assert third.words[-1].end == pytest.approx(118.5 + 0.2 + 1.5 + 0.4)
    words = [w for u in transcript.utterances for w in u.words]
    assert all(a.end <= b.start for a, b in itertools.pairwise(words))
    assert transcript.raw_text == ("SPEAKER_0: the weather is nice today please send the report")


def test_a_piece_transcript_survives_its_stored_form() -> None:
    output = PieceOutput([_said("thank you", 3.25)], 42.0, None)
    assert PieceOutput.from_json(output.to_json()) == output
