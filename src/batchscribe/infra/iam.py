"""Least-privilege IAM policies for the publisher, consumers, the verifier and the provisioner.

The same builders print the policies with real ARNs (the provisioner knows the account) and
generate `docs/iam/*.json` with `REGION` / `ACCOUNT_ID` placeholders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# What each tool calls. The AccessDenied message quotes the tool's list in full.
PUBLISHER_ACTIONS = ("events:PutEvents",)
CONSUMER_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",  # lets a consumer find the queue by name; drop it if you pass the URL
)
VERIFIER_ACTIONS = (
    "events:PutEvents",
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
)
PROVISIONER_SQS_ACTIONS = (
    "sqs:CreateQueue",
    "sqs:GetQueueUrl",
    "sqs:GetQueueAttributes",
    "sqs:SetQueueAttributes",
)
PROVISIONER_EVENTS_ACTIONS = (
    "events:DescribeRule",
    "events:PutRule",
    "events:ListTargetsByRule",
    "events:PutTargets",
)
PROVISIONER_ACTIONS = PROVISIONER_SQS_ACTIONS + PROVISIONER_EVENTS_ACTIONS


def bus_arn(partition: str, region: str, account: str, bus_name: str) -> str:
    """ARN of an EventBridge bus."""
    return f"arn:{partition}:events:{region}:{account}:event-bus/{bus_name}"


def rule_arn(partition: str, region: str, account: str, bus_name: str, rule_name: str) -> str:
    """ARN of a rule; rules on a custom bus carry the bus name in their ARN."""
    if bus_name == "default":
        return f"arn:{partition}:events:{region}:{account}:rule/{rule_name}"
    return f"arn:{partition}:events:{region}:{account}:rule/{bus_name}/{rule_name}"


def queue_arn(partition: str, region: str, account: str, queue_name: str) -> str:
    """ARN of an SQS queue."""
    return f"arn:{partition}:sqs:{region}:{account}:{queue_name}"


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def publisher_policy(bus: str) -> dict[str, Any]:
    """The service itself: put events on the bus, nothing else."""
    return _policy(
        {
            "Sid": "PublishBatchProcessingCompleted",
            "Effect": "Allow",
            "Action": list(PUBLISHER_ACTIONS),
            "Resource": bus,
        }
    )


def consumer_policy(queue: str) -> dict[str, Any]:
    """A downstream consumer: read and delete messages of the transcripts queue."""
    return _policy(
        {
            "Sid": "ConsumeMeetingTranscripts",
            "Effect": "Allow",
            "Action": list(CONSUMER_ACTIONS),
            "Resource": queue,
        }
    )


def verifier_policy(bus: str, queue: str) -> dict[str, Any]:
    """`verify_event_flow.py`: publish one test event and take only that message off the queue."""
    return _policy(
        {
            "Sid": "PublishTestEvent",
            "Effect": "Allow",
            "Action": ["events:PutEvents"],
            "Resource": bus,
        },
        {
            "Sid": "ReceiveTestEvent",
            "Effect": "Allow",
            "Action": [a for a in VERIFIER_ACTIONS if a.startswith("sqs:")],
            "Resource": queue,
        },
    )


def provisioner_policy(queue: str, dlq: str, rule: str) -> dict[str, Any]:
    """`setup_aws_infra.py`: create and inspect the two queues, the rule and its target."""
    return _policy(
        {
            "Sid": "ManageTranscriptQueues",
            "Effect": "Allow",
            "Action": list(PROVISIONER_SQS_ACTIONS),
            "Resource": [queue, dlq],
        },
        {
            "Sid": "ManageCaptureRule",
            "Effect": "Allow",
            "Action": list(PROVISIONER_EVENTS_ACTIONS),
            "Resource": rule,
        },
    )


def all_policies(
    *,
    partition: str,
    region: str,
    account: str,
    bus_name: str,
    queue_name: str,
    dlq_name: str,
    rule_name: str,
) -> dict[str, dict[str, Any]]:
    """Every policy, keyed by the file stem it is saved under in docs/iam/."""
    bus = bus_arn(partition, region, account, bus_name)
    queue = queue_arn(partition, region, account, queue_name)
    dlq = queue_arn(partition, region, account, dlq_name)
    rule = rule_arn(partition, region, account, bus_name, rule_name)
    return {
        "publisher-policy": publisher_policy(bus),
        "consumer-policy": consumer_policy(queue),
        "verifier-policy": verifier_policy(bus, queue),
        "provisioner-policy": provisioner_policy(queue, dlq, rule),
    }


def placeholder_policies() -> dict[str, dict[str, Any]]:
    """The policies as documented: default names, `REGION` and `ACCOUNT_ID` placeholders."""
    return all_policies(
        partition="aws",
        region="REGION",
        account="ACCOUNT_ID",
        bus_name="default",
        queue_name="meeting-transcripts-queue",
        dlq_name="meeting-transcripts-dlq",
        rule_name="capture-transcripts-rule",
    )


def write_policy_docs(directory: Path) -> list[Path]:
    """Write `docs/iam/*.json` (used to generate the checked-in files)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, policy in placeholder_policies().items():
        path = directory / f"{stem}.json"
        path.write_text(json.dumps(policy, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # python -m batchscribe.infra.iam docs/iam
    import sys

    for written_path in write_policy_docs(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/iam")):
        print(written_path)
