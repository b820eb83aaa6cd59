"""The `BatchProcessingCompleted` event detail, version 1.0.

This model is the contract with downstream consumers; its JSON Schema is generated into
`docs/events/batch-processing-completed.v1.json`. Any change to it bumps `version` by semantic
versioning (a new optional field: minor; a removed or retyped field: major).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
)

SCHEMA_VERSION = "1.0"
DETAIL_TYPE = "BatchProcessingCompleted"


def _uuid4(value: str) -> str:
    try:
        parsed = uuid.UUID(value)
    except (ValueError, AttributeError, TypeError) as exc:
        raise ValueError("must be a UUID v4 string") from exc
    if parsed.version != 4 or str(parsed) != value.lower():
        raise ValueError("must be a UUID v4 string in canonical form")
    return value.lower()


UUID4Str = Annotated[
    str,
    AfterValidator(_uuid4),
    Field(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$",
        examples=["6f1c2a9e-3b7d-4c1e-9a8f-2d5b7c9e1f03"],
    ),
]


def utc_now() -> datetime:
    """Current time in UTC, millisecond precision (what the event carries)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=(now.microsecond // 1000) * 1000)


def format_timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a `Z`, e.g. `2026-11-29T10:30:00.000Z`."""
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


class EventData(BaseModel):
    """The transcripts carried by the event."""

    model_config = ConfigDict(extra="forbid", strict=True)

    cleaned_transcript: str = Field(description="Transcript after cleaning, one line per turn.")
    raw_transcript: str = Field(description="Engine output, `SPEAKER_<n>: text` per turn.")


class BatchProcessingCompletedEvent(BaseModel):
    """Detail of the `BatchProcessingCompleted` EventBridge event."""

    model_config = ConfigDict(extra="forbid", title="BatchProcessingCompleted")

    version: Literal["1.0"] = Field(SCHEMA_VERSION, description="Schema version (semver).")
    interaction_id: UUID4Str = Field(description="UUID v4 of the request; dedupe on it.")
    tenant_id: UUID4Str = Field(description="UUID v4 of the tenant.")
    user_id: str = Field(min_length=1, max_length=256, description="User who uploaded.")
    account_id: str | None = Field(None, max_length=256, description="Account, if given.")
    timestamp: datetime = Field(
        default_factory=utc_now,
        description="When processing completed, ISO 8601 UTC, e.g. 2026-11-29T10:30:00.000Z.",
        json_schema_extra={
            "format": "date-time",
            "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$",
        },
    )
    status: Literal["completed"] = Field("completed", description="Always `completed`.")
    data: EventData

    @field_validator("timestamp")
    @classmethod
    def _utc_only(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("timestamp must carry a timezone (UTC)")
        return value.astimezone(UTC)

    @field_serializer("timestamp")
    def _serialize_timestamp(self, value: datetime) -> str:
        return format_timestamp(value)

    def detail_json(self) -> str:
        """The detail as compact JSON, exactly what goes into the EventBridge `Detail` field."""
        return self.model_dump_json()
