"""Response bodies of the HTTP API (also what OpenAPI documents)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from batchscribe.events.outbox import OutboxStatus
from batchscribe.events.runtime import DeliveryStatus
from batchscribe.jobs.models import JobStatus


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
        description="queued: stored, the relay sends it now; sent: EventBridge has it; held: "
        "publishing is off here (no AWS credentials); failed: refused with a terminal code; "
        "too_large: over EVENT_MAX_BYTES, never sent; not_stored: no event was recorded; "
        "unknown: its state could not be read just now."
    )
    reason: str | None = Field(None, exclude_if=_absent, description="held: `publishing_disabled`.")
    size_bytes: int | None = Field(None, exclude_if=_absent, description="too_large: entry size.")
    limit_bytes: int | None = Field(
        None, exclude_if=_absent, description="too_large: EVENT_MAX_BYTES."
    )


class WordView(BaseModel):
    word: str
    start: float = Field(description="Seconds from the start of the recording.")
    end: float
    confidence: float | None = Field(
        None, exclude_if=_absent, description="0 to 1, when the engine gives one."
    )


class SegmentView(BaseModel):
    """One utterance: who, when (seconds from the start; null when the engine gives no
    timing), the cleaned text, and the engine's words."""

    speaker: str = Field(description="`SPEAKER_<n>`, as in the raw transcript.")
    start: float | None
    end: float | None
    text: str
    words: list[WordView]


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
    engine: str = Field(description="The transcription engine: sphinx, deepgram or openai.")
    language: str | None = Field(description="Spoken language (BCP-47), when known.")
    segments: list[SegmentView] = Field(
        description="Utterances with times and words; their text is the cleaned text."
    )


class EventStatusResponse(BaseModel):
    """The delivery state of one event (never its transcripts). Times are ISO 8601 UTC."""

    interaction_id: str
    detail_type: str = Field(description="BatchProcessingCompleted or BatchProcessingFailed.")
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
    ready: bool = Field(
        description="A local worker has its engine loaded (true when this server runs none)."
    )
    workers: int = Field(description="Local worker processes (0: workers run elsewhere).")
    busy: int = Field(description="Local workers running a job now.")
    waiting_requests: int = Field(description="Synchronous requests waiting for their job.")


class EventsReadiness(BaseModel):
    publisher: Literal["enabled", "disabled"]
    publisher_reason: str | None = Field(description="Why publishing is disabled, when it is.")
    relay_running: bool
    pending: int | None = Field(description="Events waiting to be sent (pending or sending).")
    held: int | None
    failed: int | None
    oldest_pending_age_seconds: float | None


class Component(StrEnum):
    """What readiness checks; a failing one is named, never described (details go to the log)."""

    DATABASE = "database"
    BLOB_STORE = "blob_store"
    ENGINE = "engine"


class ReadinessResponse(BaseModel):
    """`ready` (200) when the database and the blob store take a real write and, with local
    workers, an engine is loaded; else `not_ready` (503) naming what fails."""

    status: ReadinessStatus
    failing: list[Component] = Field(description="The components that fail, if any.")
    engine: EngineReadiness
    events: EventsReadiness


