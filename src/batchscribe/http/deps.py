"""FastAPI dependencies, wired in one place. Components live on `app.state`, built by the app
factory (or injected by tests)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from batchscribe.config import Settings
from batchscribe.pipeline.pool import TranscriptionPool
from batchscribe.services.events_port import EventRecorder
from batchscribe.services.transcription import TranscriptionService


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_transcription(request: Request) -> TranscriptionService:
    service: TranscriptionService = request.app.state.transcription
    return service


def get_pool(request: Request) -> TranscriptionPool:
    pool: TranscriptionPool = request.app.state.transcription.pool
    return pool


def get_events(request: Request) -> EventRecorder:
    events: EventRecorder = request.app.state.events
    return events


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
TranscriptionDep = Annotated[TranscriptionService, Depends(get_transcription)]
PoolDep = Annotated[TranscriptionPool, Depends(get_pool)]
EventsDep = Annotated[EventRecorder, Depends(get_events)]
