"""OpenAI-compatible transcription (`TRANSCRIBER=openai`): OpenAI, Groq, local servers.

`POST {OPENAI_BASE_URL}/audio/transcriptions` (the base URL includes `/v1`, OpenAI's convention)
through the official `openai` SDK, which lets us set the base URL. These APIs do not diarize, so
everything is `SPEAKER_0`.

Times: the file is asked for as `verbose_json` with segment and word timestamps (Whisper on
OpenAI, Groq and most local servers give them). Each of the server's segments becomes a piece
with its times and the words that start inside it; words alone (no segments) are cut into
sentences; times are made monotonic and kept within the recording. Words carry no confidence
(these APIs give none). Models that only answer plain `json` (OpenAI's `gpt-4o-*-transcribe`) are
asked for `json` from the start, and a server that refuses `verbose_json` with a 400 is asked
again for `json` (and, once that works, only for `json` after that): the text then has no
times, and subtitles lay it out over the recording. The job's language goes as `language`, in
the ISO 639-1 form these APIs take (`pt-BR` -> `pt`); the language the server reports
(`"english"`) comes back as its code.

Retries: the hosted engines' one policy (`batchscribe.pipeline.retry`, tenacity), not the SDK's
`max_retries` (switched off in `openai_client_options`). The SDK honours `Retry-After` too, but
with numbers of its own (a Retry-After of up to two minutes, 408 and 409 retried as well) and log
lines of its own. The shared policy gives the three hosted engines one count, one delay rule and
cap, one retry log line and the same final 503 with Retry-After; it takes its delays as
parameters (tiny in tests) and reopens the file from disk for each attempt.

A file over the service's upload limit (`OPENAI_MAX_UPLOAD_MB`; OpenAI's is 25 MB) is cut at
silences into FLAC pieces under the limit, sent one after the other, and merged with every time
offset to its place in the recording (`pipeline.split.transcribe_in_pieces`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import openai

from batchscribe.config import Settings
from batchscribe.pipeline.audio import AudioInfo
from batchscribe.pipeline.exceptions import EngineUnavailableError, TranscriptionError
from batchscribe.pipeline.languages import engine_language, whisper_code_for
from batchscribe.pipeline.openai_client import openai_client_options
from batchscribe.pipeline.retry import RetryableProblem, RetryPolicy, parse_retry_after
from batchscribe.pipeline.segments import monotonic_words, pieces_from_words
from batchscribe.pipeline.split import transcribe_in_pieces
from batchscribe.pipeline.transcribers.base import NO_CONTROL, Control, EngineOutput
from batchscribe.pipeline.types import Segment, Word

log = logging.getLogger(__name__)

# These servers pick the decoder from the upload's file name, so it must carry the right
# extension whatever the temporary file is called.
_EXTENSIONS = {
    "audio/wav": "wav",
    "audio/mpeg": "mp3",
    "audio/flac": "flac",
    "audio/mp4": "m4a",
    "audio/ogg": "ogg",
    "audio/webm": "webm",
}


#: Models known to answer only `json` or `text` (no timestamps).
_PLAIN_ONLY_PREFIXES = ("gpt-4o",)


def upload_name(info: AudioInfo) -> str:
    """The file name sent with the audio: `audio.<extension of its real format>`."""
    return f"audio.{_EXTENSIONS.get(info.mimetype, 'wav')}"


class _VerboseRefused(Exception):
    """The server answered 400 to a `verbose_json` request: ask again for plain `json`."""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number and number >= 0 else None  # not NaN, not negative


def _timed_words(payload: Mapping[str, Any]) -> list[Word]:
    words: list[Word] = []
    for item in payload.get("words") or ():
        if not isinstance(item, Mapping):
            continue
        text = " ".join(str(item.get("word") or "").split())
        start, end = _number(item.get("start")), _number(item.get("end"))
        if text and start is not None:
            words.append(Word(text, start, end if end is not None else start))
    return words


def pieces_from_verbose(payload: Mapping[str, Any], duration: float) -> list[Segment]:
    """OpenAI's `verbose_json` as timed pieces of speaker 0 (see the module docstring); [] when
    it has no usable segments or words (the caller keeps its text, untimed)."""
    words = monotonic_words(_timed_words(payload), duration)
    spans: list[tuple[str, float, float]] = []
    floor = 0.0
    for item in payload.get("segments") or ():
        if not isinstance(item, Mapping):
            continue
        text = " ".join(str(item.get("text") or "").split())
        start, end = _number(item.get("start")), _number(item.get("end"))
        if not text or start is None:
            continue
        start = min(max(start, floor), duration)
        end = min(max(end if end is not None else start, start), duration)
        spans.append((text, start, end))
        floor = start
    if not spans:
        return pieces_from_words((0, word) for word in words)
    pieces: list[Segment] = []
    index = 0
    for number, (text, start, end) in enumerate(spans):
        # A word belongs to the last segment that started at or before it (with a little slack
        # for rounding): every word lands in exactly one piece, in order.
        last = number + 1 == len(spans)
        next_start = spans[number + 1][1] - 0.005 if not last else float("inf")
        mine: list[Word] = []
        while index < len(words) and words[index].start < next_start:
            mine.append(words[index])
            index += 1
        pieces.append(Segment(0, text, start, end, tuple(mine)))
    return pieces


class OpenAITranscriber:
    """Transcribes with an OpenAI-compatible `/audio/transcriptions` endpoint, synchronously
    (it runs in a worker process). 429, 5xx, timeouts and connection failures are retried as
    `retry` says (2 retries by default), then reported as `EngineUnavailableError` (HTTP 503)
    with a Retry-After hint."""

    name = "openai"
    decodes_locally = False

    def __init__(
        self,
        settings: Settings,
        client: openai.OpenAI | None = None,
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        if settings.openai_api_key is None:
            raise EngineUnavailableError(
                "OpenAI transcription is selected (TRANSCRIBER=openai) "
                "but OPENAI_API_KEY is not set."
            )
        self._model = settings.openai_transcribe_model
        #: Ask for `verbose_json` (times); switched off for a server that refuses it.
        self._verbose = not self._model.startswith(_PLAIN_ONLY_PREFIXES)
        self._timeout = settings.openai_timeout_seconds
        self._owns_client = client is None
        self._client = (
            client if client is not None else openai.OpenAI(**openai_client_options(settings))
        )
        self._retry = retry or RetryPolicy()
        self._max_upload_bytes = int(settings.openai_max_upload_mb * 1_000_000)

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            self._client.close()

    def transcribe(
        self, path: Path, info: AudioInfo, control: Control = NO_CONTROL
    ) -> EngineOutput:
        """Transcribe the file in one upload, or in pieces when it is over the upload limit
        (each piece's times moved to its place in the recording)."""
        language = engine_language(control.language, self.name)
        if path.stat().st_size > self._max_upload_bytes:
            return transcribe_in_pieces(
                path,
                self._max_upload_bytes,
                lambda piece, piece_info: self._transcribe_file(piece, piece_info, language),
                control,
            )
        return self._transcribe_file(path, info, language)

    def _transcribe_file(self, path: Path, info: AudioInfo, language: str | None) -> EngineOutput:
        """Upload the file; its text as timed pieces of `SPEAKER_0` when the server gives
        times, else as one untimed piece (none if it is empty)."""
        payload: Mapping[str, Any] | None = None
        if self._verbose:
            try:
                payload = self._request_with_retries(path, info, language, verbose=True)
            except _VerboseRefused:
                log.info("the transcription server refused verbose_json; asking for json")
        if payload is None:
            payload = self._request_with_retries(path, info, language, verbose=False)
            if self._verbose and payload is not None:
                self._verbose = False  # plain json works where verbose_json did not
        text = payload.get("text")
        if not isinstance(text, str):
            raise TranscriptionError(
                "The transcription server answered without text; check OPENAI_BASE_URL."
            )
        pieces = pieces_from_verbose(payload, info.duration_seconds)
        if not pieces and text.split():
            pieces = [Segment(0, " ".join(text.split()))]
        spoken = whisper_code_for(payload.get("language")) or language
        log.info(
            "openai transcription done",
            extra={
                "words": len(text.split()),
                "chars": len(text),
                "pieces": len(pieces),
                "timed": bool(pieces) and pieces[0].timed,
            },
        )
        return EngineOutput(pieces, language=spoken)

    def _request_with_retries(
        self, path: Path, info: AudioInfo, language: str | None, *, verbose: bool
    ) -> Mapping[str, Any]:
        return self._retry.call(
            lambda: self._request_once(path, info, language, verbose=verbose),
            exhausted=lambda problem, attempts, retry_after: EngineUnavailableError(
                f"The transcription server is unavailable or overloaded ({problem} after "
                f"{attempts} attempts). Try again in a minute.",
                retry_after=retry_after,
            ),
            logger=log,
            message="openai transcription retry",
        )

    def _request_once(
        self, path: Path, info: AudioInfo, language: str | None, *, verbose: bool
    ) -> Mapping[str, Any]:
        """One upload; overload answers and network failures raise `RetryableProblem`."""
        options: dict[str, Any] = {}
        if language is not None:
            options["language"] = language
        if verbose:
            options["response_format"] = "verbose_json"
            options["timestamp_granularities"] = ["segment", "word"]
        try:
            with path.open("rb") as body:
                result = self._client.audio.transcriptions.create(
                    model=self._model,
                    file=(upload_name(info), body, info.mimetype),
                    timeout=self._timeout,
                    **options,
                )
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise EngineUnavailableError(
                f"The transcription server refused the API key (HTTP {exc.status_code}). "
                "Check OPENAI_API_KEY and OPENAI_BASE_URL."
            ) from exc
        except (openai.RateLimitError, openai.InternalServerError) as exc:
            raise RetryableProblem(
                f"HTTP {exc.status_code}", parse_retry_after(exc.response.headers)
            ) from exc
        except openai.APITimeoutError as exc:
            raise RetryableProblem("timeout") from exc
        except openai.APIConnectionError as exc:
            raise RetryableProblem("connection error") from exc
        except openai.BadRequestError as exc:
            if verbose:
                raise _VerboseRefused() from exc
            raise TranscriptionError(
                f"The transcription server could not transcribe this file (HTTP "
                f"{exc.status_code}). Check OPENAI_TRANSCRIBE_MODEL and OPENAI_BASE_URL; "
                "OpenAI accepts files up to 25 MB."
            ) from exc
        except openai.APIStatusError as exc:
            raise TranscriptionError(
                f"The transcription server could not transcribe this file (HTTP "
                f"{exc.status_code}). Check OPENAI_TRANSCRIBE_MODEL and OPENAI_BASE_URL; "
                "OpenAI accepts files up to 25 MB."
            ) from exc
        except (openai.OpenAIError, ValueError) as exc:  # ValueError: a body that is not JSON
            raise TranscriptionError(
                "The transcription server answered in an unexpected format; try again later."
            ) from exc
        # Not a JSON object (an HTML page from a proxy, plain text): no transcription answer.
        payload = result.model_dump() if hasattr(result, "model_dump") else None
        if not isinstance(payload, Mapping):
            raise TranscriptionError(
                "The transcription server answered without text; check OPENAI_BASE_URL."
            )
        return payload
