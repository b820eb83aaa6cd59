"""Transcription engines behind one interface; `build_transcriber` picks one from Settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchscribe.pipeline.transcribers.base import Transcriber

if TYPE_CHECKING:
    from batchscribe.config import Settings

__all__ = ["Transcriber", "build_transcriber"]


def build_transcriber(settings: Settings) -> Transcriber:
    """The engine named by `TRANSCRIBER`, ready to use (models loaded)."""
    if settings.transcriber == "sphinx":
        from batchscribe.pipeline.transcribers.sphinx import SphinxTranscriber

        return SphinxTranscriber()
    if settings.transcriber == "deepgram":
        from batchscribe.pipeline.transcribers.deepgram import DeepgramTranscriber

        return DeepgramTranscriber(settings)
    from batchscribe.pipeline.transcribers.openai import OpenAITranscriber

    return OpenAITranscriber(settings)
