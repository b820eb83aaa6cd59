"""`batchscribe tail`: a small reference consumer of the transcripts queue.

It long-polls the queue, validates each message (EventBridge envelope and event detail) and prints
one line per event with transcript lengths; the texts only with `show_text`. A completed event
whose transcripts were too large to carry (`data_ref`, SPEC 14) is followed to its S3 document,
which is checked against the reference's size and SHA-256; a failed event shows its error code.
It deletes a message only with `ack`; without it, messages stay in the queue and are released for
other consumers when tail stops. An invalid message (including a claim check whose document is
missing or differs) is reported and never deleted. Note that every receive counts toward the
queue's `maxReceiveCount` (3): a message watched without `--ack` for long enough moves to the
DLQ, as it would for any consumer.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from batchscribe.aws.clients import AWSCaller
from batchscribe.aws.exceptions import AWSError
from batchscribe.config import Settings, get_settings
from batchscribe.events.envelope import ReceivedEvent, parse_message
from batchscribe.events.exceptions import EventStructureError
from batchscribe.events.schema import (
    BatchProcessingCompletedEvent,
    BatchProcessingFailedEvent,
    EventData,
)
from batchscribe.infra import iam
from batchscribe.infra.claimcheck import ClaimCheckReader
from batchscribe.infra.exceptions import ClaimCheckError
from batchscribe.infra.target import AWSTarget, tool_clients

logger = logging.getLogger(__name__)


def format_event(
    received: ReceivedEvent, *, show_text: bool, acked: bool, data: EventData | None = None
) -> str:
    """One line per event; transcripts as lengths unless `show_text`. `data` is the transcripts
    of a claim-check event, fetched from where its `data_ref` points."""
    event = received.event
    line = (
        f"{received_type(received)} interaction_id={event.interaction_id} "
        f"tenant_id={event.tenant_id} user_id={event.user_id} "
        f"account_id={event.account_id or '-'} "
        f"timestamp={event.model_dump(mode='json')['timestamp']} "
    )
    if isinstance(event, BatchProcessingFailedEvent):
        line += f"error={event.error.code} "
    else:
        data = event.data or data
        if event.data_ref is not None:
            line += f"data_ref={event.data_ref.uri} ({event.data_ref.bytes} bytes) "
        if data is not None:
            line += (
                f"raw_transcript={len(data.raw_transcript)} chars "
                f"cleaned_transcript={len(data.cleaned_transcript)} chars "
            )
    line += f"receives={received.receive_count or '?'} {'acked' if acked else 'kept'}"
    if show_text and isinstance(event, BatchProcessingCompletedEvent) and data is not None:
        raw = data.raw_transcript.replace("\n", "\n    ")
        cleaned = data.cleaned_transcript.replace("\n", "\n    ")
        line += f"\n  raw:\n    {raw}\n  cleaned:\n    {cleaned}"
    return line


def received_type(received: ReceivedEvent) -> str:
    return "failed" if isinstance(received.event, BatchProcessingFailedEvent) else "event"


@dataclass
class TailStats:
    """What one tail session saw."""

    valid: int = 0
    invalid: int = 0
    acked: int = 0
    seen: set[str] = field(default_factory=set)  # message ids printed as events
    reported: set[str] = field(default_factory=set)  # message ids reported as invalid


class QueueTail:
    """Long-poll the queue and print events. `run()` returns when `once` drains the queue, when
    `max_messages` events were printed, or on KeyboardInterrupt."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        target: AWSTarget | None = None,
        sqs_client: Any = None,
        s3_client: Any = None,
        ack: bool = False,
        show_text: bool = False,
        max_messages: int | None = None,
        once: bool = False,
        wait_seconds: int = 20,
        visibility_timeout: int = 30,
        out: TextIO | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.target = target or AWSTarget.from_settings(self.settings)
        self.sqs = tool_clients(self.settings, self.target, {"sqs": sqs_client})["sqs"]
        self.ack = ack
        self.show_text = show_text
        self.max_messages = max_messages
        self.once = once
        self.wait_seconds = wait_seconds
        self.visibility_timeout = visibility_timeout
        self.out = out or sys.stdout
        self.caller = AWSCaller(
            (*iam.CONSUMER_ACTIONS, "sqs:ChangeMessageVisibility"),
            policy_hint="docs/iam/consumer-policy.json",
        )
        self.stats = TailStats()
        self._s3_client = s3_client
        self._claim_checks: ClaimCheckReader | None = None

    def claim_checks(self) -> ClaimCheckReader:
        """The reader of claim-check documents; its S3 client is built on first use (most
        sessions never see a `data_ref`)."""
        if self._claim_checks is None:
            client = tool_clients(self.settings, self.target, {"s3": self._s3_client})["s3"]
            self._claim_checks = ClaimCheckReader(client)
        return self._claim_checks

    def _done(self) -> bool:
        return self.max_messages is not None and self.stats.valid >= self.max_messages

    def run(self) -> TailStats:
        """Print events until a stop condition; kept messages are released on the way out."""
        url = str(
            self.caller.call(self.sqs, "get_queue_url", QueueName=self.target.queue_name)[
                "QueueUrl"
            ]
        )
        kept: dict[str, str] = {}
        try:
            while not self._done():
                response = self.caller.call(
                    self.sqs,
                    "receive_message",
                    QueueUrl=url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=self.wait_seconds,
                    VisibilityTimeout=self.visibility_timeout,
                    MessageSystemAttributeNames=["ApproximateReceiveCount"],
                )
                messages = response.get("Messages", [])
                if not messages and self.once:
                    break
                for message in messages:
                    if self._done():
                        kept[str(message["MessageId"])] = str(message["ReceiptHandle"])
                        continue
                    self._handle(url, message, kept)
        except KeyboardInterrupt:
            pass
        finally:
            self._release(url, kept)
        return self.stats

    def _invalid(self, message: dict[str, Any], kept: dict[str, str], problem: str) -> None:
        """Report an invalid message once and keep it: it is never deleted."""
        message_id = str(message.get("MessageId"))
        if message_id not in self.stats.reported:
            self.stats.invalid += 1
            print(f"invalid message {message_id}: {problem}", file=self.out, flush=True)
        self.stats.reported.add(message_id)
        kept[message_id] = str(message["ReceiptHandle"])

    def _transcripts(self, received: ReceivedEvent) -> EventData | None:
        """The transcripts of a claim-check event, fetched and checked (None for other events,
        and for one printed already)."""
        event = received.event
        if not isinstance(event, BatchProcessingCompletedEvent) or event.data_ref is None:
            return None
        if received.message_id in self.stats.seen:
            return None
        try:
            return self.claim_checks().fetch(event.data_ref)
        except ClaimCheckError as exc:
            raise ClaimCheckError(f"interaction_id={event.interaction_id}: {exc}") from exc

    def _handle(self, url: str, message: dict[str, Any], kept: dict[str, str]) -> None:
        message_id = str(message.get("MessageId"))
        try:
            received = parse_message(message, source=self.target.source)
            data = self._transcripts(received)
        except (EventStructureError, ClaimCheckError) as exc:
            self._invalid(message, kept, str(exc))
            return
        if self.ack:
            self.caller.call(
                self.sqs, "delete_message", QueueUrl=url, ReceiptHandle=received.receipt_handle
            )
            self.stats.acked += 1
            kept.pop(message_id, None)
        else:
            kept[message_id] = received.receipt_handle
        if message_id not in self.stats.seen:
            self.stats.valid += 1
            print(
                format_event(received, show_text=self.show_text, acked=self.ack, data=data),
                file=self.out,
                flush=True,
            )
        self.stats.seen.add(message_id)

    def _release(self, url: str, kept: dict[str, str]) -> None:
        """Make messages we did not delete visible to other consumers at once."""
        items = list(kept.items())
        for start in range(0, len(items), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for i, (_, handle) in enumerate(items[start : start + 10])
            ]
            try:
                self.caller.call(
                    self.sqs, "change_message_visibility_batch", QueueUrl=url, Entries=entries
                )
            except AWSError as exc:  # e.g. a consumer policy without the action
                logger.warning(
                    "could not release %d kept messages (%s); they reappear after %d s",
                    len(entries),
                    exc,
                    self.visibility_timeout,
                )
