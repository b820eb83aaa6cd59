"""FastAPI dependencies, wired in one place. The components live on `app.state.runtime` (a
`ServiceRuntime`, built and started by the app factory's lifespan)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from batchscribe.auth import Authenticator
from batchscribe.config import Settings
from batchscribe.events.runtime import EventsRuntime
from batchscribe.http.auth import authenticated_context, authenticator, require_metrics_access
from batchscribe.http.identity import app_settings
from batchscribe.identity import RequestContext
from batchscribe.services.jobs import JobService
from batchscribe.services.runtime import ServiceRuntime
from batchscribe.webhooks.runtime import WebhooksRuntime


def get_app_settings(request: Request) -> Settings:
    return app_settings(request)


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


AuthDep = Annotated[Authenticator, Depends(authenticator)]


async def get_context(request: Request, settings: SettingsDep, auth: AuthDep) -> RequestContext:
    """Authentication (AUTH_MODE) and identity in one: a route that takes `ContextDep` is a
    protected route."""
    # async on purpose: FastAPI runs a plain function in a worker thread, and the interaction id
    # it puts in a context variable (so every log line carries it) would not reach the route.
    return await authenticated_context(request, settings, auth)


async def get_metrics_access(request: Request, auth: AuthDep) -> None:
    await require_metrics_access(request, auth)


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


def get_webhooks(runtime: RuntimeDep) -> WebhooksRuntime:
    assert runtime.webhooks is not None, "the API runs the webhook sender"
    return runtime.webhooks


ContextDep = Annotated[RequestContext, Depends(get_context)]
JobsDep = Annotated[JobService, Depends(get_jobs)]
EventsDep = Annotated[EventsRuntime, Depends(get_events)]
WebhooksDep = Annotated[WebhooksRuntime, Depends(get_webhooks)]
#: For `dependencies=[...]` of /metrics: Bearer METRICS_TOKEN outside `none` mode.
MetricsAccess = Depends(get_metrics_access)
