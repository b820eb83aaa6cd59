"""The `BatchProcessingCompleted` event detail, version 1.0.

This model is the contract with downstream consumers; its JSON Schema is generated into
`docs/events/batch-processing-completed.v1.json`. Any change to it bumps `version` by semantic
versioning (a new optional field: minor; a removed or retyped field: major).
"""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
)

SCHEMA_VERSION: Literal["1.0"] = "1.0"
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
    """ISO 8601 in UTC with milliseconds and a `Z`, e.g. `2026-11-29T10:30:00.000Z`.

    A naive datetime is taken as UTC (not local time). The fields are formatted by hand because
    `strftime("%Y")` does not zero-pad years before 1000 on every platform.
    """
    v = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}."
        f"{v.microsecond // 1000:03d}Z"
    )


class EventData(BaseModel):
    """The transcripts carried by the event."""

    model_config = ConfigDict(extra="forbid", strict=True)

    cleaned_transcript: str = Field(description="Transcript after cleaning, one line per turn.")
    raw_transcript: str = Field(description="Engine output, `SPEAKER_<n>: text` per turn.")


class BatchProcessingCompletedEvent(BaseModel):
    """Detail of the `BatchProcessingCompleted` EventBridge event."""

    # Fields with defaults (version, account_id, timestamp, status) are always present in the
    # published JSON, so the serialization schema lists them as required for consumers.
    model_config = ConfigDict(
        extra="forbid",
        title="BatchProcessingCompleted",
        json_schema_serialization_defaults_required=True,
    )

    version: Literal["1.0"] = Field(SCHEMA_VERSION, description="Schema version (semver).")
    interaction_id: UUID4Str = Field(description="UUID v4 of the request; dedupe on it.")
    tenant_id: UUID4Str = Field(description="UUID v4 of the tenant.")
    # No min_length: an empty user id is an upstream bug, but refusing the event would lose it.
    user_id: str = Field(max_length=256, description="User who uploaded.")
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


SCHEMA_ID = "https://batchscribe.dev/schemas/batch-processing-completed.v1.json"
#: Where the schema lives in the repository, relative to its root. Not derived from this file's
#: location: in an installed package that would point into site-packages.
SCHEMA_FILE = Path("docs/events/batch-processing-completed.v1.json")


def detail_json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of the published `detail`, generated from the model.

    Serialization mode: it describes the JSON consumers receive (timestamp as a string, every
    field present), not what the constructor accepts.
    """
    schema = BatchProcessingCompletedEvent.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }


def render_schema() -> str:
    """The schema file's exact text (sorted keys, two-space indent, final newline)."""
    return json.dumps(detail_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """`python -m batchscribe.events.schema [--check] [PATH]`: write or check the schema."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        help=f"schema file (default: {SCHEMA_FILE}, from the repository root)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    if args.path is None:
        if not SCHEMA_FILE.parent.is_dir():
            print(
                f"error: {SCHEMA_FILE.parent} not found here; run from the repository root or "
                "pass the schema file's PATH"
            )
            return 2
        args.path = SCHEMA_FILE
    text = render_schema()
    if args.check:
        current = args.path.read_text(encoding="utf-8") if args.path.exists() else ""
        if current != text:
            print(f"{args.path} is out of date; run python -m batchscribe.events.schema")
            return 1
        return 0
    args.path.parent.mkdir(parents=True, exist_ok=True)
    args.path.write_text(text, encoding="utf-8")
    print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
