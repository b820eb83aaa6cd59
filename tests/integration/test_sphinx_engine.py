"""Real speech through the real embedded engine, in every upload format.

Accuracy bound: on these synthetic-voice fixtures the engine measured a word error rate (raw text
against the known sentences) of 0.596 (WAV, FLAC), 0.561 (MP3), 0.526 (M4A) and 0.211
(WebM/Opus); the output is deterministic per file. The bound leaves a margin over the worst, so
a regression that loses most of the words (a broken resampler, a dropped utterance, the wrong
sample rate) fails while normal variation does not.
"""

from __future__ import annotations

import asyncio
import re
import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from batchscribe.pipeline.audio import SAMPLE_RATE, iter_pcm, probe_audio
from batchscribe.pipeline.cleaners.rules import RulesCleaner
from batchscribe.pipeline.exceptions import InvalidAudioError, TranscriptionError
from batchscribe.pipeline.transcribers import build_transcriber
from batchscribe.pipeline.transcribers.sphinx import SphinxTranscriber
from batchscribe.pipeline.types import Transcript
from tests.support.audio import (
    BAD_INPUTS,
    SPEECH_FORMATS,
    known_sentences,
    known_text,
    make_long_wav,
    speech_fixture,
    word_error_rate,
)

MAX_WER = 0.75
#: Words recognised in every format: from the first, second and third sentences.
ANCHOR_WORDS = ("weather", "sales", "customer")


@pytest.fixture(scope="module")
def engine() -> SphinxTranscriber:
    """One model load (about a second) for the whole module."""
    return SphinxTranscriber()


def transcribe(engine: SphinxTranscriber, path: Path) -> Transcript:
    """What the worker does: header probe, engine, Transcript."""
    info = probe_audio(path, decode=not engine.decodes_locally)
    out = engine.transcribe(path, info)
    return Transcript.from_engine(
        out.segments, out.duration_seconds or info.duration_seconds, engine.name
    )


def write_wav(path: Path, pcm: bytes) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm)
    return path


@pytest.mark.parametrize(
    "fmt",
    [pytest.param(f, marks=() if f == "wav" else pytest.mark.slow) for f in SPEECH_FORMATS],
)
def test_known_sentences_are_recognised_in_every_format(
    engine: SphinxTranscriber, fmt: str
) -> None:
    transcript = transcribe(engine, speech_fixture(fmt))
    raw = transcript.raw_text

    assert transcript.engine == "sphinx"
    assert transcript.duration_seconds == pytest.approx(20.17, abs=0.03)
    # Five sentences separated by pauses: the VAD finds five utterances, one turn of SPEAKER_0.
    assert len(transcript.utterances) == len(known_sentences())
    assert raw.startswith("SPEAKER_0: ")
    assert raw.count("\n") == 0
    assert word_error_rate(known_text(), raw) <= MAX_WER
    for word in ANCHOR_WORDS:
        assert word in raw

    cleaned = RulesCleaner().clean_transcript(transcript).text
    assert cleaned.startswith("SPEAKER_0: ")
    sentences = re.split(r"(?<=[.?!]) ", cleaned.removeprefix("SPEAKER_0: "))
    assert len(sentences) == len(known_sentences())
    for sentence in sentences:
        assert sentence[0].isupper()
        assert sentence[-1] in ".?!"


@pytest.mark.parametrize("fmt", SPEECH_FORMATS)
def test_short_recording_in_every_format(engine: SphinxTranscriber, fmt: str) -> None:
    transcript = transcribe(engine, speech_fixture(fmt, short=True))
    assert transcript.duration_seconds == pytest.approx(2.54, abs=0.03)
    assert len(transcript.utterances) == 1
    assert "everyone" in transcript.raw_text


def test_build_transcriber_gives_the_sphinx_engine() -> None:
    class _Settings:
        transcriber = "sphinx"

    engine = build_transcriber(_Settings())  # type: ignore[arg-type]
    assert engine.name == "sphinx"
    assert engine.decodes_locally is True


def test_wav_header_without_samples_is_invalid_audio(engine: SphinxTranscriber) -> None:
    path = BAD_INPUTS / "no_samples.wav"
    info = probe_audio(path, decode=False)  # the header alone passes
    with pytest.raises(InvalidAudioError, match="zero duration"):
        engine.transcribe(path, info)


