"""Plain data passed between pipeline stages (picklable: it crosses process boundaries)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LABEL = re.compile(r"^SPEAKER_(\d+):\s?(.*)$")


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word and where it was spoken, in seconds from the start of the recording.

    `confidence` is the engine's probability that the word is right (0 to 1), None when the
    engine gives none.
    """

    text: str
    start: float
    end: float
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of one speaker's talk: the speaker's number (0 = first to speak), what they
    said and, when the engine gives them, when (seconds from the start of the recording) and
    the words with their own times.

    `start`/`end` are None when the engine reports no timing; `words` is empty when it reports
    no words.
    """

    speaker: int
    text: str
    start: float | None = None
    end: float | None = None
    words: tuple[Word, ...] = ()

    @property
    def label(self) -> str:
        return f"SPEAKER_{self.speaker}"

    @property
    def timed(self) -> bool:
        return self.start is not None and self.end is not None

    def line(self) -> str:
        return f"{self.label}: {self.text}"

    def with_text(self, text: str) -> Segment:
        """The same stretch of audio (speaker, times, words) showing other text."""
        return Segment(self.speaker, text, self.start, self.end, self.words)


@dataclass(frozen=True, slots=True)
class Transcript:
    """The transcription of one file.

    `utterances` are the engine's natural pieces in order (a VAD utterance for sphinx, one
    speaker's sentence for Deepgram, a server segment for OpenAI-compatible engines), speakers
    already renumbered 0, 1, ... by first appearance, each with its times and words when the
    engine gives them. `segments` merges adjacent pieces of one speaker into turns (a turn spans
    its first piece's start to its last piece's end);
    `raw_text` is the contract's `SPEAKER_<n>: text` form. Cleaners may use the utterance
    boundaries as sentence breaks; subtitles show one cue per utterance.

    `language` is the spoken language as a BCP-47 code (`en`), None when the engine did not say.
    """

    utterances: list[Segment]
    duration_seconds: float
    engine: str
    language: str | None = None

    @classmethod
    def from_engine(
        cls,
        pieces: list[Segment],
        duration_seconds: float,
        engine: str,
        language: str | None = None,
    ) -> Transcript:
        return cls(renumber(pieces, merge=False), duration_seconds, engine, language)

    @property
    def segments(self) -> list[Segment]:
        return renumber(self.utterances)

    @property
    def raw_text(self) -> str:
        return format_turns(self.segments)


@dataclass(frozen=True, slots=True)
class CleaningResult:
    """The cleaned transcript and how it was obtained.

    `segments`, when the cleaner gives them, are the transcript's utterances one for one (same
    speaker, times and words) showing their cleaned text, "" for a piece that held only fillers;
    the turns of `text` are their non-empty texts joined by spaces. Empty when the cleaner could
    not give them (a fallback to the raw text): a subtitle then shows the raw utterances.
    """

    text: str
    engine: str
    degraded: bool = False
    reason: str | None = None
    details: dict[str, int] = field(default_factory=dict)
    segments: tuple[Segment, ...] = ()

    def as_response(self) -> dict[str, object]:
        out: dict[str, object] = {"engine": self.engine, "degraded": self.degraded}
        if self.reason:
            out["reason"] = self.reason
        return out


def renumber(segments: list[Segment], *, merge: bool = True) -> list[Segment]:
    """Renumber speakers 0, 1, ... in order of first appearance, normalise whitespace, drop
    empty pieces and (with `merge`) join adjacent same-speaker pieces into one turn, so the raw
    transcript follows the `SPEAKER_<n>` contract whatever numbering the engine used."""
    mapping: dict[int, int] = {}
    out: list[Segment] = []
    for seg in segments:
        text = " ".join(seg.text.split())
        if not text:
            continue
        speaker = mapping.setdefault(seg.speaker, len(mapping))
        if merge and out and out[-1].speaker == speaker:
            prev = out[-1]
            out[-1] = Segment(
                speaker,
                f"{prev.text} {text}",
                prev.start if prev.start is not None else seg.start,
                seg.end if seg.end is not None else prev.end,
                prev.words + seg.words,
            )
        else:
            out.append(Segment(speaker, text, seg.start, seg.end, seg.words))
    return out


def format_turns(segments: list[Segment]) -> str:
    """`SPEAKER_<n>: text`, one line per turn."""
    return "\n".join(seg.line() for seg in segments)


def parse_turns(text: str) -> list[Segment]:
    """Inverse of `format_turns`; lines without a label continue the previous turn."""
    segments: list[Segment] = []
    for line in text.splitlines():
        match = _LABEL.match(line.strip())
        if match:
            segments.append(Segment(int(match.group(1)), match.group(2).strip()))
        elif line.strip():
            if segments:
                last = segments[-1]
                segments[-1] = Segment(last.speaker, f"{last.text} {line.strip()}".strip())
            else:
                segments.append(Segment(0, line.strip()))
    return segments
