"""Minimal EventBridge -> SQS wiring on the emulator for event tests (not the provisioner)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import boto3

from batchscribe.events.schema import DETAIL_TYPE


@dataclass
class EventRoute:
    """A queue receiving every event of `source` through a rule on the default bus."""

    sqs: Any
    events: Any
    queue_url: str
    rule_name: str

    def receive_details(self, expected: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Long-poll until `expected` messages arrived (or the timeout); return their details."""
        details: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(details) < expected and time.monotonic() < deadline:
            answer = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            for message in answer.get("Messages", []):
                envelope = json.loads(message["Body"])
                details.append(envelope["detail"])
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        return details

    def close(self) -> None:
        self.sqs.close()
        self.events.close()


def clients(endpoint_url: str) -> tuple[Any, Any]:
    """(events, sqs) clients on the emulator, with its dummy credentials."""
    common = {
        "endpoint_url": endpoint_url,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    return boto3.client("events", **common), boto3.client("sqs", **common)


def route_events_to_queue(endpoint_url: str, source: str) -> EventRoute:
    """Create a fresh queue and a rule matching `source` + our detail type, targeting it."""
    events, sqs = clients(endpoint_url)
    suffix = uuid.uuid4().hex[:8]
    queue_url = sqs.create_queue(QueueName=f"events-test-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    rule_name = f"events-test-rule-{suffix}"
    events.put_rule(
        Name=rule_name,
        EventPattern=json.dumps({"source": [source], "detail-type": [DETAIL_TYPE]}),
        State="ENABLED",
    )
    events.put_targets(Rule=rule_name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return EventRoute(sqs=sqs, events=events, queue_url=queue_url, rule_name=rule_name)
