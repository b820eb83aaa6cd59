"""Deepgram's pre-recorded API with speaker diarization (`TRANSCRIBER=deepgram`).

The file is streamed from disk to
`POST {DEEPGRAM_BASE_URL}/v1/listen?diarize=true&smart_format=true` with its real mimetype, so
a 100 MB upload never sits in memory. Deepgram answers one list of words, each with a speaker
number; consecutive words of one speaker become one turn.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from batchscribe.config import Settings
from batchscribe.pipeline.audio import AudioInfo
from batchscribe.pipeline.exceptions import EngineUnavailableError, TranscriptionError
from batchscribe.pipeline.retry import (
    DEFAULT_BACKOFF_SECONDS,
    DEFAULT_RETRIES,
    backoff_delay,
    parse_retry_after,
)
from batchscribe.pipeline.transcribers.base import EngineOutput
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

    429, 5xx, timeouts and connection failures are retried `retries` times with exponential
    backoff, then reported as `EngineUnavailableError` (HTTP 503). `backoff_seconds` and `sleep`
    exist so tests can retry without waiting.
    """

    name = "deepgram"
    decodes_locally = False

    def __init__(
        self,
        settings: Settings,
        client: httpx.Client | None = None,
        *,
        retries: int = DEFAULT_RETRIES,
        backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
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
        self._retries = retries
        self._backoff = backoff_seconds
        self._sleep = sleep

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            self._client.close()

    def transcribe(self, path: Path, info: AudioInfo) -> EngineOutput:
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
        attempts = self._retries + 1
        last_problem = ""
        retry_after: int | None = None
        for attempt in range(attempts):
            if attempt:
                delay = backoff_delay(attempt - 1, self._backoff, retry_after)
                log.warning(
                    "deepgram retry",
                    extra={
                        "attempt": attempt + 1,
                        "problem": last_problem,
                        "delay_s": round(delay, 3),
                    },
                )
                self._sleep(delay)
            retry_after = None
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
            except httpx.TimeoutException:
                last_problem = "timeout"
                continue
            except httpx.TransportError as exc:
                last_problem = f"connection error ({type(exc).__name__})"
                continue
            status = response.status_code
            if status in (401, 403):
                raise EngineUnavailableError(
                    f"Deepgram refused the API key (HTTP {status}). Check DEEPGRAM_API_KEY."
                )
            if status == 429 or status >= 500:
                last_problem = f"HTTP {status}"
                retry_after = parse_retry_after(response.headers)
                continue
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
        raise EngineUnavailableError(
            f"Deepgram is unavailable or overloaded ({last_problem} after {attempts} attempts). "
            "Try again in a minute.",
            retry_after=retry_after,
        )
