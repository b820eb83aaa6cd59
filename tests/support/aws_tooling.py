"""Helpers for the AWS tooling tests: emulator clients, the CLI in-process, reading state back."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config

from batchscribe.infra.cli import TOOL_LOGGERS, register
from batchscribe.infra.emulator import LocalAWSEmulator
from testkit.aws import emulator_client

QUEUE = "meeting-transcripts-queue"
DLQ = "meeting-transcripts-dlq"
RULE = "capture-transcripts-rule"


def clients(emulator: LocalAWSEmulator) -> tuple[Any, Any]:
    """(sqs, events) clients on the emulator with its dummy credentials."""
    return (
        emulator_client("sqs", emulator.endpoint_url),
        emulator_client("events", emulator.endpoint_url),
    )


def s3_client(emulator: LocalAWSEmulator) -> Any:
    """An S3 client on the emulator, addressing buckets by path as the tools do there."""
    return emulator_client("s3", emulator.endpoint_url, Config(s3={"addressing_style": "path"}))


def bucket_settings(s3: Any, bucket: str) -> dict[str, Any]:
    """The bucket's default encryption algorithm and public-access block, as S3 reports them
    (None for a setting not configured)."""
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        algorithm = rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
    except s3.exceptions.ClientError:
        algorithm = None
    try:
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except s3.exceptions.ClientError:
        block = None
    return {"encryption": algorithm, "public_access_block": block}


PRIVATE = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def run_cli(*argv: str) -> int:
    """Run `batchscribe <argv>` through the subcommands `register` adds; the exit code."""
    parser = argparse.ArgumentParser(prog="batchscribe")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return int(args.func(args))


def queue_url(sqs: Any, name: str) -> str:
    return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])


def attributes(sqs: Any, name: str) -> dict[str, str]:
    url = queue_url(sqs, name)
    return dict(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])


def snapshot(sqs: Any, events: Any) -> dict[str, Any]:
    """Every provisioned setting, for "nothing changed" comparisons (counters left out)."""
    state: dict[str, Any] = {}
    for name in (DLQ, QUEUE):
        attrs = attributes(sqs, name)
        state[name] = {k: v for k, v in attrs.items() if not k.startswith("Approximate")}
    rule = events.describe_rule(Name=RULE)
    state[RULE] = {k: rule[k] for k in ("Arn", "EventPattern", "State")}
    state["targets"] = events.list_targets_by_rule(Rule=RULE)["Targets"]
    return state


def drain(sqs: Any, name: str) -> list[dict[str, Any]]:
    """Receive (and delete) every visible message of a queue."""
    url = queue_url(sqs, name)
    received: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return received
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        received += batch


def policy_statement(sqs: Any) -> dict[str, Any]:
    statements = json.loads(attributes(sqs, QUEUE)["Policy"])["Statement"]
    assert len(statements) == 1
    return dict(statements[0])


@pytest.fixture(autouse=True)
def restore_cli_logging() -> Iterator[None]:
    """The CLI gives the tooling loggers their own stderr handler; undo that after each test."""
    saved = []
    for name in TOOL_LOGGERS:
        log = logging.getLogger(name)
        saved.append((log, list(log.handlers), log.propagate, log.level))
    yield
    for log, handlers, propagate, level in saved:
        log.handlers[:] = handlers
        log.propagate, log.level = propagate, level
