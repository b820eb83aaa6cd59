"""Hypothesis strategies for the hosted engines: transcript turns and Deepgram word lists."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from batchscribe.pipeline.types import Segment

_LETTERS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzé'-", min_size=1, max_size=8)


@st.composite
def spoken_words(draw: st.DrawFn) -> str:
    """One word as an engine writes it: letters, sometimes capitalised, sometimes followed by
    a comma or a sentence end (`.`, `?`, `!`, maybe with a closing quote)."""
    word = draw(_LETTERS)
    if draw(st.booleans()):
        word = word.capitalize()
    return word + draw(st.sampled_from(["", "", "", "", ",", ".", "?", "!", '."', "?)"]))


@st.composite
def long_turns(draw: st.DrawFn, max_words: int = 40) -> list[Segment]:
    """Speaker turns of 1 to ~4x `max_words` words with sparse or no sentence ends, so some
    need splitting and some contain sentences longer than the limit."""
    count = draw(st.integers(1, 4))
    turns = []
    for _ in range(count):
        speaker = draw(st.integers(0, 3))
        words = draw(st.lists(spoken_words(), min_size=1, max_size=4 * max_words))
        turns.append(Segment(speaker, " ".join(words)))
    return turns


@st.composite
def deepgram_word_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Deepgram `words[]` entries with speakers: runs of one speaker, speakers in any order,
    `punctuated_word` present on most words (smart formatting) and missing on some."""
    words: list[dict[str, Any]] = []
    clock = 0.0
    for _ in range(draw(st.integers(0, 8))):
        speaker = draw(st.integers(0, 4))
        for bare in draw(st.lists(_LETTERS, min_size=1, max_size=6)):
            word: dict[str, Any] = {
                "word": bare,
                "start": clock,
                "end": clock + 0.2,
                "confidence": draw(st.floats(0, 1)),
                "speaker": speaker,
            }
            if draw(st.integers(0, 4)):
                word["punctuated_word"] = bare.capitalize() + draw(st.sampled_from(["", ",", "."]))
            words.append(word)
            clock += 0.25
    return words
