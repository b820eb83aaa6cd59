"""Deepgram's pre-recorded API with speaker diarization (`TRANSCRIBER=deepgram`).

The file is streamed from disk to
`POST {DEEPGRAM_BASE_URL}/v1/listen?model=nova-3&diarize=true&smart_format=true[&language=..]`
(`DEEPGRAM_MODEL`, the job's language) with its real mimetype, so a 100 MB upload never sits in
memory. Deepgram answers one list of words, each with a speaker number, its times in seconds
from the start of the file and a confidence.

The words become pieces (`pipeline.segments.pieces_from_words`): a piece ends where the
speaker changes, after a word that ends a sentence (smart formatting punctuates), or once it
spans 20 s. So a subtitle cue is at most one speaker's sentence, and the rules cleaner, which
treats piece boundaries as sentence ends, sees the sentences Deepgram punctuated. Times are
Deepgram's, made monotonic (a word never starts before the one before it, never ends before it
starts); the raw transcript still shows one line per speaker turn.

Retries follow the hosted engines' one policy (`batchscribe.pipeline.retry`, tenacity): 429,
5xx, timeouts and connection failures are retried with exponential backoff and jitter, honouring
Deepgram's `Retry-After` up to a cap; each attempt reopens the file from disk.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from batchscribe.config import Settings
from batchscribe.pipeline.audio import AudioInfo
from batchscribe.pipeline.exceptions import EngineUnavailableError, TranscriptionError
from batchscribe.pipeline.languages import engine_language
from batchscribe.pipeline.retry import RetryableProblem, RetryPolicy, parse_retry_after
from batchscribe.pipeline.segments import monotonic_words, pieces_from_words
from batchscribe.pipeline.transcribers.base import NO_CONTROL, Control, EngineOutput
from batchscribe.pipeline.types import Segment, Word

log = logging.getLogger(__name__)

LISTEN_PATH = "/v1/listen"
QUERY = {"diarize": "true", "smart_format": "true"}
#: What Deepgram transcribes as when no language is named.
DEFAULT_LANGUAGE = "en"


def _seconds(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _confidence(value: Any) -> float | None:
    number = _seconds(value)
    return min(number, 1.0) if number is not None else None


def words_to_segments(
    words: Iterable[Mapping[str, Any]], duration: float | None = None
) -> list[Segment]:
    """Deepgram words as timed pieces of one speaker (`pieces_from_words`).

    Each word shows as its `punctuated_word` when present (smart formatting), else `word`,
    and keeps its `start`, `end` and `confidence`, times made monotonic and kept within
    `duration` (the recording's, when known). Words without a speaker
    (diarization off) are speaker 0. Speaker numbers are Deepgram's; the caller renumbers by
    first appearance.
    """
    speakers: list[int] = []
    timed: list[Word] = []
    for word in words:
        shown = " ".join(str(word.get("punctuated_word") or word.get("word") or "").split())
        if not shown:
            continue
        start = _seconds(word.get("start")) or 0.0
        end = _seconds(word.get("end")) or start
        speakers.append(int(word.get("speaker") or 0))
        timed.append(Word(shown, start, end, _confidence(word.get("confidence"))))
    return pieces_from_words(zip(speakers, monotonic_words(timed, duration), strict=True))


def _words(payload: Any) -> list[Mapping[str, Any]]:
    """`results.channels[0].alternatives[0].words`, or [] when the answer has none (silence)."""
    try:
        words = payload["results"]["channels"][0]["alternatives"][0]["words"]
    except (KeyError, IndexError, TypeError):
        return []
    if not isinstance(words, list):
        return []
    return [w for w in words if isinstance(w, Mapping)]


def _spoken_language(payload: Any, requested: str | None) -> str | None:
    """The language transcribed: the one asked for, else the one Deepgram detected, else its
    default (English); None for `multi`, which mixes languages."""
    if requested == "multi":
        return None
    if requested is not None:
        return requested
    try:
        detected = payload["results"]["channels"][0].get("detected_language")
    except (KeyError, IndexError, TypeError, AttributeError):
        detected = None
    return detected if isinstance(detected, str) and detected else DEFAULT_LANGUAGE


def _error_detail(response: httpx.Response) -> str:
    """Deepgram's own short error text (`err_msg`), bounded; never echoes request data."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, Mapping):
        message = body.get("err_msg") or body.get("message") or ""
        return str(message)[:200]
    return ""


class DeepgramTranscriber:
    """Transcribes with Deepgram, one synchronous request per file (it runs in a worker).

    429, 5xx, timeouts and connection failures are retried as `retry` says (2 retries by
    default), then reported as `EngineUnavailableError` (HTTP 503) with a Retry-After hint.
    """

    name = "deepgram"
    decodes_locally = False

    def __init__(
        self,
        settings: Settings,
        client: httpx.Client | None = None,
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        if settings.deepgram_api_key is None:
            raise EngineUnavailableError(
                "Deepgram is selected (TRANSCRIBER=deepgram) but DEEPGRAM_API_KEY is not set."
            )
        self._key = settings.deepgram_api_key
        self._model = settings.deepgram_model
        self._url = f"{settings.deepgram_base_url}{LISTEN_PATH}"
        self._timeout = httpx.Timeout(settings.deepgram_timeout_seconds)
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=self._timeout)
        self._retry = retry or RetryPolicy()

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            self._client.close()

    def transcribe(
        self, path: Path, info: AudioInfo, control: Control = NO_CONTROL
    ) -> EngineOutput:
        """Send the file (with the job's language, if any); the answer's words as timed pieces
        of one speaker."""
        language = engine_language(control.language, self.name)
        query = {"model": self._model, **QUERY}
        if language is not None:
            query["language"] = language
        payload = self._post_with_retries(path, info, query)
        words = _words(payload)
        segments = words_to_segments(words, info.duration_seconds)
        log.info(
            "deepgram transcription done",
            extra={
                "words": len(words),
                "pieces": len(segments),
                "bytes_sent": path.stat().st_size,
            },
        )
        return EngineOutput(segments, language=_spoken_language(payload, language))

    def _post_with_retries(self, path: Path, info: AudioInfo, query: Mapping[str, str]) -> Any:
        headers = {
            "Authorization": f"Token {self._key.get_secret_value()}",
            "Content-Type": info.mimetype,
            "Accept": "application/json",
        }
        return self._retry.call(
            lambda: self._post_once(path, headers, query),
            exhausted=lambda problem, attempts, retry_after: EngineUnavailableError(
                f"Deepgram is unavailable or overloaded ({problem} after {attempts} attempts). "
                "Try again in a minute.",
                retry_after=retry_after,
            ),
            logger=log,
            message="deepgram retry",
        )

    def _post_once(self, path: Path, headers: Mapping[str, str], query: Mapping[str, str]) -> Any:
        """One upload; overload answers and network failures raise `RetryableProblem`."""
        try:
            # A file object is streamed by httpx in 64 KiB reads, with its Content-Length.
            with path.open("rb") as body:
                response = self._client.post(
                    self._url,
                    params=query,
                    headers=headers,
                    content=body,
                    timeout=self._timeout,
                )
        except httpx.TimeoutException as exc:
            raise RetryableProblem("timeout") from exc
        except httpx.TransportError as exc:
            raise RetryableProblem(f"connection error ({type(exc).__name__})") from exc
        status = response.status_code
        if status in (401, 403):
            raise EngineUnavailableError(
                f"Deepgram refused the API key (HTTP {status}). Check DEEPGRAM_API_KEY."
            )
        if status == 429 or status >= 500:
            raise RetryableProblem(f"HTTP {status}", parse_retry_after(response.headers))
        if status >= 400:
            detail = _error_detail(response)
            raise TranscriptionError(
                f"Deepgram could not transcribe this file (HTTP {status}"
                + (f": {detail}" if detail else "")
                + "). Check that the recording plays, or try another format."
            )
        try:
            return response.json()
        except ValueError as exc:
            raise TranscriptionError(
                "Deepgram answered with something other than its JSON format; try again later."
            ) from exc
