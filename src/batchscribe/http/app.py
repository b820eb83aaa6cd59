"""The application factory: builds components from Settings and wires them into FastAPI."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from batchscribe import __version__
from batchscribe.auth import Authenticator
from batchscribe.config import Settings, get_settings
from batchscribe.http.auth import document_security
from batchscribe.http.errors import install_error_handlers
from batchscribe.http.origin import CrossOriginGuard, cross_origin_check_applies
from batchscribe.http.routes import batch, health, jobs, openai_compat, web
from batchscribe.http.routes import events as events_routes
from batchscribe.http.upload import UploadGate
from batchscribe.logging_setup import configure_logging
from batchscribe.metrics import REQUEST_SECONDS, REQUESTS
from batchscribe.services.runtime import ServiceRuntime

logger = logging.getLogger(__name__)


class RequestMetricsMiddleware:
    """Counts requests and times them by route template (never by raw path: ids would explode
    the label set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            REQUESTS.labels(path, str(status)).inc()
            REQUEST_SECONDS.labels(path).observe(time.perf_counter() - started)


class UnreadBodyGuard:
    """Closes the connection after any answer sent before the request body was read to its end
    (a 503 before an upload is read, a 400 at the first unknown form field, a 404 to a POST).

    Without it uvicorn keeps the connection and reads the rest of the body only to discard it,
    with no limit on its size or on how slowly it arrives.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"0")
        body_done = b"transfer-encoding" not in headers and length.strip() in (b"", b"0")

        async def receive_wrapper() -> Message:
            nonlocal body_done
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                body_done = True
            return message

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start" and not body_done:
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"connection" for name, _ in headers):
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive_wrapper, send_wrapper)


def create_app(settings: Settings | None = None, *, workers: int | None = None) -> FastAPI:
    """Build the app: the API, and beside it the runtime (storage, relay, `workers` local worker
    processes; default WORKERS, 0 for an API-only instance)."""
    settings = settings or get_settings()
    local_workers = settings.workers if workers is None else workers

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        logger.info(
            "starting batchscribe", extra={"version": __version__, "config": settings.redacted()}
        )
        runtime = ServiceRuntime(settings, workers=local_workers, with_relay=True)
        # Migrations, worker start-up and the relay's first reads block: not on the loop.
        await anyio.to_thread.run_sync(runtime.start)
        app.state.runtime = runtime
        app.state.auth = Authenticator(settings, runtime.db)
        app.state.auth.start()
        try:
            yield
        finally:
            logger.info("stopping batchscribe")
            # Writes the last coalesced key uses while the database is still open.
            await anyio.to_thread.run_sync(app.state.auth.stop)
            # Blocks for up to SHUTDOWN_GRACE_SECONDS while jobs hand back and the relay drains.
            await anyio.to_thread.run_sync(runtime.stop)

    app = FastAPI(
        title="batchscribe",
        version=__version__,
        description=(
            "Batch transcription: upload recorded audio, get a raw speaker-labelled transcript "
            "and a cleaned one; a BatchProcessingCompleted event goes to AWS EventBridge. "
            "Long recordings go to the jobs API."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    # Uploads read at once in this process (MAX_CONCURRENT_UPLOADS), apart from engine slots.
    app.state.upload_gate = UploadGate(settings.max_concurrent_uploads)
    # The last middleware added runs first: metrics count the Origin guard's refusals too.
    app.add_middleware(CrossOriginGuard, enabled=cross_origin_check_applies(settings))
    app.add_middleware(RequestMetricsMiddleware)
    app.add_middleware(UnreadBodyGuard)
    install_error_handlers(app)
    document_security(app, settings)
    app.include_router(batch.router)
    app.include_router(jobs.router)
    app.include_router(health.router)
    app.include_router(events_routes.router)
    app.include_router(openai_compat.router)
    web.mount_web(app)
    return app
