"""split_long_lines: long turns become labelled pieces of at most 500 words, cut at
sentence ends."""

from __future__ import annotations

import pytest

from batchscribe.pipeline.segments import split_long_lines
from batchscribe.pipeline.types import Segment, format_turns
from tests.support.transcripts import split_long_text


def sentences(count: int, words_each: int, end: str = ".") -> str:
    """`count` sentences of `words_each` numbered words, so order is checkable."""
    out = []
    for s in range(count):
        words = [f"w{s}_{i}" for i in range(words_each)]
        out.append(" ".join(words) + end)
    return " ".join(out)


def test_turns_under_the_limit_are_returned_untouched() -> None:
    turns = [Segment(0, "Hello  there."), Segment(1, sentences(50, 10))]  # 500 words exactly
    out = split_long_lines(turns)
    assert out == turns
    assert out[0] is turns[0]
    assert out[1] is turns[1]


def test_long_turn_is_cut_at_sentence_ends_into_pieces_of_at_most_500_words() -> None:
    text = sentences(120, 10)  # 1,200 words
    out = split_long_lines([Segment(2, text)])
    assert [len(p.text.split()) for p in out] == [500, 500, 200]
    assert all(p.speaker == 2 for p in out)
    assert all(p.text.endswith(".") for p in out)
    assert " ".join(p.text for p in out) == text


def test_pieces_pack_whole_sentences_rather_than_cutting_one() -> None:
    text = sentences(2, 300, end="?")  # two 300-word questions: 600 words
    out = split_long_lines([Segment(0, text)])
    assert [len(p.text.split()) for p in out] == [300, 300]
    assert out[0].text.endswith("?")


def test_sentence_end_may_be_followed_by_a_closing_quote() -> None:
    first = " ".join(["a"] * 7) + ' "stop!"'
    text = f"{first} " + " ".join(["b"] * 8) + "."
    out = split_long_lines([Segment(0, text)], max_words=10)
    assert [p.text for p in out] == [first, " ".join(["b"] * 8) + "."]


def test_sentence_longer_than_the_limit_is_cut_at_word_boundaries_as_a_last_resort() -> None:
    words = [f"w{i}" for i in range(1200)]  # no punctuation at all, as offline engines write
    out = split_long_lines([Segment(0, " ".join(words))])
    assert [len(p.text.split()) for p in out] == [500, 500, 200]
    assert " ".join(p.text for p in out).split() == words


def test_each_piece_formats_as_a_line_with_its_label_and_turn_order_is_kept() -> None:
    turns = [Segment(0, sentences(70, 10)), Segment(1, "Short reply."), Segment(0, "Fine.")]
    lines = format_turns(split_long_lines(turns)).splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "SPEAKER_0",
        "SPEAKER_0",
        "SPEAKER_1",
        "SPEAKER_0",
    ]
    assert lines[2] == "SPEAKER_1: Short reply."


def test_text_helper_splits_a_speaker_transcript() -> None:
    raw = f"SPEAKER_0: {sentences(3, 4)}\nSPEAKER_1: Yes."
    assert split_long_text(raw, max_words=5).splitlines() == [
        "SPEAKER_0: w0_0 w0_1 w0_2 w0_3.",
        "SPEAKER_0: w1_0 w1_1 w1_2 w1_3.",
        "SPEAKER_0: w2_0 w2_1 w2_2 w2_3.",
        "SPEAKER_1: Yes.",
    ]


def test_a_limit_below_one_word_is_refused() -> None:
    with pytest.raises(ValueError, match="max_words"):
        split_long_lines([Segment(0, "a b")], max_words=0)
