"""A finished transcript in the forms users ask for: the cleaned text, SRT and WebVTT subtitles,
timed segments for the JSON result, and an OpenAI-style `verbose_json`.

Pure functions of the `Transcript` and its `CleaningResult`; no HTTP here.

What a cue shows: one cue per engine utterance (a VAD utterance for sphinx, a speaker's sentence
for Deepgram, a server segment for OpenAI-compatible engines), spanning the utterance's times and
showing its cleaned text (`CleaningResult.segments`, which both cleaners give). When a cleaner
gives no per-utterance text (the rules cleaner after an internal error fell back to the raw
transcript), cues show the raw utterances. An utterance whose cleaned text is empty (it held
only fillers) gets no cue.
An engine that reports no timing gets its cues laid out over the recording in order, each in
proportion to its number of words: an estimate, the best a subtitle can do without times.

Cue text is one line: whitespace is collapsed, so a cue never holds a blank line, and `-->`
(the timing arrow of both formats) is written `->`. WebVTT cue text escapes `&`, `<` and `>`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from batchscribe.pipeline.types import CleaningResult, Segment, Transcript, Word


class ResponseFormat(StrEnum):
    """The `response_format` values: the JSON result, the cleaned text, subtitles, or the
    OpenAI-style verbose JSON."""

    JSON = "json"
    TEXT = "text"
    SRT = "srt"
    VTT = "vtt"
    VERBOSE_JSON = "verbose_json"


MEDIA_TYPES: dict[ResponseFormat, str] = {
    ResponseFormat.JSON: "application/json",
    ResponseFormat.TEXT: "text/plain; charset=utf-8",
    ResponseFormat.SRT: "application/x-subrip; charset=utf-8",
    ResponseFormat.VTT: "text/vtt; charset=utf-8",
    ResponseFormat.VERBOSE_JSON: "application/json",
}

_ARROW = re.compile(r"-{2,}>")


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle cue: milliseconds from the start of the recording, speaker, one line."""

    start_ms: int
    end_ms: int
    speaker: int
    text: str

    @property
    def label(self) -> str:
        return f"SPEAKER_{self.speaker}"


def shown_segments(transcript: Transcript, cleaning: CleaningResult) -> list[Segment]:
    """The utterances as users see them: the cleaner's per-utterance text when it gave one,
    else the engine's."""
    return list(cleaning.segments) if cleaning.segments else list(transcript.utterances)


def _one_line(text: str) -> str:
    return _ARROW.sub("->", " ".join(text.split()))


def _spans(segments: Sequence[Segment], duration: float) -> list[tuple[float, float]]:
    """Every segment's (start, end) in seconds, in order and within [0, duration]."""
    if segments and all(seg.timed for seg in segments):
        spans: list[tuple[float, float]] = []
        floor = 0.0
        for seg in segments:
            start = min(max(seg.start or 0.0, floor), duration)
            end = min(max(seg.end or 0.0, start), duration)
            spans.append((start, end))
            floor = start
        return spans
    # No timing from the engine: lay the segments end to end, each by its share of the words.
    weights = [max(len(seg.text.split()), 1) for seg in segments]
    total = sum(weights)
    spans, elapsed = [], 0
    for weight in weights:
        spans.append((duration * elapsed / total, duration * (elapsed + weight) / total))
        elapsed += weight
    return spans


def cues(transcript: Transcript, cleaning: CleaningResult) -> list[Cue]:
    """One cue per shown utterance that has text, in order, each at least a millisecond long."""
    segments = shown_segments(transcript, cleaning)
    out: list[Cue] = []
    for seg, (start, end) in zip(
        segments, _spans(segments, transcript.duration_seconds), strict=True
    ):
        text = _one_line(seg.text)
        if not text:
            continue
        start_ms = round(start * 1000)
        out.append(Cue(start_ms, max(round(end * 1000), start_ms + 1), seg.speaker, text))
    return out


def _timestamp(ms: int, decimal_mark: str) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{decimal_mark}{millis:03d}"


def to_text(cleaning: CleaningResult) -> str:
    """`response_format=text`: the cleaned transcript, `SPEAKER_<n>: text` turns."""
    return cleaning.text


def to_srt(transcript: Transcript, cleaning: CleaningResult) -> str:
    """SubRip: numbered cues, `HH:MM:SS,mmm` times, the speaker as a `SPEAKER_<n>: ` prefix.
    Empty for a transcript without speech."""
    return "".join(
        f"{index}\n{_timestamp(cue.start_ms, ',')} --> {_timestamp(cue.end_ms, ',')}\n"
        f"{cue.label}: {cue.text}\n\n"
        for index, cue in enumerate(cues(transcript, cleaning), start=1)
    )


def to_vtt(transcript: Transcript, cleaning: CleaningResult) -> str:
    """WebVTT: `HH:MM:SS.mmm` times, the speaker as a voice span `<v SPEAKER_<n>>`."""
    blocks = [
        f"{_timestamp(cue.start_ms, '.')} --> {_timestamp(cue.end_ms, '.')}\n"
        f"<v {cue.label}>{html.escape(cue.text, quote=False)}\n"
        for cue in cues(transcript, cleaning)
    ]
    return "\n".join(["WEBVTT\n", *blocks])


def _seconds(value: float) -> float:
    return round(value, 3)


def _word_json(word: Word, speaker: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "word": word.text,
        "start": _seconds(word.start),
        "end": _seconds(word.end),
    }
    if word.confidence is not None:
        out["confidence"] = round(word.confidence, 3)
    if speaker is not None:
        out["speaker"] = f"SPEAKER_{speaker}"
    return out


def segments_json(transcript: Transcript, cleaning: CleaningResult) -> list[dict[str, Any]]:
    """The JSON result's `segments`: every shown utterance with text, as `{speaker, start, end,
    text, words}`; `start`/`end` are null when the engine reports no timing and `words` is
    empty when it reports no words. `text` is the cleaned text (what the cue shows); `words`
    are the engine's, with their own times and confidence."""
    return [
        {
            "speaker": seg.label,
            "start": _seconds(seg.start) if seg.start is not None else None,
            "end": _seconds(seg.end) if seg.end is not None else None,
            "text": _one_line(seg.text),
            "words": [_word_json(word) for word in seg.words],
        }
        for seg in shown_segments(transcript, cleaning)
        if _one_line(seg.text)
    ]


def to_verbose_json(transcript: Transcript, cleaning: CleaningResult) -> dict[str, Any]:
    """OpenAI's `verbose_json` shape: `text` (the cleaned transcript), `language`, `duration`,
    `segments` with `id`, `start`, `end`, `text` and `speaker`, and `words` (each with its
    speaker and, where the engine gives it, its confidence) when the engine reports words.
    Times are the cues' times."""
    segments = shown_segments(transcript, cleaning)
    shown = [
        (seg, span, text)
        for seg, span in zip(segments, _spans(segments, transcript.duration_seconds), strict=True)
        if (text := _one_line(seg.text))
    ]
    out: dict[str, Any] = {
        "task": "transcribe",
        "language": transcript.language,
        "duration": _seconds(transcript.duration_seconds),
        "text": cleaning.text,
        "segments": [
            {
                "id": index,
                "start": _seconds(start),
                "end": _seconds(end),
                "text": text,
                "speaker": seg.label,
            }
            for index, (seg, (start, end), text) in enumerate(shown)
        ],
    }
    words = [_word_json(word, seg.speaker) for seg in segments for word in seg.words]
    if words:
        out["words"] = words
    return out
