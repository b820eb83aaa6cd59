"""Liveness, readiness and metrics."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from batchscribe.http.deps import EventsDep, PoolDep
from batchscribe.http.schemas import (
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
    summary="Engine loaded, outbox writable, publisher state",
    responses={503: {"model": ReadinessResponse, "description": "Not ready: see which part"}},
)
async def readyz(pool: PoolDep, events: EventsDep, response: Response) -> ReadinessResponse:
    # readiness() reads and writes the SQLite outbox: keep that off the event loop.
    event_state = EventsReadiness.model_validate(await anyio.to_thread.run_sync(events.readiness))
    engine = EngineReadiness(
        ready=pool.ready, workers=pool.workers, in_use=pool.in_use, error=pool.load_error
    )
    ready = pool.ready and event_state.ok
    response.status_code = 200 if ready else 503
    return ReadinessResponse(
        status=ReadinessStatus.READY if ready else ReadinessStatus.NOT_READY,
        engine=engine,
        events=event_state,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics() -> Response:
    """Sync on purpose: the outbox gauges query SQLite when scraped, so FastAPI runs this in
    its thread pool instead of on the event loop."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
