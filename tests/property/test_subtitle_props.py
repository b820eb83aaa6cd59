"""Properties of per-utterance cleaning and of the subtitles built from it, whatever the text
and times: the files parse with independent parsers (`srt`, `webvtt-py`), in order, inside the
recording, one cue per utterance with text."""

from __future__ import annotations

import html
from datetime import timedelta

import srt
import webvtt
from hypothesis import given
from hypothesis import strategies as st

from batchscribe.pipeline.cleaners.rules import RulesCleaner
from batchscribe.pipeline.render import cues, shown_segments, to_srt, to_vtt
from batchscribe.pipeline.types import CleaningResult, Transcript, parse_turns
from tests.strategies import NoisyTranscript, noisy_transcripts, timed_transcripts

CLEANER = RulesCleaner()
MILLISECOND = timedelta(milliseconds=1)


def check_segments_match_the_transcript(transcript: Transcript) -> None:
    result = CLEANER.clean_transcript(transcript)
    utterances = transcript.utterances
    assert [(s.speaker, s.start, s.end, s.words) for s in result.segments] == [
        (u.speaker, u.start, u.end, u.words) for u in utterances
    ]
    # Turn by turn, the cleaned transcript is its utterances' cleaned texts.
    turns: list[tuple[int, list[str]]] = []
    for seg in result.segments:
        if turns and turns[-1][0] == seg.speaker:
            turns[-1][1].append(seg.text)
        else:
            turns.append((seg.speaker, [seg.text]))
    expected = [(speaker, " ".join(t for t in texts if t)) for speaker, texts in turns]
    assert [(t.speaker, t.text) for t in parse_turns(result.text)] == expected


@given(noisy_transcripts())
def test_cleaned_segments_are_the_utterances_and_make_up_the_cleaned_text(
    noisy: NoisyTranscript,
) -> None:
    check_segments_match_the_transcript(noisy.transcript)


@given(timed_transcripts())
def test_cleaned_segments_keep_times_whatever_the_text(transcript: Transcript) -> None:
    check_segments_match_the_transcript(transcript)


@given(timed_transcripts(), st.booleans())
def test_subtitles_parse_in_order_inside_the_recording(
    transcript: Transcript, per_utterance: bool
) -> None:
    cleaning = (
        CLEANER.clean_transcript(transcript)
        if per_utterance
        else CleaningResult(transcript.raw_text, "openai")  # a cleaner of whole turns
    )
    expected = cues(transcript, cleaning)
    assert len(expected) == sum(
        1 for seg in shown_segments(transcript, cleaning) if seg.text.split()
    )

    rendered = to_srt(transcript, cleaning)
    subtitles = list(srt.parse(rendered))
    assert srt.compose(subtitles) == rendered
    assert [s.content for s in subtitles] == [f"{c.label}: {c.text}" for c in expected]
    captions = list(webvtt.from_string(to_vtt(transcript, cleaning)))
    assert [(c.voice, html.unescape(c.text)) for c in captions] == [
        (c.label, c.text) for c in expected
    ]

    end_of_recording = round(transcript.duration_seconds * 1000) + 1
    previous_start = 0
    for cue in subtitles:
        start, end = cue.start // MILLISECOND, cue.end // MILLISECOND
        assert previous_start <= start < end <= end_of_recording
        assert "\n" not in cue.content
        assert "-->" not in cue.content
        previous_start = start
    assert [c.start for c in captions] == [
        srt.timedelta_to_srt_timestamp(s.start).replace(",", ".") for s in subtitles
    ]
