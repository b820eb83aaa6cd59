"""The event details batchscribe publishes: the contract with downstream consumers.

- `BatchProcessingCompleted`, version 1.0 (`docs/events/batch-processing-completed.v1.json`,
  frozen) and 1.1 (`...completed.v1.1.json`, generated from the model): 1.1 adds two optional
  fields, the job's `metadata` and `data_ref`, which replaces `data` when the transcripts are
  too large for an EventBridge entry and were stored in S3 instead (a claim check).
- `BatchProcessingFailed`, version 1.0 (`docs/events/batch-processing-failed.v1.json`): the same
  identity fields, `status: "failed"` and `error: {code, message}`, no transcripts.

Each event announces the lowest version that describes it: a completed event without metadata
or a claim check is still `1.0`, byte for byte what consumers of 1.0 validate. Any change to a
model bumps its version by semantic versioning (a new optional field: minor; a removed or
retyped field: major, with a new schema file).
"""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

SCHEMA_VERSION: Literal["1.0"] = "1.0"
DETAIL_TYPE = "BatchProcessingCompleted"
FAILED_DETAIL_TYPE = "BatchProcessingFailed"
#: Every detail type batchscribe publishes (the provisioned rule matches all of them).
DETAIL_TYPES = (DETAIL_TYPE, FAILED_DETAIL_TYPE)
#: The largest `metadata` object a job (and so an event) may carry, as compact JSON.
METADATA_MAX_BYTES = 4096


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


def _metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and len(json.dumps(value, separators=(",", ":"))) > METADATA_MAX_BYTES:
        raise ValueError(f"metadata is larger than {METADATA_MAX_BYTES} bytes as JSON")
    return value


Metadata = Annotated[
    dict[str, Any] | None,
    AfterValidator(_metadata),
    Field(description="The job's `metadata` object as submitted (at most 4 KB of JSON)."),
]


class DataRef(BaseModel):
    """Where the transcripts of an event too large for EventBridge are stored (claim check)."""

    model_config = ConfigDict(extra="forbid")

    uri: str = Field(
        pattern=r"^s3://", max_length=2048, description="s3:// URI of the JSON document."
    )
    bytes: int = Field(ge=0, description="Size of the document in bytes.")
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the document, lowercase hex."
    )


