"""Properties of the rules cleaner: what it promises users about their words and speakers."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from batchscribe.pipeline.cleaners.rules import FILLERS, RulesCleaner, split_sentences
from batchscribe.pipeline.types import Transcript, parse_turns
from tests.strategies import NoisyTranscript, arbitrary_transcripts, noisy_transcripts
from tests.support.transcripts import clean_text

CLEANER = RulesCleaner()
_EDGE = "\"'()[]{},;:.?!\u2026\u2019-"


def keys(text: str) -> list[str]:
    return [k for k in (tok.strip(_EDGE).lower() for tok in text.split()) if k]


def dedup(words: list[str]) -> list[str]:
    return [w for i, w in enumerate(words) if i == 0 or words[i - 1] != w]


def group_by_turn(noisy: NoisyTranscript) -> list[list[list[str]]]:
    """The content words of each utterance, grouped into turns as the transcript groups them."""
    turns: list[list[list[str]]] = []
    previous = None
    for utterance, words in zip(noisy.transcript.utterances, noisy.content, strict=True):
        if previous is None or utterance.speaker != previous:
            turns.append([])
        turns[-1].append([w.lower() for w in words])
        previous = utterance.speaker
    return turns


@given(noisy_transcripts())
def test_labels_and_turn_order_are_kept(noisy: NoisyTranscript) -> None:
    cleaned = CLEANER.clean_transcript(noisy.transcript).text
    assert [seg.label for seg in parse_turns(cleaned)] == [
        seg.label for seg in noisy.transcript.segments
    ]
    assert len(cleaned.splitlines()) == len(noisy.transcript.segments)


@given(noisy_transcripts())
def test_every_content_word_is_kept_in_order_and_nothing_else_added(
    noisy: NoisyTranscript,
) -> None:
    cleaned = parse_turns(CLEANER.clean_transcript(noisy.transcript).text)
    for turn, utterances in zip(cleaned, group_by_turn(noisy), strict=True):
        expected = [dedup(words) for words in utterances if words]
        actual = [keys(sentence) for sentence in split_sentences(turn.text)]
        if expected:
            # One sentence per utterance that had words: same words, same order.
            assert actual == expected
        else:
            # A turn of nothing but fillers is kept (as fillers) rather than lost.
            assert actual
            assert all(k in FILLERS for sentence in actual for k in sentence)


@given(noisy_transcripts())
def test_sentences_are_capitalised_and_punctuated(noisy: NoisyTranscript) -> None:
    for turn in parse_turns(CLEANER.clean_transcript(noisy.transcript).text):
        for sentence in split_sentences(turn.text):
            assert sentence[-1] in ".?!"
            first = sentence.split()[0]
            assert first[0].isupper() or not first.islower(), sentence
        assert not re.search(r"(?<![\w'-])i(?![\w-])", turn.text), "a lone 'i' stays lower case"


@given(noisy_transcripts())
def test_cleaning_is_idempotent(noisy: NoisyTranscript) -> None:
    cleaned = CLEANER.clean_transcript(noisy.transcript).text
    assert clean_text(cleaned) == cleaned


@settings(max_examples=300)
@given(arbitrary_transcripts())
def test_arbitrary_text_keeps_labels_invents_nothing_and_is_idempotent(
    transcript: Transcript,
) -> None:
    result = CLEANER.clean_transcript(transcript)
    assert not result.degraded
    turns = parse_turns(result.text)
    assert [t.label for t in turns] == [s.label for s in transcript.segments]
    for turn, original in zip(turns, transcript.segments, strict=True):
        source = set(keys(original.text))
        source |= {part for k in source for part in k.split("-")}
        assert set(keys(turn.text)) <= source
    assert clean_text(result.text) == result.text


@given(st.text(max_size=200))
def test_clean_text_never_raises_and_is_idempotent(text: str) -> None:
    once = clean_text(text)
    assert clean_text(once) == once
