"""FastAPI dependencies, wired in one place. The components live on `app.state.runtime` (a
`ServiceRuntime`, built and started by the app factory's lifespan)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from batchscribe.config import Settings
from batchscribe.events.runtime import EventsRuntime
from batchscribe.http.identity import app_settings, get_request_context
from batchscribe.identity import RequestContext
from batchscribe.services.jobs import JobService
from batchscribe.services.runtime import ServiceRuntime


def get_app_settings(request: Request) -> Settings:
    return app_settings(request)


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_context(request: Request, settings: SettingsDep) -> RequestContext:
    # async on purpose: FastAPI runs a plain function in a worker thread, and the interaction id
    # it puts in a context variable (so every log line carries it) would not reach the route.
    return get_request_context(request, settings)


def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]


def get_jobs(runtime: RuntimeDep) -> JobService:
    assert runtime.jobs is not None, "the runtime starts before the app serves"
    return runtime.jobs


def get_events(runtime: RuntimeDep) -> EventsRuntime:
    assert runtime.events is not None, "the API runs the relay"
    return runtime.events


ContextDep = Annotated[RequestContext, Depends(get_context)]
JobsDep = Annotated[JobService, Depends(get_jobs)]
EventsDep = Annotated[EventsRuntime, Depends(get_events)]
