"""Deepgram's pre-recorded API with speaker diarization (`TRANSCRIBER=deepgram`).

The file is streamed from disk to
`POST {DEEPGRAM_BASE_URL}/v1/listen?diarize=true&smart_format=true` with its real mimetype, so
a 100 MB upload never sits in memory. Deepgram answers one list of words, each with a speaker
number; consecutive words of one speaker become one turn.

Retries follow the hosted engines' one policy (`batchscribe.pipeline.retry`, tenacity): 429,
5xx, timeouts and connection failures are retried with exponential backoff and jitter, honouring
Deepgram's `Retry-After` up to a cap; each attempt reopens the file from disk.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from batchscribe.config import Settings
from batchscribe.pipeline.audio import AudioInfo
from batchscribe.pipeline.exceptions import EngineUnavailableError, TranscriptionError
from batchscribe.pipeline.retry import RetryableProblem, RetryPolicy, parse_retry_after
from batchscribe.pipeline.transcribers.base import NO_CONTROL, Control, EngineOutput
from batchscribe.pipeline.types import Segment

log = logging.getLogger(__name__)

LISTEN_PATH = "/v1/listen"
QUERY = {"diarize": "true", "smart_format": "true"}


def words_to_segments(words: Iterable[Mapping[str, Any]]) -> list[Segment]:
    """Group Deepgram words into turns: a new turn whenever the speaker changes.

    Each word shows as its `punctuated_word` when present (smart formatting), else `word`;
    a turn's words are joined by single spaces. Words without a speaker (diarization off) are
    speaker 0. Speaker numbers are Deepgram's; the caller renumbers by first appearance.
    """
    segments: list[Segment] = []
    current_speaker: int | None = None
    current: list[str] = []
    for word in words:
        shown = word.get("punctuated_word") or word.get("word") or ""
        pieces = str(shown).split()
        if not pieces:
            continue
        speaker = int(word.get("speaker") or 0)
        if speaker != current_speaker and current:
            segments.append(Segment(current_speaker or 0, " ".join(current)))
            current = []
        current_speaker = speaker
        current.extend(pieces)
    if current:
        segments.append(Segment(current_speaker or 0, " ".join(current)))
    return segments


def _words(payload: Any) -> list[Mapping[str, Any]]:
    """`results.channels[0].alternatives[0].words`, or [] when the answer has none (silence)."""
    try:
        words = payload["results"]["channels"][0]["alternatives"][0]["words"]
    except (KeyError, IndexError, TypeError):
        return []
    if not isinstance(words, list):
        return []
    return [w for w in words if isinstance(w, Mapping)]


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
        """Send the file, group the answer's words into speaker turns."""
        payload = self._post_with_retries(path, info)
        words = _words(payload)
        segments = words_to_segments(words)
        log.info(
            "deepgram transcription done",
            extra={"words": len(words), "turns": len(segments), "bytes_sent": path.stat().st_size},
        )
        return EngineOutput(segments)

    def _post_with_retries(self, path: Path, info: AudioInfo) -> Any:
        headers = {
            "Authorization": f"Token {self._key.get_secret_value()}",
            "Content-Type": info.mimetype,
            "Accept": "application/json",
        }
        return self._retry.call(
            lambda: self._post_once(path, headers),
            exhausted=lambda problem, attempts, retry_after: EngineUnavailableError(
                f"Deepgram is unavailable or overloaded ({problem} after {attempts} attempts). "
                "Try again in a minute.",
                retry_after=retry_after,
            ),
            logger=log,
            message="deepgram retry",
        )

    def _post_once(self, path: Path, headers: Mapping[str, str]) -> Any:
        """One upload; overload answers and network failures raise `RetryableProblem`."""
        try:
            # A file object is streamed by httpx in 64 KiB reads, with its Content-Length.
            with path.open("rb") as body:
                response = self._client.post(
                    self._url,
                    params=QUERY,
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
