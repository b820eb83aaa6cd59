"""An SQS queue on the emulator that receives our events through an EventBridge rule, and a
reader that counts which interaction ids arrived (and how often).

Used by the chaos test, the log audit and the benchmark. Each user gets its own queue and rule
with a unique suffix, and should use its own `EVENT_SOURCE`, so runs never see each other's
events on the shared emulator.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boto3

DETAIL_TYPE = "BatchProcessingCompleted"


def emulator_client(service: str, endpoint_url: str) -> Any:
    """A boto3 client on the emulator with its dummy credentials."""
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@dataclass
class EventSink:
    """Queue + rule on the emulator; `collect()` reads and deletes what arrived."""

    endpoint_url: str
    source: str
    queue_url: str = ""
    rule_name: str = ""
    received: Counter[str] = field(default_factory=Counter)
    _sqs: Any = None
    _events: Any = None

    @classmethod
    def create(cls, endpoint_url: str, source: str) -> EventSink:
        sink = cls(endpoint_url=endpoint_url, source=source)
        sink._sqs = emulator_client("sqs", endpoint_url)
        sink._events = emulator_client("events", endpoint_url)
        suffix = uuid.uuid4().hex[:8]
        sink.queue_url = sink._sqs.create_queue(QueueName=f"sink-{suffix}")["QueueUrl"]
        queue_arn = sink._sqs.get_queue_attributes(
            QueueUrl=sink.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        sink.rule_name = f"sink-rule-{suffix}"
        sink._events.put_rule(
            Name=sink.rule_name,
            EventPattern=json.dumps({"source": [source], "detail-type": [DETAIL_TYPE]}),
            State="ENABLED",
        )
        sink._events.put_targets(Rule=sink.rule_name, Targets=[{"Id": "sink", "Arn": queue_arn}])
        return sink

    def collect(self, expected: set[str], timeout: float) -> Counter[str]:
        """Read the queue until every id in `expected` arrived or `timeout` passed; return how
        many times each interaction id was received so far (duplicates count)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self._sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            for message in answer.get("Messages", []):
                detail = json.loads(message["Body"])["detail"]
                self.received[detail["interaction_id"]] += 1
                self._sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
            # Stop after one empty read once all arrived, so late duplicates are counted too.
            if expected <= set(self.received) and not answer.get("Messages"):
                break
        return self.received

    def close(self) -> None:
        for client in (self._sqs, self._events):
            if client is not None:
                client.close()
