"""`EventFlowVerifier`: one test event through EventBridge, the rule and into the queue.

It publishes a schema-valid event with a fresh interaction id, polls the queue every 2 s (up to
`timeout`) with a 10 s visibility timeout, validates the envelope and detail of the message carrying
that id and deletes that message only. Everybody else's messages are released at once (visibility
0); one seen a second time is held until the end of the run instead, so a busy queue's messages are
received at most twice by the verifier and do not run into the DLQ's `maxReceiveCount`.

Exit codes (`batchscribe.infra.exit_codes`): 0 ok, 1 not received in time (or AWS unreachable),
2 credentials or permissions, 3 queue not found, 4 structure invalid.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from batchscribe.aws.clients import AWSCaller
from batchscribe.aws.exceptions import (
    AWSAccessDeniedError,
    AWSCredentialsError,
    AWSError,
    QueueNotFoundError,
)
from batchscribe.config import Settings, get_settings
from batchscribe.events.entry import EventEntry, build_completed_entry
from batchscribe.events.envelope import parse_envelope
from batchscribe.events.exceptions import EventStructureError
from batchscribe.identity import RequestContext
from batchscribe.infra import iam
from batchscribe.infra.exceptions import EventRejectedError
from batchscribe.infra.exit_codes import ExitCode
from batchscribe.infra.target import AWSTarget, tool_clients

logger = logging.getLogger(__name__)

MAX_VISIBILITY = 43200  # SQS upper bound, 12 h


@dataclass
class VerificationResult:
    """Outcome of one verification run."""

    exit_code: ExitCode
    status: str
    message: str
    interaction_id: str
    event_id: str | None = None
    queue_url: str | None = None
    elapsed_seconds: float = 0.0
    polls: int = 0
    other_messages_released: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EventFlowVerifier:
    """Publish a test event and find it in the queue. `run()` never raises AWS errors."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        target: AWSTarget | None = None,
        events_client: Any = None,
        sqs_client: Any = None,
        timeout: float = 30.0,
        poll_interval: float = 2.0,
        visibility_timeout: int = 10,
        interaction_id: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or get_settings()
        self.target = target or AWSTarget.from_settings(self.settings)
        self.events = events_client
        self.sqs = sqs_client
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.visibility_timeout = visibility_timeout
        self.interaction_id = interaction_id or str(uuid.uuid4())
        self.caller = AWSCaller(iam.VERIFIER_ACTIONS, policy_hint="docs/iam/verifier-policy.json")
        self._sleep = sleep
        self._clock = clock

    def build_test_entry(self) -> EventEntry:
        """A schema-valid entry that says what it is and carries no personal data."""
        context = RequestContext(
            tenant_id=str(uuid.uuid4()),
            user_id="batchscribe-verify",
            account_id=None,
            interaction_id=self.interaction_id,
        )
        return build_completed_entry(
            context,
            "SPEAKER_0: this is a batchscribe event flow verification",
            "This is a batchscribe event flow verification.",
            source=self.target.source,
            bus_name=self.target.bus_name,
        )

    def _connect(self) -> None:
        clients = tool_clients(self.settings, self.target, {"events": self.events, "sqs": self.sqs})
        self.events, self.sqs = clients["events"], clients["sqs"]

    def queue_url(self) -> str:
        """The queue's URL; QueueNotFoundError when it does not exist."""
        response = self.caller.call(self.sqs, "get_queue_url", QueueName=self.target.queue_name)
        return str(response["QueueUrl"])

    def publish_test_event(self) -> str:
        """PutEvents with the test event; the EventBridge event id."""
        entry = self.build_test_entry().entry
        response = self.caller.call(self.events, "put_events", Entries=[entry])
        result = response.get("Entries", [{}])[0]
        if response.get("FailedEntryCount") or "ErrorCode" in result:
            raise EventRejectedError(
                f"EventBridge rejected the test event: {result.get('ErrorCode')}: "
                f"{result.get('ErrorMessage')}"
            )
        return str(result.get("EventId", ""))

    def run(self) -> VerificationResult:
        """The whole check, mapped to an exit code."""
        started = self._clock()
        result = VerificationResult(ExitCode.FAILED, "not_received", "", self.interaction_id)
        try:
            self._connect()
            result.queue_url = self.queue_url()
            result.event_id = self.publish_test_event()
            logger.info(
                "published test event %s (interaction_id %s); polling %s",
                result.event_id,
                self.interaction_id,
                self.target.queue_name,
            )
            self._poll(result, started)
        except QueueNotFoundError:
            result.exit_code, result.status = ExitCode.QUEUE_NOT_FOUND, "queue_not_found"
            result.message = (
                f"queue {self.target.queue_name!r} not found in {self.target.region}; run "
                "scripts/setup_aws_infra.py (batchscribe provision) first"
            )
        except (AWSCredentialsError, AWSAccessDeniedError) as exc:
            result.exit_code, result.status, result.message = (
                ExitCode.CREDENTIALS,
                "credentials",
                str(exc),
            )
        except EventStructureError as exc:
            result.exit_code, result.status = ExitCode.INVALID_EVENT, "invalid"
            result.message = f"the test event arrived but is malformed: {exc}"
        except (AWSError, EventRejectedError) as exc:
            result.exit_code, result.status, result.message = ExitCode.FAILED, "error", str(exc)
        result.elapsed_seconds = round(self._clock() - started, 3)
        return result

    def _poll(self, result: VerificationResult, started: float) -> None:
        deadline = started + self.timeout
        seen: set[str] = set()
        held: dict[str, str] = {}
        assert result.queue_url is not None
        url = result.queue_url
        try:
            while (remaining := deadline - self._clock()) > 0:
                poll_started = self._clock()
                wait = max(0, min(int(self.poll_interval), int(remaining), 20))
                response = self.caller.call(
                    self.sqs,
                    "receive_message",
                    QueueUrl=url,
                    MaxNumberOfMessages=10,
                    VisibilityTimeout=self.visibility_timeout,
                    WaitTimeSeconds=wait,
                )
                result.polls += 1
                own, release = None, []
                for message in response.get("Messages", []):
                    message_id = str(message.get("MessageId"))
                    if own is None and self.interaction_id in str(message.get("Body", "")):
                        own = message
                    elif message_id in seen:
                        hold = min(MAX_VISIBILITY, math.ceil(remaining) + self.visibility_timeout)
                        self._set_visibility(url, [message], hold)
                        held[message_id] = str(message["ReceiptHandle"])
                    else:
                        seen.add(message_id)
                        release.append(message)
                self._set_visibility(url, release, 0)  # others' messages: back at once
                result.other_messages_released = len(seen)
                if own is not None:
                    self._take_own(url, own, str(own.get("Body", "")))
                    result.exit_code, result.status = ExitCode.OK, "ok"
                    result.message = (
                        f"test event {result.event_id} arrived in {self.target.queue_name} "
                        "with a valid structure and was deleted"
                    )
                    return
                rest = self.poll_interval - (self._clock() - poll_started)
                if rest > 0:
                    self._sleep(min(rest, max(0.0, deadline - self._clock())))
            result.message = (
                f"the test event did not arrive in {self.target.queue_name} within "
                f"{self.timeout:g} s; check that rule {self.target.rule_name!r} is ENABLED on bus "
                f"{self.target.bus_name!r} with the queue as its target (batchscribe provision)"
            )
        finally:
            handles = [{"MessageId": k, "ReceiptHandle": v} for k, v in held.items()]
            self._set_visibility(url, handles, 0)

    def _take_own(self, url: str, message: dict[str, Any], body: str) -> None:
        """Delete our message whatever its shape (it is test data), then validate it."""
        self.caller.call(
            self.sqs, "delete_message", QueueUrl=url, ReceiptHandle=message["ReceiptHandle"]
        )
        event = parse_envelope(body, source=self.target.source)
        if event.interaction_id != self.interaction_id:
            raise EventStructureError("interaction_id of the detail is not the test id")

    def _set_visibility(self, url: str, messages: list[dict[str, Any]], seconds: int) -> None:
        for start in range(0, len(messages), 10):
            entries = [
                {
                    "Id": str(index),
                    "ReceiptHandle": str(message["ReceiptHandle"]),
                    "VisibilityTimeout": seconds,
                }
                for index, message in enumerate(messages[start : start + 10])
            ]
            self.caller.call(
                self.sqs, "change_message_visibility_batch", QueueUrl=url, Entries=entries
            )
