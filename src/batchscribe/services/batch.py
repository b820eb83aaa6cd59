"""`POST /batch/process` as one call: admission, the upload, transcription and cleaning, and the
event. Knows nothing of HTTP: the caller hands in a function that receives the audio."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio

from batchscribe.identity import RequestContext
from batchscribe.pipeline.types import CleaningResult, Transcript
from batchscribe.services.events_port import EventRecorder
from batchscribe.services.transcription import TranscriptionService

logger = logging.getLogger(__name__)


class ReceivedAudio(Protocol):
    """An uploaded file on disk; `cleanup()` deletes it."""

    @property
    def path(self) -> Path: ...

    @property
    def size(self) -> int: ...

    @property
    def content_type(self) -> str | None: ...

    def cleanup(self) -> None: ...


#: Reads the audio of the request (raising the caller's own errors for a bad upload).
AudioReceiver = Callable[[], Awaitable[ReceivedAudio]]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one processed upload produced: both transcripts and its event's delivery status."""

    transcript: Transcript
    cleaning: CleaningResult
    event: dict[str, Any]


class BatchService:
    """Transcribes, cleans and records the event of one upload."""

    def __init__(
        self, transcription: TranscriptionService, events: EventRecorder, engine: str
    ) -> None:
        self.transcription = transcription
        self.events = events
        self.engine = engine

    async def process(self, context: RequestContext, receive: AudioReceiver) -> BatchResult:
        """Take a transcription slot, receive the audio, transcribe and clean it, record the
        event (which never fails the request).

        The slot comes first, so a busy server refuses (`OverloadedError`) before reading the
        body, and the number of uploads on disk stays bounded by the admission capacity. The
        received file is deleted whatever happens.
        """
        started = time.perf_counter()
        async with self.transcription.pool.slot():
            upload = await receive()
            logger.info(
                "upload received", extra={"bytes": upload.size, "content_type": upload.content_type}
            )
            try:
                processed = await self.transcription.process(
                    upload.path, context.interaction_id, self.engine
                )
            finally:
                upload.cleanup()
        raw, cleaned = processed.transcript.raw_text, processed.cleaning.text
        # The outbox write is a short SQLite transaction; keep it off the event loop anyway.
        event = await anyio.to_thread.run_sync(self.events.record, context, raw, cleaned)
        logger.info(
            "batch processed",
            extra={
                "audio_seconds": round(processed.transcript.duration_seconds, 3),
                "elapsed_seconds": round(time.perf_counter() - started, 3),
                "event_status": event.get("status"),
            },
        )
        return BatchResult(processed.transcript, processed.cleaning, event)
