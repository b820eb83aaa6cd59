"""Liveness, readiness and metrics."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from batchscribe.http.deps import EventsDep, MetricsAccess, RuntimeDep
from batchscribe.http.schemas import (
    Component,
    EngineReadiness,
    EventsReadiness,
    ReadinessResponse,
    ReadinessStatus,
)

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadinessResponse,
    summary="Storage writable, engine loaded, publisher state",
    responses={503: {"model": ReadinessResponse, "description": "Not ready: see `failing`"}},
)
async def readyz(runtime: RuntimeDep, events: EventsDep, response: Response) -> ReadinessResponse:
    """503 while the database or the blob store cannot take a real write, or while no local
    worker has its engine. The body names failing components only; the details are logged
    once per failure (not once per probe)."""
    # Real writes to the database and the blob store: off the event loop.
    failing = await anyio.to_thread.run_sync(runtime.failing_components)
    event_state = EventsReadiness.model_validate(await anyio.to_thread.run_sync(events.readiness))
    response.status_code = 503 if failing else 200
    return ReadinessResponse(
        status=ReadinessStatus.NOT_READY if failing else ReadinessStatus.READY,
        failing=[Component(name) for name in failing],
        engine=EngineReadiness.model_validate(runtime.engine_state()),
        events=event_state,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    dependencies=[MetricsAccess],
)
def metrics() -> Response:
    """Open in AUTH_MODE=none; otherwise `Authorization: Bearer <METRICS_TOKEN>`, and 404 while
    METRICS_TOKEN is unset.

    Sync on purpose: the outbox gauges query the database when scraped, so FastAPI runs this
    in its thread pool instead of on the event loop."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
