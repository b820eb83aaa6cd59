"""The rules cleaner on examples a reader can check by eye."""

from __future__ import annotations

import asyncio

import pytest

from batchscribe.pipeline.cleaners import build_cleaner
from batchscribe.pipeline.cleaners.rules import RulesCleaner, clean_sentence
from batchscribe.pipeline.types import Segment, Transcript
from tests.support.transcripts import clean_text

CLEANER = RulesCleaner()


def transcript(*pieces: tuple[int, str]) -> Transcript:
    return Transcript.from_engine([Segment(s, t) for s, t in pieces], 12.0, "test")


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("um so we uh need the report", "So we need the report."),
        ("i think er the price is hmm fine", "I think the price is fine."),
        ("well, um, the meeting is on monday", "Well, the meeting is on monday."),
        ("mm-hmm that works uh-huh", "That works."),
        ("erm ah we start at ten", "We start at ten."),
        ("I-I think th-the customer called", "I think the customer called."),
        ("w-w-what did she say?", "What did she say?"),
        ("the the report is is ready", "The report is is ready."),
        ("we we we need to to go", "We need to go."),
        ("i'm sure i'll go and i've said i'd go", "I'm sure I'll go and I've said I'd go."),
        ("is it done?", "Is it done?"),
        ("great!", "Great!"),
        ("we went home,", "We went home."),
        ("already Capitalised sentence.", "Already Capitalised sentence."),
        ("iPhone sales are up", "iPhone sales are up."),
    ],
)
def test_sentence_examples(raw: str, cleaned: str) -> None:
    assert clean_sentence(raw) == cleaned


@pytest.mark.parametrize(
    "meant",
    [
        "I had had enough.",
        "I know that that is true.",
        "No, no, that is wrong.",
        "Bye bye.",
        "It was very very good.",
        "Uh-uh, not today.",
        "He works in the ER now.",
        "The so-so results came in twenty twenty.",
        "A well-known e-mail.",
        "Hummus for the umbrella errand ahead.",
    ],
)
def test_meant_words_are_never_touched(meant: str) -> None:
    assert clean_sentence(meant) == meant


def test_each_utterance_becomes_a_sentence_and_turns_keep_their_labels() -> None:
    result = CLEANER.clean_transcript(
        transcript(
            (5, "um hello everyone"),
            (5, "so uh the the numbers are in"),
            (9, "great i'll i'll take a look"),
            (5, "thanks"),
        )
    )
    assert result.text == (
        "SPEAKER_0: Hello everyone. So the numbers are in.\n"
        "SPEAKER_1: Great I'll take a look.\n"
        "SPEAKER_0: Thanks."
    )
    assert result.engine == "rules"
    assert not result.degraded
    assert result.details["fillers_removed"] == 2
    assert result.details["repetitions_removed"] == 2
    assert result.details["sentences"] == 4


def test_a_turn_of_only_fillers_is_kept_not_dropped() -> None:
    result = CLEANER.clean_transcript(
        transcript((0, "so what do you think"), (1, "mm-hmm"), (0, "um uh"), (0, "good"))
    )
    assert result.text == "SPEAKER_0: So what do you think.\nSPEAKER_1: Mm-hmm.\nSPEAKER_0: Good."


def test_filler_only_utterance_inside_a_turn_disappears() -> None:
    result = CLEANER.clean_transcript(transcript((0, "first point"), (0, "uh"), (0, "second")))
    assert result.text == "SPEAKER_0: First point. Second."


def test_existing_punctuation_splits_sentences() -> None:
    assert clean_text("SPEAKER_0: hello. how are you? um fine") == (
        "SPEAKER_0: Hello. How are you? Fine."
    )


def test_output_cleaned_again_is_unchanged() -> None:
    once = CLEANER.clean_transcript(
        transcript((0, "um i-i think the the plan uh works"), (1, "uh-huh"), (0, "ok then"))
    ).text
    assert clean_text(once) == once


def test_empty_transcript_cleans_to_empty_text() -> None:
    assert CLEANER.clean_transcript(transcript()).text == ""


def test_async_clean_matches_sync_core_and_build_cleaner_picks_it() -> None:
    class _Settings:
        cleaner = "rules"

    cleaner = build_cleaner(_Settings())  # type: ignore[arg-type]
    assert isinstance(cleaner, RulesCleaner)
    t = transcript((0, "um hello"), (1, "hi there"))

    async def run() -> str:
        try:
            return (await cleaner.clean(t)).text
        finally:
            await cleaner.aclose()

    assert asyncio.run(run()) == CLEANER.clean_transcript(t).text


def test_a_cleaner_bug_degrades_to_the_raw_text(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: RulesCleaner, t: Transcript) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(RulesCleaner, "clean_transcript", broken)
    t = transcript((0, "um hello"))
    result = asyncio.run(RulesCleaner().clean(t))
    assert result.degraded
    assert result.text == "SPEAKER_0: um hello"
    assert result.reason == "cleaner_error"


def test_long_transcripts_are_cleaned_off_the_event_loop_with_the_same_result() -> None:
    t = transcript(*[(i % 2, "um the the weather is uh nice today") for i in range(300)])

    async def run() -> str:
        return (await RulesCleaner().clean(t)).text

    text = asyncio.run(run())
    assert text == CLEANER.clean_transcript(t).text
    assert text.splitlines()[0] == "SPEAKER_0: The weather is nice today."
