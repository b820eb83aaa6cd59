"""Maps every error to a status and the JSON body `{"error": {"code", "message"}}`.

This is the only place that knows HTTP statuses of domain errors: `ERROR_MAP` pairs each
exception type with its answer, and an exception takes the answer of the nearest class in its
MRO (so `OverloadedError` gets its own code while other `EngineUnavailableError`s share one).
Routes and services raise; they never build error responses. No stack trace reaches a client:
unexpected errors are logged with their trace and answered with a generic 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from batchscribe.auth.exceptions import (
    AuthenticationError,
    MetricsHiddenError,
    TenantLimitError,
    TenantMismatchError,
)
from batchscribe.db.exceptions import DatabaseUnavailableError
from batchscribe.events.exceptions import EventNotFoundError, OutboxError
from batchscribe.http.exceptions import (
    ModelNotFoundError,
    RequestError,
    ResultGoneError,
    ResultNotReadyError,
    TooManyUploadsError,
    UploadStorageError,
    UploadTimeoutError,
    UploadTooLargeError,
)
from batchscribe.http.identity import InvalidHeaderError, context_headers
from batchscribe.jobs.exceptions import (
    IdempotencyConflictError,
    InvalidCursorError,
    JobFinishedError,
    JobNotFoundError,
)
from batchscribe.pipeline.exceptions import (
    AudioTooLongError,
    EngineTimeoutError,
    EngineUnavailableError,
    InvalidAudioError,
    OverloadedError,
    TranscriptionError,
    UnsupportedLanguageError,
)
from batchscribe.services.exceptions import ClientGoneError, StorageUnavailableError
from batchscribe.webhooks.exceptions import DeliveryStoreError

logger = logging.getLogger(__name__)


def _retry_after(exc: Exception) -> dict[str, str]:
    seconds = getattr(exc, "retry_after", None)
    return {"Retry-After": str(seconds)} if seconds else {}


def _challenge(exc: Exception) -> dict[str, str]:
    challenge = getattr(exc, "challenge", None)
    return {"WWW-Authenticate": challenge} if challenge else {}


_STORAGE_MESSAGE = str(StorageUnavailableError())


def _request_retry_after(exc: Exception) -> dict[str, str]:
    seconds = getattr(exc, "retry_after", None)
    return {"Retry-After": str(seconds)} if seconds else {}


def _close(_: Exception) -> dict[str, str]:
    # Reading stopped part-way: close, so the client stops sending. (Any answer that leaves a
    # body unread closes the connection too: `UnreadBodyGuard` in app.py.)
    return {"Connection": "close"}


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """How one exception type is answered."""

    status: int
    #: The body's `code`; None takes the exception's own `code` attribute.
    code: str | None = None
    #: The body's `message`; None takes `str(exc)`. Set when the exception's text is for the
    #: log only (paths, database errors); the text is then logged.
    message: str | None = None
    headers: Callable[[Exception], dict[str, str]] | None = None


ERROR_MAP: dict[type[Exception], ErrorAnswer] = {
    RequestError: ErrorAnswer(400),
    ResultNotReadyError: ErrorAnswer(409),
    ResultGoneError: ErrorAnswer(410),
    ModelNotFoundError: ErrorAnswer(404),
    UploadTooLargeError: ErrorAnswer(413, headers=_close),
    UploadTimeoutError: ErrorAnswer(408, headers=_close),
    TooManyUploadsError: ErrorAnswer(503, headers=_request_retry_after),
    UploadStorageError: ErrorAnswer(
        503,
        message=(
            "The server cannot store uploads right now (its disk is full or unavailable). "
            "Send the file again in a few minutes."
        ),
        headers=_request_retry_after,
    ),
    InvalidHeaderError: ErrorAnswer(400, "invalid_header"),
    InvalidAudioError: ErrorAnswer(422, "invalid_audio"),
    TranscriptionError: ErrorAnswer(
        503, "transcription_failed", headers=lambda _: {"Retry-After": "10"}
    ),
    EngineUnavailableError: ErrorAnswer(503, "engine_unavailable", headers=_retry_after),
    OverloadedError: ErrorAnswer(503, "overloaded", headers=_retry_after),
    AudioTooLongError: ErrorAnswer(413, "audio_too_long"),
    UnsupportedLanguageError: ErrorAnswer(400, "unsupported_language"),
    EngineTimeoutError: ErrorAnswer(503, "engine_timeout", headers=lambda _: {"Retry-After": "60"}),
    StorageUnavailableError: ErrorAnswer(503, "storage_unavailable", headers=_retry_after),
    DatabaseUnavailableError: ErrorAnswer(
        503,
        "storage_unavailable",
        message=_STORAGE_MESSAGE,
        headers=lambda _: {"Retry-After": "10"},
    ),
    # The client is gone; nobody reads this answer (nginx's "client closed request").
    ClientGoneError: ErrorAnswer(499, "client_closed_request", message="The client disconnected."),
    JobNotFoundError: ErrorAnswer(404, "job_not_found"),
    JobFinishedError: ErrorAnswer(409, "job_finished"),
    IdempotencyConflictError: ErrorAnswer(409, "idempotency_conflict"),
    InvalidCursorError: ErrorAnswer(400, "invalid_cursor"),
    EventNotFoundError: ErrorAnswer(404, "event_not_found"),
    DeliveryStoreError: ErrorAnswer(
        503,
        "storage_unavailable",
        message=_STORAGE_MESSAGE,
        headers=lambda _: {"Retry-After": "10"},
    ),
    OutboxError: ErrorAnswer(
        503,
        "outbox_unavailable",
        message="The event store cannot be read right now; try again shortly.",
    ),
    # Authentication and tenancy (SPEC 12): the code comes from the exception.
    AuthenticationError: ErrorAnswer(401, headers=_challenge),
    TenantMismatchError: ErrorAnswer(403),
    TenantLimitError: ErrorAnswer(429, headers=_retry_after),
    MetricsHiddenError: ErrorAnswer(404),
}


def answer_for(exc: Exception) -> ErrorAnswer | None:
    """The answer of the nearest class of `exc` in `ERROR_MAP`, or None for an unmapped error."""
    for cls in type(exc).__mro__:
        answer = ERROR_MAP.get(cls)
        if answer is not None:
            return answer
    return None


#: Routes under this prefix speak OpenAI's API (`http/routes/openai_compat.py`), errors included.
OPENAI_PREFIX = "/v1/"


def openai_error_type(status: int) -> str:
    """OpenAI's `error.type` for a status: what its SDKs and clients expect to read."""
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 429:
        return "rate_limit_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    *,
    param: str | None = None,
) -> JSONResponse:
    """The JSON error body, with the request's interaction id and warnings when it has them.

    `{"error": {"code", "message"}}`; under `/v1/` OpenAI's shape instead,
    `{"error": {"message", "type", "param", "code"}}`, so its SDKs raise their usual errors.
    """
    out = {**(headers or {}), **context_headers(request)}
    if request.url.path.startswith(OPENAI_PREFIX):
        body: dict[str, object] = {
            "message": message,
            "type": openai_error_type(status),
            "param": param,
            "code": code,
        }
        return JSONResponse({"error": body}, status_code=status, headers=out)
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=out
    )


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    answer = answer_for(exc)
    if answer is None:  # registered only for mapped types; kept total for safety
        return await _unexpected(request, exc)
    code = answer.code or str(getattr(exc, "code", "bad_request"))
    if answer.message is not None:
        logger.error("answered %s: %s", code, exc, extra={"error_code": code})
    headers = answer.headers(exc) if answer.headers else None
    param = getattr(exc, "param", None)
    return error_response(
        request,
        answer.status,
        code,
        answer.message or str(exc),
        headers,
        param=param if isinstance(param, str) else None,
    )


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = ", ".join(".".join(str(p) for p in err.get("loc", ())) for err in exc.errors())
    return error_response(
        request,
        400,
        "invalid_request",
        f"The request is invalid ({fields[:200]}). Check the parameters against /docs.",
    )


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = {
        404: "There is nothing at this address. See /docs for the API.",
        405: "This method is not allowed here. See /docs for the API.",
    }.get(exc.status_code, str(exc.detail))
    return error_response(request, exc.status_code, code, message, dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unexpected error", exc_info=exc)
    return error_response(
        request,
        500,
        "internal_error",
        "Something went wrong on our side. Retry; if it persists, report the interaction id.",
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the answers of `ERROR_MAP` and of the framework's own errors on `app`."""
    for exc_type in ERROR_MAP:
        app.add_exception_handler(exc_type, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
