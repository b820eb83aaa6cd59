"""Errors of the audio pipeline.

    PipelineError
    ├── InvalidAudioError          the upload is not decodable audio (HTTP 422)
    ├── AudioTooLongError          longer than MAX_AUDIO_SECONDS / MAX_SYNC_AUDIO_SECONDS (413)
    ├── UnsupportedLanguageError   a language the engine cannot do, or no language tag (400)
    └── TranscriptionError         the engine failed on good audio (HTTP 503)
        ├── EngineTimeoutError     the job passed its deadline and its worker was stopped
        └── EngineUnavailableError the engine is down or misconfigured (HTTP 503)
            └── OverloadedError    every transcription slot busy (HTTP 503)

Cleaning has no error of its own: a cleaner never raises, it falls back to the raw text and says
so (`CleaningResult.degraded`).

Every message is a sentence a user can act on; none contains transcript text or a secret.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of every audio pipeline error."""


class InvalidAudioError(PipelineError):
    """The file could not be decoded as audio, is corrupt, or has no duration."""


class AudioTooLongError(PipelineError):
    """The recording is longer than the limit for this kind of request (from its header, or
    counted while decoding when the header lied)."""

    code = "audio_too_long"


class TranscriptionError(PipelineError):
    """The transcription engine failed on audio that decoded fine."""


class EngineTimeoutError(TranscriptionError):
    """Transcription passed its deadline (JOB_TIMEOUT_FACTOR x duration + 60 s)."""


class EngineUnavailableError(TranscriptionError):
    """The engine cannot take work now (not loaded, bad credentials, overloaded, hosted API down).

    `retry_after` is a hint in seconds for the client, when one is known.
    """

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[type[EngineUnavailableError], tuple[str, int | None]]:
        # Keep retry_after when the error crosses from a worker process.
        return (type(self), (str(self), self.retry_after))


class OverloadedError(EngineUnavailableError):
    """No worker is free and the wait queue is full; the client should retry later."""


class UnsupportedLanguageError(PipelineError):
    """The request names a language the configured engine cannot transcribe, or something that
    is not a language tag (HTTP 400 `unsupported_language`; the message lists what it can)."""

    code = "unsupported_language"
    param = "language"
