"""Emulator clients, and an SQS queue that receives our events through an EventBridge rule.

Used by the event tests, the chaos test, the log audit, the benchmark and
`scripts/measure_event_latency.py`. Each user gets its own queue and rule with a unique suffix,
and should use its own `EVENT_SOURCE`, so runs never see each other's events on a shared emulator.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx
from botocore.config import Config

from batchscribe.infra.emulator import EMULATOR_CREDENTIALS

# Spelled out here (not imported from the package) so a renamed detail type fails the tests.
#: Both detail types the service publishes (completed and failed jobs).
DETAIL_TYPES = ("BatchProcessingCompleted", "BatchProcessingFailed")
REGION = "us-east-1"


def emulator_client(service: str, endpoint_url: str, config: Config | None = None) -> Any:
    """A boto3 client of `service` on the emulator (or a proxy in front of it), with the
    emulator's dummy credentials."""
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=config,
    )


def reset_emulator(endpoint_url: str) -> None:
    """Make the emulator forget every resource (moto's reset API), for tests that need a
    clean account."""
    httpx.post(f"{endpoint_url}/moto-api/reset", timeout=10).raise_for_status()


@dataclass
class EventSink:
    """A fresh queue receiving every event of `source` through a rule on the default bus.

    `receive_details()` returns the events' `detail` objects; `collect()` counts interaction ids
    (duplicates included) in `received`. Both delete what they read. `close()` closes the
    clients; the queue and rule stay on the emulator (their names are unique).
    """

    sqs: Any
    events: Any
    source: str
    queue_url: str
    rule_name: str
    received: Counter[str] = field(default_factory=Counter)

    @classmethod
    def create(cls, endpoint_url: str, source: str) -> EventSink:
        sqs = emulator_client("sqs", endpoint_url)
        events = emulator_client("events", endpoint_url)
        suffix = uuid.uuid4().hex[:8]
        queue_url = sqs.create_queue(QueueName=f"sink-{suffix}")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        rule_name = f"sink-rule-{suffix}"
        events.put_rule(
            Name=rule_name,
            EventPattern=json.dumps({"source": [source], "detail-type": list(DETAIL_TYPES)}),
            State="ENABLED",
        )
        events.put_targets(Rule=rule_name, Targets=[{"Id": "sink", "Arn": queue_arn}])
        return cls(sqs=sqs, events=events, source=source, queue_url=queue_url, rule_name=rule_name)

    def _receive(self) -> list[dict[str, Any]]:
        """One long poll (up to 1 s): the details received, deleted from the queue and counted."""
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        details = []
        for message in answer.get("Messages", []):
            detail = json.loads(message["Body"])["detail"]
            details.append(detail)
            if isinstance(detail, dict) and "interaction_id" in detail:
                self.received[detail["interaction_id"]] += 1
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return details

    def receive_details(self, expected: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Read until `expected` events arrived or `timeout` passed; their details, in order."""
        details: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(details) < expected and time.monotonic() < deadline:
            details += self._receive()
        return details

    def collect(self, expected: set[str], timeout: float) -> Counter[str]:
        """Read until every id in `expected` arrived or `timeout` passed; return how many times
        each interaction id was received so far (duplicates count)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            arrived = self._receive()
            # Stop after one empty read once all arrived, so late duplicates are counted too.
            if expected <= set(self.received) and not arrived:
                break
        return self.received

    def close(self) -> None:
        self.sqs.close()
        self.events.close()