def test_truncated_mp3_gives_the_sentences_before_the_cut(engine: SphinxTranscriber) -> None:
    transcript = transcribe(engine, BAD_INPUTS / "truncated.mp3")
    assert 6.0 < transcript.duration_seconds < 10.0
    assert "weather" in transcript.raw_text
    assert "customer" not in transcript.raw_text  # third sentence, after the cut


def test_silence_gives_an_empty_transcript_not_an_error(
    engine: SphinxTranscriber, tmp_path: Path
) -> None:
    transcript = transcribe(engine, write_wav(tmp_path / "silence.wav", bytes(SAMPLE_RATE * 4)))
    assert transcript.duration_seconds == 2.0
    assert transcript.utterances == []
    assert transcript.raw_text == ""


@pytest.fixture(scope="module")
def last_sentence_pcm() -> bytes:
    """16 kHz PCM of the fixture from just before the last sentence (which starts at 16.9 s)."""
    pcm = b"".join(iter_pcm(speech_fixture("flac")))
    return pcm[int(16.5 * SAMPLE_RATE) * 2 :]


@pytest.mark.parametrize("extra_samples", [0, 100])  # frame-aligned end, and not
def test_recording_that_stops_mid_sentence_keeps_its_last_words(
    engine: SphinxTranscriber, tmp_path: Path, last_sentence_pcm: bytes, extra_samples: int
) -> None:
    # 1.44 s into the sentence (a multiple of the VAD's 30 ms frame), the speech is cut.
    cut = (int(1.44 * SAMPLE_RATE) + extra_samples) * 2
    transcript = transcribe(engine, write_wav(tmp_path / "cut.wav", last_sentence_pcm[:cut]))
    assert len(transcript.utterances) == 1
    assert transcript.utterances[0].text


def test_long_utterances_are_decoded_in_bounded_pieces(
    tmp_path: Path, last_sentence_pcm: bytes
) -> None:
    capped = SphinxTranscriber(max_utterance_seconds=1.0)
    transcript = transcribe(capped, write_wav(tmp_path / "one.wav", last_sentence_pcm))
    # One 2.6 s sentence, decoded in pieces of at most a second.
    assert len(transcript.utterances) >= 2


class _FailingDecoder:
    def start_utt(self) -> None:
        pass

    def process_raw(self, data: bytes, full_utt: bool = False) -> None:
        raise RuntimeError("search failed")

    def end_utt(self) -> None:
        pass


def test_decoder_failure_is_a_transcription_error(
    engine: SphinxTranscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "_decoder", _FailingDecoder())
    path = speech_fixture("wav", short=True)
    with pytest.raises(TranscriptionError, match="Try again") as excinfo:
        engine.transcribe(path, probe_audio(path, decode=False))
    assert not isinstance(excinfo.value, InvalidAudioError)
    monkeypatch.undo()  # the real decoder again: the engine is still usable
    assert "everyone" in transcribe(engine, path).raw_text


def test_rules_cleaner_runs_on_engine_output_through_the_async_entry_point(
    engine: SphinxTranscriber,
) -> None:
    transcript = transcribe(engine, speech_fixture("webm", short=True))
    result = asyncio.run(RulesCleaner().clean(transcript))
    assert result.text.startswith("SPEAKER_0: ")
    body = result.text.removeprefix("SPEAKER_0: ")
    assert body[0].isupper()
    assert body.endswith(".")


@pytest.fixture
def rss_sampler() -> Iterator[list[int]]:
    samples: list[int] = []
    stop = threading.Event()
    process = psutil.Process()

    def sample() -> None:
        while not stop.is_set():
            samples.append(process.memory_info().rss)
            stop.wait(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


@pytest.mark.slow
def test_memory_stays_flat_on_a_long_recording(tmp_path: Path, rss_sampler: list[int]) -> None:
    # The faster decoder settings keep this test short; memory does not depend on them.
    fast = SphinxTranscriber(decoder_options={"fwdflat": False, "maxhmmpf": 3000})
    path = make_long_wav(tmp_path / "long.wav", minutes=3)
    transcript = transcribe(fast, path)
    assert transcript.duration_seconds == pytest.approx(180.0, abs=0.01)
    # Nine repetitions of the fixture: each one's first sentence is there, none is lost.
    assert transcript.raw_text.count("weather") == 9
    half = len(rss_sampler) // 2
    assert half > 5
    first, second = max(rss_sampler[:half]), max(rss_sampler[half:])
    # The WAV alone is 5.8 MB; holding it (or the decoded PCM) would show here.
    assert second - first < 4 * 2**20
