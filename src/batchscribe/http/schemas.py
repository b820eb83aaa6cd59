"""Response bodies of the HTTP API (also what OpenAPI documents)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from batchscribe.events.outbox import OutboxStatus
from batchscribe.events.runtime import DeliveryStatus


def _absent(value: object) -> bool:
    return value is None


class CleaningInfo(BaseModel):
    engine: str = Field(description="Cleaner that ran: `rules` or `openai`.")
    degraded: bool = Field(description="True when some text fell back to the raw transcript.")
    reason: str | None = Field(None, description="Why cleaning degraded, when it did.")


class EventDelivery(BaseModel):
    """What happened to this request's event. Fields beside `status` appear only when they
    apply: `{"status": "queued"}` is the usual answer."""

    status: DeliveryStatus = Field(
        description="queued: stored, the relay sends it now; held: publishing is off here "
        "(no AWS credentials); too_large: over EVENT_MAX_BYTES, never sent; not_stored: the "
        "outbox could not take it (the transcripts are still returned)."
    )
    reason: str | None = Field(
        None,
        exclude_if=_absent,
        description="held: `publishing_disabled`; not_stored: `invalid_event`, "
        "`outbox_unavailable` or `internal_error`.",
    )
    size_bytes: int | None = Field(None, exclude_if=_absent, description="too_large: entry size.")
    limit_bytes: int | None = Field(
        None, exclude_if=_absent, description="too_large: EVENT_MAX_BYTES."
    )


class BatchProcessResponse(BaseModel):
    """The transcripts of one upload and what happened to its event."""

    raw_transcript: str = Field(description="`SPEAKER_<n>: text`, one line per speaker turn.")
    cleaned_transcript: str = Field(description="The raw transcript after cleaning.")
    interaction_id: str
    tenant_id: str
    user_id: str
    account_id: str | None
    duration_seconds: float
    event: EventDelivery = Field(description='Delivery status, e.g. {"status": "queued"}.')
    cleaning: CleaningInfo


class EventStatusResponse(BaseModel):
    """The delivery state of one event (never its transcripts). Times are ISO 8601 UTC."""

    interaction_id: str
    status: OutboxStatus = Field(
        description="pending: waiting for the relay (retried with backoff after a transient "
        "error); sending: being sent; sent: EventBridge accepted it; held: publishing is off, "
        "`batchscribe outbox replay` sends it; failed: refused with a terminal code; "
        "too_large: over EVENT_MAX_BYTES, never sent."
    )
    attempts: int = Field(description="PutEvents attempts so far.")
    event_id: str | None = Field(description="EventBridge's id, once sent.")
    error_code: str | None = Field(description="The last error code (kept when failed).")
    error_message: str | None
    size_bytes: int = Field(description="Entry size, measured the way AWS does.")
    created_at: str
    updated_at: str
    sent_at: str | None
    next_attempt_at: str | None = Field(description="When a pending event is tried next.")


class ReadinessStatus(StrEnum):
    READY = "ready"
    NOT_READY = "not_ready"


class EngineReadiness(BaseModel):
    ready: bool = Field(description="Every worker loaded the transcription engine.")
    workers: int
    in_use: int = Field(description="Requests holding a transcription slot now.")
    error: str | None = Field(None, description="Why the engine did not load, when it did not.")


class OutboxReadiness(BaseModel):
    path: str
    writable: bool
    error: str | None


class EventsReadiness(BaseModel):
    ok: bool = Field(description="The outbox is writable (publishing may still be off).")
    outbox: OutboxReadiness
    publisher: Literal["enabled", "disabled"]
    publisher_reason: str | None = Field(description="Why publishing is disabled, when it is.")
    relay_running: bool
    pending: int | None = Field(description="Events waiting to be sent (pending or sending).")
    held: int | None
    failed: int | None
    oldest_pending_age_seconds: float | None


class ReadinessResponse(BaseModel):
    """`ready` (200) when the engine is loaded and the outbox writable, else `not_ready` (503)."""

    status: ReadinessStatus
    engine: EngineReadiness
    events: EventsReadiness


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code.")
    message: str = Field(description="What went wrong and what to do.")


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorResponse,
        "description": (
            "No file, empty file, bad or repeated identity header, unsupported extension, "
            "unknown form field, too many form parts."
        ),
    },
    403: {"model": ErrorResponse, "description": "Sent by another site's page (Origin)."},
    408: {"model": ErrorResponse, "description": "The body stalled or took too long."},
    413: {"model": ErrorResponse, "description": "The request body is larger than MAX_UPLOAD_MB."},
    422: {"model": ErrorResponse, "description": "Not decodable audio, corrupt, zero duration."},
    503: {
        "model": ErrorResponse,
        "description": (
            "Engine unavailable or busy, too many uploads, or storage full; see Retry-After."
        ),
    },
}
