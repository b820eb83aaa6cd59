"""FastAPI dependencies, wired in one place. Components live on `app.state`, built by the app
factory (or injected by tests)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from batchscribe.config import Settings
from batchscribe.http.identity import app_settings, get_request_context
from batchscribe.identity import RequestContext
from batchscribe.pipeline.pool import TranscriptionPool
from batchscribe.services.batch import BatchService
from batchscribe.services.events_port import EventRecorder


def get_app_settings(request: Request) -> Settings:
    return app_settings(request)


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_context(request: Request, settings: SettingsDep) -> RequestContext:
    # async on purpose: FastAPI runs a plain function in a worker thread, and the interaction id
    # it puts in a context variable (so every log line carries it) would not reach the route.
    return get_request_context(request, settings)


def get_batch(request: Request) -> BatchService:
    service: BatchService = request.app.state.batch
    return service


def get_pool(request: Request) -> TranscriptionPool:
    pool: TranscriptionPool = request.app.state.transcription.pool
    return pool


def get_events(request: Request) -> EventRecorder:
    events: EventRecorder = request.app.state.events
    return events


ContextDep = Annotated[RequestContext, Depends(get_context)]
BatchDep = Annotated[BatchService, Depends(get_batch)]
PoolDep = Annotated[TranscriptionPool, Depends(get_pool)]
EventsDep = Annotated[EventRecorder, Depends(get_events)]
