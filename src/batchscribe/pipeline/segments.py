"""Cutting long speaker turns into pieces a language model can clean in one request.

`split_long_lines` keeps every word, in order, and every piece keeps its speaker, so formatting
a piece gives a line that starts with its `SPEAKER_<n>:` label. Turns at or under the limit are
returned untouched. A long turn is cut only where a sentence ends (a word ending in `.`, `?` or
`!`, optionally followed by closing quotes or brackets); sentences are packed greedily so pieces
are as large as the limit allows. As a last resort, a single sentence longer than the limit (an
unpunctuated stretch, which offline engines produce) is cut at word boundaries every
`max_words` words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from batchscribe.pipeline.types import Segment, Word

DEFAULT_MAX_WORDS = 500
#: A stretch of one speaker without a sentence end is cut into pieces of about this length.
MAX_PIECE_SECONDS = 20.0

# A word that ends a sentence: terminal punctuation, then maybe closing quotes or brackets.
_SENTENCE_END = re.compile(r"[.?!][\"'\u201d\u2019)\]]*$")


def ends_sentence(word: str) -> bool:
    """True when `word` closes a sentence (`done.`, `really?!`, `"stop!"`)."""
    return _SENTENCE_END.search(word) is not None


def _sentences(words: list[str]) -> list[list[str]]:
    sentences: list[list[str]] = []
    current: list[str] = []
    for word in words:
        current.append(word)
        if ends_sentence(word):
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences


def _split_words(words: list[str], max_words: int) -> list[list[str]]:
    pieces: list[list[str]] = []
    current: list[str] = []
    for sentence in _sentences(words):
        if len(current) + len(sentence) <= max_words:
            current.extend(sentence)
            continue
        if current:
            pieces.append(current)
            current = []
        # Last resort: a sentence longer than the limit is cut at word boundaries; its tail
        # starts the next piece, which later sentences may still join.
        while len(sentence) > max_words:
            pieces.append(sentence[:max_words])
            sentence = sentence[max_words:]
        current = list(sentence)
    if current:
        pieces.append(current)
    return pieces


def split_long_lines(segments: list[Segment], max_words: int = DEFAULT_MAX_WORDS) -> list[Segment]:
    """Split every turn longer than `max_words` words into pieces of at most `max_words` words.

    Pieces of one turn are consecutive and carry the turn's speaker; joining their words with
    single spaces gives the turn's words back. Shorter turns are returned as they are.
    """
    if max_words < 1:
        raise ValueError("max_words must be at least 1")
    out: list[Segment] = []
    for segment in segments:
        words = segment.text.split()
        if len(words) <= max_words:
            out.append(segment)
            continue
        out.extend(
            Segment(segment.speaker, " ".join(piece)) for piece in _split_words(words, max_words)
        )
    return out


def monotonic_words(words: Iterable[Word], duration: float | None = None) -> list[Word]:
    """Words in the order given with times made monotonic and within the recording: a word
    never starts before the one before it nor ends before it starts, and nothing passes
    `duration` (engines round, and some report a last word past the end)."""
    out: list[Word] = []
    floor = 0.0
    ceiling = duration if duration is not None else float("inf")
    for word in words:
        start = min(max(word.start, floor), ceiling)
        end = min(max(word.end, start), ceiling)
        out.append(Word(word.text, start, end, word.confidence))
        floor = start
    return out


def pieces_from_words(
    words: Iterable[tuple[int, Word]], max_seconds: float = MAX_PIECE_SECONDS
) -> list[Segment]:
    """Timed `(speaker, word)` pairs as pieces of one speaker: a piece ends where the speaker
    changes, after a word that ends a sentence, or once it spans `max_seconds`. So a subtitle
    cue shows at most one speaker's sentence, and a cleaner that takes piece boundaries for
    sentence ends sees the sentences the engine punctuated."""
    pieces: list[Segment] = []
    speaker = 0
    current: list[Word] = []

    def close() -> None:
        text = " ".join(word.text for word in current)
        pieces.append(Segment(speaker, text, current[0].start, current[-1].end, tuple(current)))

    for who, word in words:
        if current and (
            who != speaker
            or ends_sentence(current[-1].text)
            or word.start - current[0].start >= max_seconds
        ):
            close()
            current = []
        speaker = who
        current.append(word)
    if current:
        close()
    return pieces
