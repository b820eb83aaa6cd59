"""Plain data passed between pipeline stages (picklable: it crosses process boundaries)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LABEL = re.compile(r"^SPEAKER_(\d+):\s?(.*)$")


@dataclass(frozen=True, slots=True)
class Segment:
    """One speaker turn: the speaker's number (0 = first to speak) and what they said."""

    speaker: int
    text: str

    @property
    def label(self) -> str:
        return f"SPEAKER_{self.speaker}"

    def line(self) -> str:
        return f"{self.label}: {self.text}"


@dataclass(frozen=True, slots=True)
class Transcript:
    """The transcription of one file.

    `utterances` are the engine's natural pieces in order (a VAD utterance for sphinx, a speaker
    turn for diarizing engines), speakers already renumbered 0, 1, ... by first appearance.
    `segments` merges adjacent pieces of one speaker into turns; `raw_text` is the contract's
    `SPEAKER_<n>: text` form. Cleaners may use the utterance boundaries as sentence breaks.
    """

    utterances: list[Segment]
    duration_seconds: float
    engine: str

    @classmethod
    def from_engine(cls, pieces: list[Segment], duration_seconds: float, engine: str) -> Transcript:
        return cls(renumber(pieces, merge=False), duration_seconds, engine)

    @property
    def segments(self) -> list[Segment]:
        return renumber(self.utterances)

    @property
    def raw_text(self) -> str:
        return format_turns(self.segments)


@dataclass(frozen=True, slots=True)
class CleaningResult:
    """The cleaned transcript and how it was obtained."""

    text: str
    engine: str
    degraded: bool = False
    reason: str | None = None
    details: dict[str, int] = field(default_factory=dict)

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
            out[-1] = Segment(speaker, f"{out[-1].text} {text}")
        else:
            out.append(Segment(speaker, text))
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
