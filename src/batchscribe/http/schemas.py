"""Response bodies of the HTTP API (also what OpenAPI documents)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class CleaningInfo(BaseModel):
    engine: str = Field(description="Cleaner that ran: `rules` or `openai`.")
    degraded: bool = Field(description="True when some text fell back to the raw transcript.")
    reason: str | None = Field(None, description="Why cleaning degraded, when it did.")


class BatchProcessResponse(BaseModel):
    """The transcripts of one upload and what happened to its event."""

    raw_transcript: str = Field(description="`SPEAKER_<n>: text`, one line per speaker turn.")
    cleaned_transcript: str = Field(description="The raw transcript after cleaning.")
    interaction_id: str
    tenant_id: str
    user_id: str
    account_id: str | None
    duration_seconds: float
    event: dict[str, Any] = Field(description='Delivery status, e.g. {"status": "queued"}.')
    cleaning: CleaningInfo


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code.")
    message: str = Field(description="What went wrong and what to do.")


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "No file, empty file, bad header or extension."},
    413: {"model": ErrorResponse, "description": "The file is larger than MAX_UPLOAD_MB."},
    422: {"model": ErrorResponse, "description": "Not decodable audio, corrupt, zero duration."},
    503: {"model": ErrorResponse, "description": "Engine unavailable or busy; see Retry-After."},
}
