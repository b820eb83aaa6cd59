"""Building a PutEvents entry: the one path from an identity and transcripts to what is sent.

`build_completed_entry` validates the detail against the event model, wraps it in the entry
EventBridge expects and measures it the way AWS does. The request path (via the outbox), the
publisher's one-off `publish_batch_completed_event`, the flow verifier and the benchmark all
call it, so an entry can never be built two ways.

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
from batchscribe.events.schema import DETAIL_TYPE, BatchProcessingCompletedEvent, EventData
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
    event: BatchProcessingCompletedEvent
    entry: dict[str, Any]
    size_bytes: int

    def fits(self, max_bytes: int) -> bool:
        """Whether PutEvents may be given this entry under a limit of `max_bytes`."""
        return self.size_bytes <= max_bytes


def completed_event(
    context: RequestContext, raw_transcript: str, cleaned_transcript: str
) -> BatchProcessingCompletedEvent:
    """The validated event detail; raises `EventValidationError` when it breaks the model.

    The error names fields and error types only: the input may contain transcript text.
    """
    try:
        return BatchProcessingCompletedEvent(
            interaction_id=context.interaction_id,
            tenant_id=context.tenant_id,
            user_id=context.user_id,
            account_id=context.account_id,
            data=EventData(raw_transcript=raw_transcript, cleaned_transcript=cleaned_transcript),
        )
    except ValidationError as exc:
        problems = ", ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['type']}" for err in exc.errors()
        )
        iid = context.interaction_id if isinstance(context.interaction_id, str) else None
        raise EventValidationError(
            f"Event does not match the BatchProcessingCompleted model ({problems})",
            interaction_id=iid,
            code="Invalid",
        ) from None


def build_completed_entry(
    context: RequestContext,
    raw_transcript: str,
    cleaned_transcript: str,
    *,
    source: str,
    bus_name: str,
) -> EventEntry:
    """The `BatchProcessingCompleted` PutEvents entry for one interaction, with its size.

    No `Time` field: EventBridge stamps the receipt time, and the detail carries its own
    `timestamp`. Raises `EventValidationError` when the identity or transcripts break the model.
    """
    event = completed_event(context, raw_transcript, cleaned_transcript)
    entry = {
        "Source": source,
        "DetailType": DETAIL_TYPE,
        "Detail": event.detail_json(),
        "EventBusName": bus_name,
    }
    return EventEntry(
        interaction_id=event.interaction_id,
        tenant_id=event.tenant_id,
        event=event,
        entry=entry,
        size_bytes=entry_size(entry),
    )
