"""The rules cleaner utterance by utterance: what each subtitle cue shows."""

from __future__ import annotations

import asyncio

import pytest

from batchscribe.pipeline.cleaners.rules import RulesCleaner
from batchscribe.pipeline.types import Segment, Transcript, Word

CLEANER = RulesCleaner()


def timed(speaker: int, text: str, start: float, end: float) -> Segment:
    return Segment(speaker, text, start, end, (Word(text.split()[0], start, end, 0.5),))


def test_each_utterance_shows_its_own_cleaned_text_at_its_own_times() -> None:
    transcript = Transcript.from_engine(
        [
            timed(0, "um so we uh need the report", 0.4, 2.1),
            timed(0, "i-i think th-the price is fine", 3.0, 4.6),
            timed(5, "mm-hmm okay okay", 5.0, 5.8),
        ],
        6.0,
        "sphinx",
    )

    result = CLEANER.clean_transcript(transcript)

    assert [seg.text for seg in result.segments] == [
        "So we need the report.",
        "I think the price is fine.",
        "Okay.",
    ]
    assert [(s.speaker, s.start, s.end) for s in result.segments] == [
        (0, 0.4, 2.1),
        (0, 3.0, 4.6),
        (1, 5.0, 5.8),
    ]
    assert [s.words for s in result.segments] == [u.words for u in transcript.utterances]
    # The transcript users already get: the turn is its utterances' cleaned texts.
    assert result.text == (
        "SPEAKER_0: So we need the report. I think the price is fine.\nSPEAKER_1: Okay."
    )


def test_an_utterance_of_fillers_alone_shows_nothing_but_its_turn_keeps_its_words() -> None:
    transcript = Transcript.from_engine(
        [timed(0, "the budget is approved", 0.0, 1.0), timed(0, "uh um", 1.5, 2.0)], 2.0, "test"
    )

    result = CLEANER.clean_transcript(transcript)

    assert [seg.text for seg in result.segments] == ["The budget is approved.", ""]
    assert result.text == "SPEAKER_0: The budget is approved."


def test_a_turn_of_fillers_alone_keeps_them_in_its_utterances() -> None:
    transcript = Transcript.from_engine(
        [timed(0, "We agree.", 0.0, 1.0), timed(1, "mm-hmm", 1.2, 1.5), timed(1, "uh", 1.6, 1.8)],
        2.0,
        "test",
    )

    result = CLEANER.clean_transcript(transcript)

    assert [seg.text for seg in result.segments] == ["We agree.", "Mm-hmm.", "Uh."]
    assert result.text == "SPEAKER_0: We agree.\nSPEAKER_1: Mm-hmm. Uh."


def test_a_broken_cleaner_leaves_cues_to_the_raw_utterances(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(self: RulesCleaner, transcript: Transcript) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(RulesCleaner, "clean_transcript", boom)
    transcript = Transcript.from_engine([timed(0, "um hello", 0.0, 1.0)], 1.0, "test")

    result = asyncio.run(RulesCleaner().clean(transcript))

    assert result.degraded
    assert result.segments == ()  # renderers then show the engine's utterances
