"""Properties of split_long_lines and of Deepgram word grouping."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from batchscribe.pipeline.segments import split_long_lines
from batchscribe.pipeline.transcribers.deepgram import words_to_segments
from batchscribe.pipeline.types import Segment, Transcript
from tests.strategies import deepgram_word_lists, long_turns

# The contract's sentence end, written independently of the implementation.
_END = re.compile(r"[.?!][\"')\]]*$")


def _cuts(turn: Segment, pieces: list[Segment]) -> list[int]:
    positions, total = [], 0
    for piece in pieces[:-1]:
        total += len(piece.text.split())
        positions.append(total)
    return positions


@given(long_turns(max_words=40), st.integers(5, 40))
def test_split_long_lines_keeps_words_labels_and_order(turns: list[Segment], limit: int) -> None:
    out = split_long_lines(turns, max_words=limit)
    assert all(1 <= len(p.text.split()) <= limit for p in out)
    words_in = [(t.speaker, w) for t in turns for w in t.text.split()]
    words_out = [(p.speaker, w) for p in out for w in p.text.split()]
    assert words_out == words_in
    # Splitting is per turn: the result is the turns' pieces one after the other.
    assert out == [p for t in turns for p in split_long_lines([t], max_words=limit)]


@given(long_turns(max_words=40), st.integers(5, 40))
def test_split_long_lines_cuts_only_at_sentence_ends(turns: list[Segment], limit: int) -> None:
    for turn in turns:
        pieces = split_long_lines([turn], max_words=limit)
        words = turn.text.split()
        if len(words) <= limit:
            assert pieces == [turn]
            continue
        ends = [i + 1 for i, w in enumerate(words) if _END.search(w)]
        starts = [0, *ends]
        for cut in _cuts(turn, pieces):
            if cut in ends:
                continue
            # Last resort only: the sentence around this cut is longer than the limit.
            start = max(s for s in starts if s < cut)
            end = min([e for e in ends if e > cut] or [len(words)])
            assert end - start > limit


def _runs(words: list[dict[str, Any]]) -> list[tuple[int, list[str]]]:
    runs: list[tuple[int, list[str]]] = []
    for w in words:
        shown = w.get("punctuated_word") or w["word"]
        if runs and runs[-1][0] == w["speaker"]:
            runs[-1][1].append(shown)
        else:
            runs.append((w["speaker"], [shown]))
    return runs


@given(deepgram_word_lists())
def test_deepgram_words_become_one_labelled_line_per_turn(words: list[dict[str, Any]]) -> None:
    raw = Transcript.from_engine(words_to_segments(words), 1.0, "deepgram").raw_text
    lines = raw.splitlines()
    runs = _runs(words)
    assert len(lines) == len(runs)
    first_seen: dict[int, int] = {}
    for line, (speaker, shown) in zip(lines, runs, strict=True):
        label = f"SPEAKER_{first_seen.setdefault(speaker, len(first_seen))}"
        assert line.startswith(f"{label}: ")
        text = line[len(label) + 2 :]
        assert "  " not in text
        assert text == text.strip()
        assert text.split(" ") == shown
    every_word = [w for line in lines for w in line.split(" ")[1:]]
    assert every_word == [w.get("punctuated_word") or w["word"] for w in words]
