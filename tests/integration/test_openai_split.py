"""The OpenAI-compatible transcriber splits only files over its service's upload limit
(`OPENAI_MAX_UPLOAD_MB`, SPEC 16): pieces cut at silences, each under the limit, sent in order
and merged."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchscribe.config import Settings
from batchscribe.pipeline.audio import iter_pcm, probe_audio
from batchscribe.pipeline.retry import RetryPolicy
from batchscribe.pipeline.transcribers.openai import OpenAITranscriber
from batchscribe.pipeline.types import Transcript
from testkit.standins import OpenAIStandIn
from tests.support.audio import make_long_wav

FAST = RetryPolicy(first_delay=0.001, max_delay=0.05)


def _engine(standin: OpenAIStandIn, max_mb: float) -> OpenAITranscriber:
    settings = Settings(
        transcriber="openai",
        openai_api_key=standin.api_key,
        openai_base_url=standin.base_url,
        openai_max_upload_mb=max_mb,
    )
    return OpenAITranscriber(settings, retry=FAST)


def test_a_file_over_the_upload_limit_goes_in_pieces_under_it_merged_in_order(
    openai_standin: OpenAIStandIn, tmp_path: Path
) -> None:
    recording = make_long_wav(tmp_path / "minute.wav", minutes=1)  # 1.9 MB of WAV
    openai_standin.transcription_text = "hello from a piece"
    engine = _engine(openai_standin, max_mb=0.5)
    try:
        output = engine.transcribe(recording, probe_audio(recording))
    finally:
        engine.close()

    uploads = [request.form()["file"] for request in openai_standin.requests]
    assert len(uploads) >= 4
    pcm = b""
    starts: list[float] = []
    for seq, (filename, content_type, data) in enumerate(uploads):
        assert (filename, content_type) == ("audio.flac", "audio/flac")
        assert len(data) <= 500_000
        piece = tmp_path / f"sent-{seq}.flac"
        piece.write_bytes(data)
        starts.append(len(pcm) / (2 * 16_000))  # 16-bit mono at 16 kHz
        pcm += b"".join(iter_pcm(piece))
    # The pieces, in the order sent, are the recording: nothing lost, nothing twice.
    assert pcm == b"".join(iter_pcm(recording))
    assert output.duration_seconds == 60.0
    merged = Transcript.from_engine(output.segments, 60.0, "openai").raw_text
    assert merged == "SPEAKER_0: " + " ".join(["hello from a piece"] * len(uploads))
    # Each piece's answer counts from 0 (the stand-in's times); merged, they count from the
    # recording's start: every segment and word moved by its piece's place.
    assert len(output.segments) == len(uploads)
    ends = [*starts[1:], 60.0]
    for segment, start, end in zip(output.segments, starts, ends, strict=True):
        assert segment.start == pytest.approx(start, abs=0.001)
        assert segment.words[0].start == pytest.approx(start, abs=0.001)
        assert segment.end is not None
        assert segment.end <= end
    words = [word.start for segment in output.segments for word in segment.words]
    assert words == sorted(words)
    assert output.language == "en"


def test_a_file_under_the_limit_is_sent_whole(
    openai_standin: OpenAIStandIn, tmp_path: Path
) -> None:
    recording = make_long_wav(tmp_path / "minute.wav", minutes=1)
    engine = _engine(openai_standin, max_mb=25)
    try:
        engine.transcribe(recording, probe_audio(recording))
    finally:
        engine.close()
    [request] = openai_standin.requests
    assert request.form()["file"][2] == recording.read_bytes()