class EventError(BaseModel):
    """Why a job failed: a stable code and a sentence for people."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=64, description="Stable machine-readable code.")
    message: str = Field(max_length=2000, description="What went wrong and what to do.")


class _Detail(BaseModel):
    """The identity fields every detail carries."""

    # Fields with defaults (account_id, timestamp, status...) are always present in the
    # published JSON, so the serialization schema lists them as required for consumers.
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    # Declared here only for their position in the JSON (subclasses narrow the types): version
    # first and status after the identity, as in every event since 1.0.
    version: str
    interaction_id: UUID4Str = Field(description="UUID v4 of the request (the job id).")
    tenant_id: UUID4Str = Field(description="UUID v4 of the tenant.")
    # No min_length: an empty user id is an upstream bug, but refusing the event would lose it.
    user_id: str = Field(max_length=256, description="User who uploaded.")
    account_id: str | None = Field(None, max_length=256, description="Account, if given.")
    timestamp: datetime = Field(
        default_factory=utc_now,
        description="When processing ended, ISO 8601 UTC, e.g. 2026-11-29T10:30:00.000Z.",
        json_schema_extra={
            "format": "date-time",
            "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$",
        },
    )
    status: str

    @field_validator("timestamp")
    @classmethod
    def _utc_only(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("timestamp must carry a timezone (UTC)")
        return value.astimezone(UTC)

    @field_serializer("timestamp")
    def _serialize_timestamp(self, value: datetime) -> str:
        return format_timestamp(value)

    #: Optional fields left out of the JSON when unset (so 1.0 events stay exactly 1.0).
    _omit_when_none: ClassVar[tuple[str, ...]] = ()

    def detail_json(self) -> str:
        """The detail as compact JSON, exactly what goes into the EventBridge `Detail` field."""
        omit = {name for name in self._omit_when_none if getattr(self, name) is None}
        return self.model_dump_json(exclude=omit)


class BatchProcessingCompletedEvent(_Detail):
    """Detail of the `BatchProcessingCompleted` EventBridge event (versions 1.0 and 1.1)."""

    model_config = ConfigDict(title="BatchProcessingCompleted")
    _omit_when_none: ClassVar[tuple[str, ...]] = ("data", "data_ref", "metadata")

    version: Literal["1.0", "1.1"] = Field(
        SCHEMA_VERSION,
        description="Schema version (semver): 1.1 when `metadata` or `data_ref` is present.",
    )
    status: Literal["completed"] = Field("completed", description="Always `completed`.")
    data: EventData | None = Field(None, description="The transcripts (absent with data_ref).")
    data_ref: DataRef | None = Field(
        None, description="Since 1.1: where the transcripts are, when too large to carry."
    )
    metadata: Metadata = None

    @model_validator(mode="before")
    @classmethod
    def _lowest_version(cls, values: Any) -> Any:
        """Announce 1.1 only when a 1.1 field is used (unless a version is given)."""
        if isinstance(values, dict) and "version" not in values:
            uses_11 = values.get("metadata") is not None or values.get("data_ref") is not None
            return {**values, "version": "1.1" if uses_11 else SCHEMA_VERSION}
        return values

    @model_validator(mode="after")
    def _consistent(self) -> BatchProcessingCompletedEvent:
        if (self.data is None) == (self.data_ref is None):
            raise ValueError("exactly one of data and data_ref must be present")
        if self.version == "1.0" and (self.metadata is not None or self.data_ref is not None):
            raise ValueError("metadata and data_ref need version 1.1")
        return self


class BatchProcessingFailedEvent(_Detail):
    """Detail of the `BatchProcessingFailed` EventBridge event (version 1.0)."""

    model_config = ConfigDict(title="BatchProcessingFailed")
    _omit_when_none: ClassVar[tuple[str, ...]] = ("metadata",)

    version: Literal["1.0"] = Field("1.0", description="Schema version (semver).")
    status: Literal["failed"] = Field("failed", description="Always `failed`.")
    error: EventError
    metadata: Metadata = None


SCHEMA_BASE_URL = "https://batchscribe.dev/schemas/"
#: Where the schemas live in the repository, relative to its root. Not derived from this file's
#: location: in an installed package that would point into site-packages.
SCHEMA_DIR = Path("docs/events")
#: The schema files generated from the models (the 1.0 schema of the completed event is frozen:
#: `batch-processing-completed.v1.json`, checked by validating 1.0 events against it).
GENERATED_SCHEMAS: dict[str, type[_Detail]] = {
    "batch-processing-completed.v1.1.json": BatchProcessingCompletedEvent,
    "batch-processing-failed.v1.json": BatchProcessingFailedEvent,
}
SCHEMA_FILE = SCHEMA_DIR / "batch-processing-completed.v1.json"


def detail_json_schema(
    model: type[_Detail] = BatchProcessingCompletedEvent, name: str | None = None
) -> dict[str, Any]:
    """JSON Schema (2020-12) of a published `detail`, generated from its model.

    Serialization mode: it describes the JSON consumers receive (timestamp as a string, every
    field present), not what the constructor accepts. Fields left out when unset are optional.
    """
    if name is None:
        name = next(file for file, cls in GENERATED_SCHEMAS.items() if cls is model)
    schema = model.model_json_schema(mode="serialization")
    optional = set(model._omit_when_none)
    schema["required"] = [field for field in schema["required"] if field not in optional]
    if model is BatchProcessingCompletedEvent:
        schema["oneOf"] = [{"required": ["data"]}, {"required": ["data_ref"]}]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_BASE_URL + name,
        **schema,
    }


def render_schema(name: str) -> str:
    """A generated schema file's exact text (sorted keys, two-space indent, final newline)."""
    schema = detail_json_schema(GENERATED_SCHEMAS[name], name)
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """`python -m batchscribe.events.schema [--check] [DIR]`: write or check the generated
    schema files."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument(
        "directory",
        nargs="?",
        type=Path,
        help=f"where the schema files are (default: {SCHEMA_DIR}, from the repository root)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)
    if args.directory is None:
        if not SCHEMA_DIR.is_dir():
            print(
                f"error: {SCHEMA_DIR} not found here; run from the repository root or "
                "pass the schema DIRectory"
            )
            return 2
        args.directory = SCHEMA_DIR
    stale = []
    for name in GENERATED_SCHEMAS:
        path = args.directory / name
        text = render_schema(name)
        if args.check:
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            if current != text:
                stale.append(path)
            continue
        args.directory.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    for path in stale:
        print(f"{path} is out of date; run python -m batchscribe.events.schema")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
