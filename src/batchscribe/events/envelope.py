"""Reading a queue message: the EventBridge envelope around one of our details
(`BatchProcessingCompleted` or `BatchProcessingFailed`).

Shared by the verifier and the reference consumer (`batchscribe tail`). Errors name fields, never
values: a detail carries transcripts, which must not end up in a log or a terminal by accident.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from batchscribe.events.exceptions import EventStructureError
from batchscribe.events.schema import (
    DETAIL_TYPE,
    FAILED_DETAIL_TYPE,
    BatchProcessingCompletedEvent,
    BatchProcessingFailedEvent,
)

AnyEvent = BatchProcessingCompletedEvent | BatchProcessingFailedEvent
_MODELS: dict[str, type[AnyEvent]] = {
    DETAIL_TYPE: BatchProcessingCompletedEvent,
    FAILED_DETAIL_TYPE: BatchProcessingFailedEvent,
}

# What EventBridge puts around every event delivered to SQS. AWS also sends "account"; moto's
# server leaves it out, so it is read when present but not required.
ENVELOPE_KEYS = ("version", "id", "detail-type", "source", "time", "region", "resources", "detail")


@dataclass(frozen=True)
class ReceivedEvent:
    """One validated event taken from the queue."""

    message_id: str
    receipt_handle: str
    receive_count: int | None
    envelope_id: str
    event: AnyEvent


def parse_envelope(body: str, *, source: str | None = None) -> AnyEvent:
    """Validate an SQS message body as our event; raise EventStructureError saying what is wrong."""
    try:
        envelope: Any = json.loads(body)
    except ValueError as exc:
        raise EventStructureError("the message body is not JSON") from exc
    if not isinstance(envelope, dict):
        raise EventStructureError("the message body is not a JSON object (EventBridge envelope)")
    missing = [key for key in ENVELOPE_KEYS if key not in envelope]
    if missing:
        raise EventStructureError(f"the EventBridge envelope lacks {', '.join(missing)}")
    model = _MODELS.get(envelope["detail-type"])
    if model is None:
        raise EventStructureError(f"detail-type is not one of {', '.join(_MODELS)}")
    if source is not None and envelope["source"] != source:
        raise EventStructureError(f"source is not {source!r}")
    detail = envelope["detail"]
    if not isinstance(detail, dict):
        raise EventStructureError("detail is not a JSON object")
    try:
        return model.model_validate_json(json.dumps(detail))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'detail'}: {error['msg']}"
            for error in exc.errors()
        )
        raise EventStructureError(
            f"the detail does not match the event schema: {problems}"
        ) from exc


def parse_message(message: dict[str, Any], *, source: str | None = None) -> ReceivedEvent:
    """An SQS `Message` dict as a ReceivedEvent (raises EventStructureError)."""
    event = parse_envelope(str(message.get("Body", "")), source=source)
    count = message.get("Attributes", {}).get("ApproximateReceiveCount")
    envelope_id = str(json.loads(message["Body"]).get("id", ""))
    return ReceivedEvent(
        message_id=str(message.get("MessageId", "")),
        receipt_handle=str(message.get("ReceiptHandle", "")),
        receive_count=int(count) if count is not None else None,
        envelope_id=envelope_id,
        event=event,
    )
