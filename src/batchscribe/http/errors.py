"""Maps every error to a status and the JSON body `{"error": {"code", "message"}}`.

This is the only place that knows HTTP statuses of domain errors. No stack trace reaches a
client: unexpected errors are logged with their trace and answered with a generic 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from batchscribe.http.exceptions import RequestError, UploadTooLargeError
from batchscribe.http.identity import InvalidHeaderError
from batchscribe.pipeline.exceptions import (
    EngineUnavailableError,
    InvalidAudioError,
    TranscriptionError,
)

logger = logging.getLogger(__name__)


def error_response(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON error body, with the request's interaction id and warnings when it has them."""
    out = dict(headers or {})
    interaction_id = getattr(request.state, "interaction_id", None)
    if interaction_id:
        out["X-Interaction-ID"] = interaction_id
    warnings = getattr(request.state, "context_warnings", None)
    if warnings:
        out["X-Warning"] = "; ".join(warnings)
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=out
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(UploadTooLargeError)
    async def _too_large(request: Request, exc: UploadTooLargeError) -> JSONResponse:
        # The rest of the body is not read; close the connection so the client stops sending.
        return error_response(request, 413, exc.code, str(exc), {"Connection": "close"})

    @app.exception_handler(RequestError)
    async def _bad_request(request: Request, exc: RequestError) -> JSONResponse:
        return error_response(request, 400, exc.code, str(exc))

    @app.exception_handler(InvalidHeaderError)
    async def _bad_header(request: Request, exc: InvalidHeaderError) -> JSONResponse:
        return error_response(request, 400, "invalid_header", str(exc))

    @app.exception_handler(InvalidAudioError)
    async def _bad_audio(request: Request, exc: InvalidAudioError) -> JSONResponse:
        return error_response(request, 422, "invalid_audio", str(exc))

    @app.exception_handler(EngineUnavailableError)
    async def _unavailable(request: Request, exc: EngineUnavailableError) -> JSONResponse:
        code = "overloaded" if type(exc).__name__ == "OverloadedError" else "engine_unavailable"
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return error_response(request, 503, code, str(exc), headers)

    @app.exception_handler(TranscriptionError)
    async def _engine_failed(request: Request, exc: TranscriptionError) -> JSONResponse:
        return error_response(request, 503, "transcription_failed", str(exc), {"Retry-After": "10"})

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = ", ".join(".".join(str(p) for p in err.get("loc", ())) for err in exc.errors())
        return error_response(
            request,
            400,
            "invalid_request",
            f"The request is invalid ({fields[:200]}). Check the parameters against /docs.",
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = {
            404: "There is nothing at this address. See /docs for the API.",
            405: "This method is not allowed here. See /docs for the API.",
        }.get(exc.status_code, str(exc.detail))
        return error_response(request, exc.status_code, code, message, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unexpected error", exc_info=exc)
        return error_response(
            request,
            500,
            "internal_error",
            "Something went wrong on our side. Retry; if it persists, report the interaction id.",
        )
