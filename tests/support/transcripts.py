"""Text-level forms of pipeline steps, for tests that state properties on `SPEAKER_<n>: text`.

The service itself works on `Transcript` utterances; these compose the same public functions on
the formatted text, so a test can clean or split a transcript's output again.
"""

from __future__ import annotations

from batchscribe.pipeline.cleaners.rules import clean_turn
from batchscribe.pipeline.segments import DEFAULT_MAX_WORDS, split_long_lines
from batchscribe.pipeline.types import Segment, format_turns, parse_turns


def clean_text(text: str) -> str:
    """The rules cleaner on `SPEAKER_<n>: text` lines; sentence breaks come from the
    punctuation (each turn is one utterance)."""
    return format_turns([Segment(seg.speaker, clean_turn([seg.text])) for seg in parse_turns(text)])


def split_long_text(text: str, max_words: int = DEFAULT_MAX_WORDS) -> str:
    """`split_long_lines` on a `SPEAKER_<n>: text` transcript: the same form, long turns cut
    into several labelled lines."""
    return format_turns(split_long_lines(parse_turns(text), max_words))
