"""Timestamps on real speech: the embedded engine's segment and word times against where the
synthesised fixtures really say each sentence and word (`tests/fixtures/*.timing.json`, from
espeak-ng's own word events).

Measured on these fixtures, in every format: a segment's start and end lie within 0.11 s of its
sentence's first and last audible sample, and a correctly recognised word starts within 0.066 s
of where espeak-ng put it (the worst: "please" in MP3 and WebM), also when long utterances are
cut into one-second pieces. The bounds below leave about twice that: a lost offset (word times
counted from the utterance instead of the recording, a cut piece placed at its region's start,
the endpointer's 0.3 s look-behind ignored) is off by at least 0.3 s and fails, while decoder
and endpointer frame granularity (10 ms, 30 ms) passes.

"Correctly recognised" is decided without the times: the word agrees with the sentence as a run
of two or more words in order, or it is a word of four letters or more that the sentence holds
once and the segment holds once. A misrecognised "to" where "the" was said is not a timing
error, and is left out.
"""

from __future__ import annotations

import difflib
import wave
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import srt
import webvtt

from batchscribe.pipeline.audio import SAMPLE_RATE, iter_pcm, probe_audio
from batchscribe.pipeline.cleaners.rules import RulesCleaner
from batchscribe.pipeline.render import to_srt, to_vtt
from batchscribe.pipeline.transcribers.sphinx import SphinxTranscriber
from batchscribe.pipeline.types import Segment, Transcript
from tests.support.audio import SPEECH_FORMATS, known_timing, speech_fixture

MAX_SEGMENT_EDGE_ERROR = 0.2
MAX_WORD_START_ERROR = 0.15
#: Recognised and placed in every format: from the first, second and third sentences.
ANCHOR_WORDS = {"weather", "sales", "customer"}

FORMATS = [pytest.param(f, marks=() if f == "wav" else pytest.mark.slow) for f in SPEECH_FORMATS]


@pytest.fixture(scope="module")
def engine() -> SphinxTranscriber:
    return SphinxTranscriber()


def transcribe(engine: SphinxTranscriber, path: Path) -> Transcript:
    """What the worker does: header probe, engine, Transcript."""
    info = probe_audio(path, decode=not engine.decodes_locally)
    out = engine.transcribe(path, info)
    duration = out.duration_seconds or info.duration_seconds
    return Transcript.from_engine(out.segments, duration, engine.name, out.language)


def assert_times_are_sane(transcript: Transcript) -> None:
    """Inside the recording, in order, every word inside its segment."""
    previous_end = 0.0
    for seg in transcript.utterances:
        assert seg.start is not None
        assert seg.end is not None
        assert previous_end <= seg.start < seg.end <= transcript.duration_seconds
        assert seg.words, "every sphinx segment has its words"
        assert [w.text for w in seg.words] == seg.text.split()
        word_end = seg.start
        for word in seg.words:
            assert word_end <= word.start < word.end <= seg.end
            assert word.confidence is not None
            assert 0.0 <= word.confidence <= 1.0
            word_end = word.end
        previous_end = seg.end


def sentence_of(seg: Segment, timing: dict[str, Any]) -> dict[str, Any]:
    """The known sentence the segment overlaps most."""
    assert seg.start is not None
    assert seg.end is not None
    start, end = seg.start, seg.end
    return max(timing["sentences"], key=lambda s: min(s["end"], end) - max(s["start"], start))


def placed_words(transcript: Transcript, timing: dict[str, Any]) -> dict[str, list[float]]:
    """Correctly recognised words (see the module docstring) and how far (seconds) each one's
    start is from where it was spoken."""
    errors: dict[str, list[float]] = {}
    for seg in transcript.utterances:
        known = sentence_of(seg, timing)["words"]
        said = [w["word"].lower() for w in known]
        heard = [w.text for w in seg.words]
        pairs: set[tuple[int, int]] = set()
        matcher = difflib.SequenceMatcher(a=said, b=heard, autojunk=False)
        for block in matcher.get_matching_blocks():
            if block.size >= 2:
                pairs.update((block.a + k, block.b + k) for k in range(block.size))
        said_count, heard_count = Counter(said), Counter(heard)
        for index, word in enumerate(said):
            if len(word) >= 4 and said_count[word] == 1 and heard_count[word] == 1:
                pairs.add((index, heard.index(word)))
        for i, j in pairs:
            errors.setdefault(said[i], []).append(seg.words[j].start - known[i]["start"])
    return errors


def assert_words_placed(transcript: Transcript, timing: dict[str, Any], anchors: set[str]) -> None:
    errors = placed_words(transcript, timing)
    assert anchors <= errors.keys(), f"not recognised where expected: {anchors - errors.keys()}"
    worst = max(abs(e) for es in errors.values() for e in es)
    assert worst <= MAX_WORD_START_ERROR, errors


