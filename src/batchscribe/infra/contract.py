"""The contract of SPEC section 6 as data: desired settings, the queue policy, drift checks.

Pure functions, no AWS calls: the provisioner creates resources from these and compares what it
reads back against them, so "create" and "verify" can never disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from batchscribe.events.schema import DETAIL_TYPE

VISIBILITY_TIMEOUT = "30"
RETENTION_SECONDS = "1209600"  # 14 days, the SQS maximum
MAX_RECEIVE_COUNT = 3
EVENTS_PRINCIPAL = "events.amazonaws.com"

Action = Literal["created", "exists", "updated", "drift", "would-create", "would-update"]


@dataclass(frozen=True)
class Drift:
    """One setting that differs from the contract."""

    setting: str
    actual: str | None
    expected: str


def desired_event_pattern(source: str) -> dict[str, list[str]]:
    """The rule's pattern: our source and detail type, nothing else."""
    return {"source": [source], "detail-type": [DETAIL_TYPE]}


def queue_policy(queue_arn: str, rule_arn: str) -> dict[str, Any]:
    """Only EventBridge, and only on behalf of our rule, may send to the queue."""
    return {
        "Version": "2012-10-17",
        "Id": "batchscribe-capture-transcripts",
        "Statement": [
            {
                "Sid": "AllowCaptureTranscriptsRule",
                "Effect": "Allow",
                "Principal": {"Service": EVENTS_PRINCIPAL},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }


def _as_list(value: Any) -> list[Any]:
    return sorted(value) if isinstance(value, list) else [value]


def normalised_policy(text: str | None) -> list[dict[str, Any]] | None:
    """Statements in a comparable form (AWS may turn one-item lists into strings)."""
    if not text:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    statements = document.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    normalised = []
    for statement in statements:
        principal = statement.get("Principal", {})
        normalised.append(
            {
                "Effect": statement.get("Effect"),
                "Principal": {k: _as_list(v) for k, v in principal.items()}
                if isinstance(principal, dict)
                else principal,
                "Action": _as_list(statement.get("Action")),
                "Resource": _as_list(statement.get("Resource")),
                "Condition": statement.get("Condition"),
            }
        )
    return normalised


def _redrive_matches(text: str | None, dlq_arn: str) -> bool:
    try:
        redrive = json.loads(text or "")
        return bool(
            redrive.get("deadLetterTargetArn") == dlq_arn
            and int(redrive.get("maxReceiveCount")) == MAX_RECEIVE_COUNT
        )
    except (ValueError, TypeError, AttributeError):
        return False


def queue_drift(actual: dict[str, str], desired: dict[str, str], dlq_arn: str) -> list[Drift]:
    """Settings of a queue that differ from `desired` (the attributes we would create it with)."""
    drifts = []
    for name, expected in desired.items():
        value = actual.get(name)
        if name == "SqsManagedSseEnabled":
            encrypted = value == "true" or bool(actual.get("KmsMasterKeyId"))
            matches = encrypted
        elif name == "RedrivePolicy":
            matches = _redrive_matches(value, dlq_arn)
        elif name == "Policy":
            matches = normalised_policy(value) == normalised_policy(expected)
        else:
            matches = value == expected
        if not matches:
            drifts.append(Drift(name, value, expected))
    return drifts
