"""Hypothesis strategies for the audio pipeline (transcripts with disfluencies)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from batchscribe.pipeline.cleaners.rules import FILLERS, KEEP_DOUBLED
from batchscribe.pipeline.types import Segment, Transcript, Word

#: Content words, including the awkward ones: "i", contractions, names, a number, a word that
#: starts like a filler ("umbrella", "errand", "ahead"), hyphenated compounds.
CONTENT_WORDS = (
    "i", "i'm", "we", "you", "the", "a", "to", "report", "send", "customer", "price", "meeting",
    "Paris", "Monday", "don't", "it's", "umbrella", "errand", "ahead", "hummus", "three",
    "well-known", "e-mail", "ER", "iPhone", "about", "and", "but", "think", "good", "morning",
)  # fmt: skip
FILLER_WORDS = tuple(sorted(FILLERS))
assert not set(CONTENT_WORDS) & (FILLERS | KEEP_DOUBLED)


@dataclass(frozen=True)
class NoisyTranscript:
    """A transcript plus, for each of its utterances, the content words it was built from."""

    transcript: Transcript
    content: list[list[str]]


@st.composite
def noisy_words(draw: st.DrawFn) -> tuple[str, list[str]]:
    """One utterance: content words with fillers, stutters and repetitions mixed in.

    Returns the utterance text and the content words (in order) a perfect cleaner keeps.
    """
    words = draw(st.lists(st.sampled_from(CONTENT_WORDS), min_size=0, max_size=8))
    tokens: list[str] = []
    for word in words:
        for _ in range(draw(st.integers(0, 1))):
            filler = draw(st.sampled_from(FILLER_WORDS))
            tokens.append(filler + draw(st.sampled_from(["", ",", ""])))
        noise = draw(st.sampled_from(["plain", "plain", "stutter", "repeat"]))
        if noise == "stutter" and word.isalpha():
            cut = draw(st.integers(1, len(word)))
            tokens.append(f"{word[:cut]}-{word}")
        elif noise == "repeat" and "-" not in word:
            tokens.extend([word] * draw(st.integers(2, 3)))
        else:
            tokens.append(word)
    if draw(st.booleans()):
        tokens.append(draw(st.sampled_from(FILLER_WORDS)))
    return " ".join(tokens), words


@st.composite
def noisy_transcripts(draw: st.DrawFn) -> NoisyTranscript:
    """Several speakers' utterances (adjacent ones may share a speaker and form one turn)."""
    count = draw(st.integers(1, 6))
    utterances, content = [], []
    for _ in range(count):
        text, words = draw(noisy_words())
        if not text:
            continue
        speaker = draw(st.integers(0, 3))
        utterances.append(Segment(speaker, text))
        content.append(words)
    return NoisyTranscript(Transcript.from_engine(utterances, 1.0, "test"), content)


@st.composite
def arbitrary_transcripts(draw: st.DrawFn) -> Transcript:
    """Utterances of arbitrary printable text and punctuation: what a hosted engine might send."""
    alphabet = st.characters(
        codec="utf-8", categories=("L", "N", "P", "Zs"), exclude_characters="\n\r"
    )
    texts = draw(st.lists(st.text(alphabet, max_size=40), min_size=1, max_size=5))
    speakers = draw(st.lists(st.integers(0, 2), min_size=len(texts), max_size=len(texts)))
    segments = [Segment(s, t) for s, t in zip(speakers, texts, strict=True)]
    return Transcript.from_engine(segments, 1.0, "test")


@st.composite
def timed_transcripts(draw: st.DrawFn) -> Transcript:
    """Utterances at increasing times (a pause or none between them), some of them with text
    that could break a subtitle file: blank lines, `-->`, markup, `&`. Sometimes untimed, as
    from an engine that reports no timing."""
    alphabet = st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs"))
    fragments = st.one_of(
        st.text(alphabet, max_size=12),
        st.sampled_from(["-->", "--->", "\n\n", "\r\n", "<v x>", "</c>", "&amp;", "um", "uh"]),
    )
    count = draw(st.integers(0, 6))
    duration = draw(st.floats(1.0, 7200.0))
    timed = draw(st.booleans())
    cursor = 0.0
    pieces = []
    for _ in range(count):
        text = " ".join(draw(st.lists(fragments, min_size=1, max_size=6)))
        start = min(cursor + draw(st.floats(0.0, duration / 8)), duration)
        end = min(start + draw(st.floats(0.0, duration / 8)), duration)
        cursor = end
        words = (Word(text.split()[0], start, end, draw(st.floats(0, 1))),) if text.split() else ()
        speaker = draw(st.integers(0, 3))
        pieces.append(
            Segment(speaker, text, start, end, words) if timed else Segment(speaker, text)
        )
    return Transcript.from_engine(pieces, duration, "test")
