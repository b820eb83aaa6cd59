"""Building a PutEvents entry: the one path from an identity and transcripts to what is sent.

`build_completed_entry` validates the detail against the event model, wraps it in the entry
EventBridge expects and measures it the way AWS does. Job completion (via the outbox), the
publisher's one-off `publish_batch_completed_event`, the flow verifier and the benchmark all
call it, so an entry can never be built two ways. `build_failed_entry` does the same for
`BatchProcessingFailed`, and `build_completed_ref_entry` for a completed event whose
transcripts were stored elsewhere (claim check).

AWS's size rule: the UTF-8 bytes of `Source`, `DetailType`, `Detail` and each `Resources` string,
plus 14 bytes when `Time` is set; `EventBusName` and `TraceHeader` do not count. PutEvents refuses
an entry over 256 KiB, so an event over `EVENT_MAX_BYTES` is never sent blindly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from batchscribe.events.exceptions import EventValidationError
from batchscribe.events.schema import (
    DETAIL_TYPE,
    FAILED_DETAIL_TYPE,
    BatchProcessingCompletedEvent,
    BatchProcessingFailedEvent,
    DataRef,
    EventData,
    EventError,
)
from batchscribe.identity import RequestContext

TIME_FIELD_BYTES = 14


def _utf8_len(value: Any) -> int:
    return len(str(value).encode("utf-8")) if value is not None else 0


def entry_size(entry: Mapping[str, Any]) -> int:
    """Size in bytes of one PutEvents entry as AWS computes it."""
    size = sum(_utf8_len(entry.get(key)) for key in ("Source", "DetailType", "Detail"))
    size += sum(_utf8_len(resource) for resource in entry.get("Resources") or ())
    if entry.get("Time") is not None:
        size += TIME_FIELD_BYTES
    return size


@dataclass(frozen=True, slots=True)
class EventEntry:
    """A validated PutEvents entry, ready to store or send, with its AWS size."""

    interaction_id: str
    tenant_id: str
    detail_type: str
    event: BatchProcessingCompletedEvent | BatchProcessingFailedEvent
    entry: dict[str, Any]
    size_bytes: int

    def fits(self, max_bytes: int) -> bool:
        """Whether PutEvents may be given this entry under a limit of `max_bytes`."""
        return self.size_bytes <= max_bytes


def _validated(model: type[Any], context: RequestContext, **fields: Any) -> Any:
    """`model` built from the identity and `fields`; `EventValidationError` when it breaks the
    model. The error names fields and error types only: the input may contain transcript text.
    """
    try:
        return model(
            interaction_id=context.interaction_id,
            tenant_id=context.tenant_id,
            user_id=context.user_id,
            account_id=context.account_id,
            **fields,
        )
    except ValidationError as exc:
        problems = ", ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['type']}" for err in exc.errors()
        )
        iid = context.interaction_id if isinstance(context.interaction_id, str) else None
        raise EventValidationError(
            f"Event does not match the {model.model_config.get('title')} model ({problems})",
            interaction_id=iid,
            code="Invalid",
        ) from None


def _entry(
    event: BatchProcessingCompletedEvent | BatchProcessingFailedEvent,
    detail_type: str,
    source: str,
    bus_name: str,
) -> EventEntry:
    # No `Time` field: EventBridge stamps the receipt time; the detail has its own timestamp.
    entry = {
        "Source": source,
        "DetailType": detail_type,
        "Detail": event.detail_json(),
        "EventBusName": bus_name,
    }
    return EventEntry(
        interaction_id=event.interaction_id,
        tenant_id=event.tenant_id,
        detail_type=detail_type,
        event=event,
        entry=entry,
        size_bytes=entry_size(entry),
    )


def completed_event(
    context: RequestContext,
    raw_transcript: str,
    cleaned_transcript: str,
    metadata: dict[str, Any] | None = None,
) -> BatchProcessingCompletedEvent:
    """The validated completed detail; raises `EventValidationError` when it breaks the model."""
    data = EventData(raw_transcript=raw_transcript, cleaned_transcript=cleaned_transcript)
    event: BatchProcessingCompletedEvent = _validated(
        BatchProcessingCompletedEvent, context, data=data, metadata=metadata
    )
    return event


def build_completed_entry(
    context: RequestContext,
    raw_transcript: str,
    cleaned_transcript: str,
    *,
    source: str,
    bus_name: str,
    metadata: dict[str, Any] | None = None,
) -> EventEntry:
    """The `BatchProcessingCompleted` PutEvents entry for one interaction, with its size.

    Raises `EventValidationError` when the identity or transcripts break the model.
    """
    event = completed_event(context, raw_transcript, cleaned_transcript, metadata)
    return _entry(event, DETAIL_TYPE, source, bus_name)


def build_completed_ref_entry(
    context: RequestContext,
    data_ref: DataRef,
    *,
    source: str,
    bus_name: str,
    metadata: dict[str, Any] | None = None,
) -> EventEntry:
    """A completed entry whose transcripts are in the document `data_ref` points to (1.1)."""
    event = _validated(BatchProcessingCompletedEvent, context, data_ref=data_ref, metadata=metadata)
    return _entry(event, DETAIL_TYPE, source, bus_name)


def build_failed_entry(
    context: RequestContext,
    code: str,
    message: str,
    *,
    source: str,
    bus_name: str,
    metadata: dict[str, Any] | None = None,
) -> EventEntry:
    """The `BatchProcessingFailed` PutEvents entry: identity, error, no transcripts."""
    event = _validated(
        BatchProcessingFailedEvent,
        context,
        error=EventError(code=code[:64], message=message[:2000]),
        metadata=metadata,
    )
    return _entry(event, FAILED_DETAIL_TYPE, source, bus_name)
