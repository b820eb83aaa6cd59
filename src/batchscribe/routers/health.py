"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from batchscribe.http.deps import EventsDep, PoolDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Engine loaded, outbox writable, publisher state")
async def readyz(pool: PoolDep, events: EventsDep) -> JSONResponse:
    event_state: dict[str, Any] = events.readiness()
    engine: dict[str, Any] = {"ready": pool.ready, "workers": pool.workers, "in_use": pool.in_use}
    if pool.load_error:
        engine["error"] = pool.load_error
    ready = pool.ready and bool(event_state.get("ok", True))
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "engine": engine, "events": event_state},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