@pytest.mark.parametrize("fmt", FORMATS)
def test_segments_lie_where_the_sentences_were_spoken(engine: SphinxTranscriber, fmt: str) -> None:
    timing = known_timing()
    transcript = transcribe(engine, speech_fixture(fmt))

    assert transcript.language == "en"
    assert_times_are_sane(transcript)
    assert len(transcript.utterances) == len(timing["sentences"])
    for seg, sentence in zip(transcript.utterances, timing["sentences"], strict=True):
        assert seg.start == pytest.approx(sentence["start"], abs=MAX_SEGMENT_EDGE_ERROR)
        assert seg.end == pytest.approx(sentence["end"], abs=MAX_SEGMENT_EDGE_ERROR)
    assert_words_placed(transcript, timing, ANCHOR_WORDS)


@pytest.mark.parametrize("fmt", FORMATS)
def test_short_recording_words_are_placed(engine: SphinxTranscriber, fmt: str) -> None:
    timing = known_timing(short=True)
    transcript = transcribe(engine, speech_fixture(fmt, short=True))

    assert_times_are_sane(transcript)
    (seg,) = transcript.utterances
    (sentence,) = timing["sentences"]
    assert seg.start == pytest.approx(sentence["start"], abs=MAX_SEGMENT_EDGE_ERROR)
    assert seg.end == pytest.approx(sentence["end"], abs=MAX_SEGMENT_EDGE_ERROR)
    assert_words_placed(transcript, timing, {"everyone"})


@pytest.mark.slow
def test_times_stay_right_across_long_utterance_cuts() -> None:
    capped = SphinxTranscriber(max_utterance_seconds=1.0)
    timing = known_timing()
    transcript = transcribe(capped, speech_fixture("flac"))

    assert_times_are_sane(transcript)
    # Five sentences of 2.4 to 3.6 s, each decoded in pieces of at most a second.
    assert len(transcript.utterances) >= 10
    for seg in transcript.utterances:
        assert seg.end is not None
        assert seg.start is not None
        assert seg.end - seg.start <= 1.0
    # "about" is in the second piece of its sentence: placed from where the first piece ended.
    assert_words_placed(transcript, timing, {"weather", "sales", "about", "thank"})


def write_wav(path: Path, pcm: bytes) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm)
    return path


@pytest.mark.parametrize("extra_samples", [0, 100])  # frame-aligned end, and not
def test_a_recording_cut_mid_sentence_ends_its_times_at_its_end(
    engine: SphinxTranscriber, tmp_path: Path, extra_samples: int
) -> None:
    # From 16.5 s: the last sentence ("Thank you for your time...") and cut 1.44 s into it.
    pcm = b"".join(iter_pcm(speech_fixture("flac")))[int(16.5 * SAMPLE_RATE) * 2 :]
    cut = (int(1.44 * SAMPLE_RATE) + extra_samples) * 2
    transcript = transcribe(engine, write_wav(tmp_path / "cut.wav", pcm[:cut]))

    assert_times_are_sane(transcript)
    (seg,) = transcript.utterances
    assert seg.end is not None
    assert seg.end <= transcript.duration_seconds
    # The sentence starts 0.39 s into this file (16.89 s in the fixture).
    last = known_timing()["sentences"][-1]
    assert seg.start == pytest.approx(last["start"] - 16.5, abs=MAX_SEGMENT_EDGE_ERROR)


def test_subtitles_of_real_speech_parse_and_show_the_cleaned_sentences(
    engine: SphinxTranscriber,
) -> None:
    transcript = transcribe(engine, speech_fixture("wav"))
    cleaning = RulesCleaner().clean_transcript(transcript)

    subtitles = list(srt.parse(to_srt(transcript, cleaning)))
    captions = list(webvtt.from_string(to_vtt(transcript, cleaning)))

    assert len(subtitles) == len(captions) == len(transcript.utterances) == 5
    for subtitle, caption, seg in zip(subtitles, captions, cleaning.segments, strict=True):
        assert subtitle.content == f"SPEAKER_0: {seg.text}"
        assert caption.voice == "SPEAKER_0"
        assert caption.text == seg.text
        assert seg.text[0].isupper()
        assert seg.text.endswith(".")
        assert seg.start is not None
        assert seg.end is not None
        assert subtitle.start.total_seconds() == pytest.approx(seg.start, abs=0.0005)
        assert subtitle.end.total_seconds() == pytest.approx(seg.end, abs=0.0005)
        assert caption.start == srt.timedelta_to_srt_timestamp(subtitle.start).replace(",", ".")
    # The cues' texts, joined, are the cleaned transcript users get.
    assert cleaning.text == "SPEAKER_0: " + " ".join(s.content[11:] for s in subtitles)