class JobError(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. invalid_audio.")
    message: str = Field(description="What went wrong and what to do.")


class JobAccepted(BaseModel):
    """The answer to `POST /batch/jobs`: where to follow the job."""

    job_id: str = Field(description="The job's id, also its events' interaction_id.")
    tenant_id: str = Field(description="The tenant the job belongs to (send it to read the job).")
    status: JobStatus
    status_url: str = Field(description="GET it for progress and, once completed, the result.")


class CallbackState(StrEnum):
    """Where a job's callback is: `waiting` for the job to end; then the delivery's state
    (pending, sending, delivered, failed, gone); `not_sent` for a cancelled job."""

    WAITING = "waiting"
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"
    GONE = "gone"
    NOT_SENT = "not_sent"


class CallbackAttemptView(BaseModel):
    """One delivery attempt (never the body or the signatures)."""

    attempt: int = Field(description="1 for the first attempt; a replay starts again at 1.")
    at: str = Field(description="When the attempt started (ISO 8601 UTC).")
    outcome: str = Field(
        description="delivered (2xx), gone (410), retry (another answer, a timeout or a "
        "network error), refused_address (the host resolves to a non-public address), "
        "invalid_url, no_secret (nothing could sign it)."
    )
    status_code: int | None = Field(description="The receiver's HTTP status, when it answered.")
    error: str | None = Field(description="What went wrong, when something did.")
    duration_ms: float


class CallbackView(BaseModel):
    """The delivery state of a job's callback_url webhook."""

    url: str = Field(description="The callback URL, as normalised at submission.")
    status: CallbackState
    type: str | None = Field(description="batch.completed or batch.failed, once the job ended.")
    webhook_id: str | None = Field(
        description="The `webhook-id` header: the same on every attempt (deduplicate by it)."
    )
    attempts: int = Field(description="Attempts so far.")
    last_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: str | None = Field(description="When a pending callback is tried next.")
    give_up_at: str | None = Field(description="Retries stop at this time (24 h after the end).")
    delivered_at: str | None
    recent_attempts: list[CallbackAttemptView] = Field(
        default_factory=list,
        description="The latest attempts, oldest first (GET of one job only).",
    )


class JobView(BaseModel):
    """One job: its state, and once completed its result."""

    job_id: str
    status: JobStatus
    progress: float = Field(ge=0, le=1, description="0 to 1; updated every few seconds.")
    created_at: str
    started_at: str | None
    finished_at: str | None
    duration_seconds: float | None = Field(description="Audio duration (header, then decoded).")
    engine: str
    language: str | None
    metadata: dict[str, Any] | None
    error: JobError | None
    callback: CallbackView | None = Field(
        None, description="Delivery state of the callback, when one was given."
    )
    result: BatchProcessResponse | None = Field(
        None, description="Once completed: the same fields as POST /batch/process answers."
    )


class JobList(BaseModel):
    """A page of the tenant's jobs, newest first."""

    jobs: list[JobView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code.")
    message: str = Field(description="What went wrong and what to do.")


class ErrorResponse(BaseModel):
    error: ErrorDetail


#: The 200 answer of a route with `response_format`: JSON (its response model) or the transcript.
TRANSCRIPT_CONTENT: dict[str, Any] = {
    "description": "JSON by default; with response_format text, srt or vtt the transcript as "
    "text, with verbose_json OpenAI's verbose JSON.",
    "content": {
        "text/plain": {"schema": {"type": "string"}},
        "application/x-subrip": {"schema": {"type": "string"}},
        "text/vtt": {"schema": {"type": "string"}},
    },
}

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
    413: {
        "model": ErrorResponse,
        "description": "The request body is larger than MAX_UPLOAD_MB, or the recording longer "
        "than the audio limit (`audio_too_long`).",
    },
    422: {"model": ErrorResponse, "description": "Not decodable audio, corrupt, zero duration."},
    503: {
        "model": ErrorResponse,
        "description": (
            "Engine unavailable or busy, too many uploads, or storage unavailable; see Retry-After."
        ),
    },
}


# -- the OpenAI-compatible API (`/v1`, http/routes/openai_compat.py) -------------------------


class OpenAIErrorDetail(BaseModel):
    message: str = Field(description="What went wrong and what to do.")
    type: str = Field(
        description="invalid_request_error, authentication_error, permission_error, "
        "rate_limit_error or server_error."
    )
    param: str | None = Field(description="The request field at fault, when there is one.")
    code: str | None = Field(description="batchscribe's machine-readable code.")


class OpenAIErrorResponse(BaseModel):
    """OpenAI's error body, so its SDKs raise their usual exceptions."""

    error: OpenAIErrorDetail


class OpenAITranscription(BaseModel):
    """`response_format=json`: the cleaned transcript."""

    text: str


class OpenAIVerboseSegment(BaseModel):
    id: int
    start: float
    end: float
    text: str
    speaker: str = Field(description="`SPEAKER_<n>` (a batchscribe addition).")


class OpenAIVerboseWord(BaseModel):
    word: str
    start: float
    end: float
    speaker: str | None = None
    confidence: float | None = None


class OpenAIVerboseTranscription(BaseModel):
    """`response_format=verbose_json`: the cleaned text, language, duration, segments and, when
    asked for with `timestamp_granularities[]=word`, words."""

    task: str
    language: str | None
    duration: float
    text: str
    segments: list[OpenAIVerboseSegment] | None = None
    words: list[OpenAIVerboseWord] | None = None


class OpenAIModel(BaseModel):
    id: str = Field(description="The engine's name: sphinx, deepgram or openai.")
    object: Literal["model"] = "model"
    created: int = Field(description="Unix time this server started.")
    owned_by: str = "batchscribe"


class OpenAIModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIModel]


def openai_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers of a `/v1` route, in OpenAI's shape, with the descriptions the other
    routes give the same statuses."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        base = ERROR_RESPONSES.get(status, {})
        description = base.get("description") or {
            401: "No API key, or an unknown or revoked one.",
            404: "No such model.",
            429: "Over a per-tenant limit; see Retry-After.",
        }.get(status, "An error.")
        out[status] = {"model": OpenAIErrorResponse, "description": description}
    return out
