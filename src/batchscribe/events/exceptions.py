"""Errors of the event machinery (publisher, outbox, relay).

    EventsError
    ├── PublishError                   a publish did not succeed (carries interaction_id, code)
    │   ├── EventValidationError       the detail does not match the event model (terminal)
    │   ├── EventTooLargeError         the entry is over EVENT_MAX_BYTES (terminal: too_large)
    │   ├── PublishingDisabledError    no AWS credentials: events are held, not sent
    │   ├── PublishRejectedError       EventBridge refused the entry or call with a terminal code
    │   └── PublishTransientError      throttling, internal failure or network: retry later
    ├── OutboxError                    the SQLite outbox could not be read or written
    │   └── OutboxNotFoundError        there is no outbox file at OUTBOX_PATH (tools only)
    ├── EventNotFoundError             no event with this interaction id for this tenant
    └── EventStructureError            a queue message is not a valid event (consumers' side)

The publisher maps the AWS boundary's errors (`batchscribe.aws.exceptions`) onto these by their
`retryable` flag; nothing above it sees a `ClientError`. No message contains transcript text or
a credential.
"""

from __future__ import annotations


class EventsError(Exception):
    """Base class of every error of the event machinery."""


class PublishError(EventsError):
    """Publishing an event (or a batch of entries) failed.

    `code` is the AWS error code when there is one (`ThrottlingException`, `AccessDenied`...),
    or a short name of our own (`NetworkError`, `NoCredentials`, `TooLarge`, `Invalid`).
    `retryable` says whether trying the same entry later may succeed.
    """

    retryable = False

    def __init__(
        self, message: str, *, interaction_id: str | None = None, code: str | None = None
    ) -> None:
        if interaction_id:
            message = f"{message} (interaction_id={interaction_id})"
        super().__init__(message)
        self.interaction_id = interaction_id
        self.code = code


class EventValidationError(PublishError):
    """The event does not satisfy the `BatchProcessingCompletedEvent` model."""


class EventTooLargeError(PublishError):
    """The PutEvents entry, measured the way AWS does, exceeds `EVENT_MAX_BYTES`."""

    def __init__(
        self, size_bytes: int, limit_bytes: int, *, interaction_id: str | None = None
    ) -> None:
        super().__init__(
            f"Event entry is {size_bytes} bytes, over the {limit_bytes}-byte limit; "
            "it is recorded as too_large and not sent",
            interaction_id=interaction_id,
            code="TooLarge",
        )
        self.size_bytes = size_bytes
        self.limit_bytes = limit_bytes


class PublishingDisabledError(PublishError):
    """Publishing is disabled (no AWS credentials found); configure AWS and replay."""


class PublishRejectedError(PublishError):
    """EventBridge answered with a code that will not succeed on retry (kept as `failed`)."""


class PublishTransientError(PublishError):
    """Throttling, an internal failure or a network error: the same entry may succeed later."""

    retryable = True


class OutboxError(EventsError):
    """The outbox database could not be opened, read or written."""


class OutboxNotFoundError(OutboxError):
    """There is no outbox file at the path (a tool run away from the service's working
    directory, or a wrong OUTBOX_PATH). Tools that only read the outbox never create one."""


class EventNotFoundError(EventsError):
    """No event with this interaction id belongs to the asking tenant.

    Another tenant's event raises the same error as an unknown id, so ids cannot be probed.
    """

    def __init__(self, interaction_id: str) -> None:
        super().__init__(
            "No event with this interaction id for your tenant. Check the id and the "
            "X-Tenant-ID header you sent with the upload."
        )
        self.interaction_id = interaction_id


class EventStructureError(EventsError):
    """A queue message is not a valid EventBridge envelope around our event detail."""
