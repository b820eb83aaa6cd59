"""The transcription engine interface."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from batchscribe.pipeline.audio import AudioInfo
from batchscribe.pipeline.types import Segment


@dataclass(frozen=True, slots=True)
class EngineOutput:
    """The engine's pieces in order, the duration it measured (None: use the probe's) and the
    language it heard as a BCP-47 code (None: not reported).

    Piece times are seconds from the start of the recording, in order and within
    [0, duration]; an engine that reports no timing leaves them None.
    """

    segments: list[Segment]
    duration_seconds: float | None = None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Control:
    """What the worker asks of one transcription: stop decoding past `max_seconds` of audio
    (`AudioTooLongError`: the header may have lied), and report the share of the recording done
    so far (0 to 1) through `progress`, as often as is cheap. Engines that do not decode locally
    may ignore both (their audio was measured by a full decode before).

    `language` is the job's language, a canonical BCP-47 tag already accepted for this engine
    by `pipeline.languages.check_language`; None lets the engine use its default or detect."""

    max_seconds: float | None = None
    progress: Callable[[float], None] | None = None
    language: str | None = None


NO_CONTROL = Control()


class Transcriber(Protocol):
    """Turns an audio file that already passed `probe_audio` into timed speaker pieces.

    Implementations are synchronous and run inside a worker process, one call at a time; they
    load their model in `__init__`. Speakers may be numbered in any way: the caller renumbers
    them in order of first appearance. Raise `EngineUnavailableError` when the engine cannot
    work (hosted API down, bad key), `TranscriptionError` for other engine failures.
    """

    name: str

    #: True when the engine decodes every sample itself (and raises `InvalidAudioError` when
    #: there are none), so the worker can skip the full decode in `probe_audio`.
    decodes_locally: bool

    def transcribe(
        self, path: Path, info: AudioInfo, control: Control = NO_CONTROL
    ) -> EngineOutput: ...
