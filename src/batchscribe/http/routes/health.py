"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from batchscribe.http.deps import EventsDep, PoolDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Engine loaded, outbox writable, publisher state")
async def readyz(pool: PoolDep, events: EventsDep) -> JSONResponse:
    # readiness() reads and writes the SQLite outbox: keep that off the event loop.
    event_state: dict[str, Any] = await anyio.to_thread.run_sync(events.readiness)
    engine: dict[str, Any] = {"ready": pool.ready, "workers": pool.workers, "in_use": pool.in_use}
    if pool.load_error:
        engine["error"] = pool.load_error
    ready = pool.ready and bool(event_state.get("ok", True))
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "engine": engine, "events": event_state},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics() -> Response:
    """Sync on purpose: the outbox gauges query SQLite when scraped, so FastAPI runs this in
    its thread pool instead of on the event loop."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
