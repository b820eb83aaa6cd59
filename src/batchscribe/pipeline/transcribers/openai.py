"""OpenAI-compatible transcription (`TRANSCRIBER=openai`): OpenAI, Groq, local servers.

`POST {OPENAI_BASE_URL}/audio/transcriptions` (the base URL includes `/v1`, OpenAI's convention)
through the official `openai` SDK, which lets us set the base URL. These APIs do not diarize, so
the result is one `SPEAKER_0` turn.

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
from pathlib import Path

import openai

from batchscribe.config import Settings
from batchscribe.pipeline.audio import AudioInfo
from batchscribe.pipeline.exceptions import EngineUnavailableError, TranscriptionError
from batchscribe.pipeline.openai_client import openai_client_options
from batchscribe.pipeline.retry import RetryableProblem, RetryPolicy, parse_retry_after
from batchscribe.pipeline.split import transcribe_in_pieces
from batchscribe.pipeline.transcribers.base import NO_CONTROL, Control, EngineOutput
from batchscribe.pipeline.types import Segment

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


def upload_name(info: AudioInfo) -> str:
    """The file name sent with the audio: `audio.<extension of its real format>`."""
    return f"audio.{_EXTENSIONS.get(info.mimetype, 'wav')}"


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
        """Transcribe the file in one upload, or in pieces when it is over the upload limit."""
        if path.stat().st_size > self._max_upload_bytes:
            return transcribe_in_pieces(
                path, self._max_upload_bytes, self._transcribe_file, control
            )
        return self._transcribe_file(path, info)

    def _transcribe_file(self, path: Path, info: AudioInfo) -> EngineOutput:
        """Upload the file, return its text as one `SPEAKER_0` turn (none if it is empty)."""
        text = self._request_with_retries(path, info)
        words = len(text.split())
        log.info("openai transcription done", extra={"words": words, "chars": len(text)})
        return EngineOutput([Segment(0, " ".join(text.split()))] if words else [])

    def _request_with_retries(self, path: Path, info: AudioInfo) -> str:
        return self._retry.call(
            lambda: self._request_once(path, info),
            exhausted=lambda problem, attempts, retry_after: EngineUnavailableError(
                f"The transcription server is unavailable or overloaded ({problem} after "
                f"{attempts} attempts). Try again in a minute.",
                retry_after=retry_after,
            ),
            logger=log,
            message="openai transcription retry",
        )

    def _request_once(self, path: Path, info: AudioInfo) -> str:
        """One upload; overload answers and network failures raise `RetryableProblem`."""
        try:
            with path.open("rb") as body:
                result = self._client.audio.transcriptions.create(
                    model=self._model,
                    file=(upload_name(info), body, info.mimetype),
                    timeout=self._timeout,
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
        text = getattr(result, "text", None)
        if not isinstance(text, str):
            raise TranscriptionError(
                "The transcription server answered without text; check OPENAI_BASE_URL."
            )
        return text
