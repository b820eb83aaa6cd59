"""Orchestrates one upload: transcribe in a worker, then clean. Knows nothing of HTTP."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from batchscribe.metrics import AUDIO_SECONDS, CLEANINGS, TRANSCRIPTIONS
from batchscribe.pipeline.cleaners.base import Cleaner
from batchscribe.pipeline.exceptions import InvalidAudioError, PipelineError
from batchscribe.pipeline.pool import TranscriptionPool
from batchscribe.pipeline.types import CleaningResult, Transcript

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProcessedAudio:
    """The outcome of the pipeline for one file."""

    transcript: Transcript
    cleaning: CleaningResult


class TranscriptionService:
    """Runs the pipeline: worker-pool transcription, then the configured cleaner."""

    def __init__(self, pool: TranscriptionPool, cleaner: Cleaner) -> None:
        self.pool = pool
        self.cleaner = cleaner

    async def process(self, path: Path, interaction_id: str, engine: str) -> ProcessedAudio:
        try:
            transcript = await self.pool.transcribe(path, interaction_id)
        except InvalidAudioError:
            TRANSCRIPTIONS.labels(engine, "invalid_audio").inc()
            raise
        except PipelineError:
            TRANSCRIPTIONS.labels(engine, "failed").inc()
            raise
        TRANSCRIPTIONS.labels(transcript.engine, "ok").inc()
        AUDIO_SECONDS.labels(transcript.engine).inc(transcript.duration_seconds)
        cleaning = await self.cleaner.clean(transcript)
        CLEANINGS.labels(cleaning.engine, str(cleaning.degraded).lower()).inc()
        logger.info(
            "cleaned",
            extra={
                "cleaner": cleaning.engine,
                "degraded": cleaning.degraded,
                "raw_chars": len(transcript.raw_text),
                "cleaned_chars": len(cleaning.text),
            },
        )
        return ProcessedAudio(transcript, cleaning)
