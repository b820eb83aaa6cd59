"""The contract of SPEC sections 6, 13 and 14 as data: desired settings, the queue policy, the
rule's pattern, the blob-store bucket's settings, and the drift checks.

Pure functions, no AWS calls: the provisioner creates resources from these and compares what it
reads back against them, so "create" and "verify" can never disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from batchscribe.events.schema import DETAIL_TYPES

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


@dataclass
class ResourceOutcome:
    """What a run did (or, in a dry run, would do) to one resource."""

    kind: str
    name: str
    action: Action
    drift: list[Drift] = field(default_factory=list)


def desired_event_pattern(source: str) -> dict[str, list[str]]:
    """The rule's pattern: our source and every detail type we publish, nothing else."""
    return {"source": [source], "detail-type": list(DETAIL_TYPES)}


def normalised_pattern(text: str | None) -> dict[str, Any] | None:
    """An event pattern in a comparable form: EventBridge matches any value of a list, so the
    order of the values does not matter (nor does the JSON formatting AWS hands back)."""
    try:
        pattern = json.loads(text or "null")
    except ValueError:
        return None
    if not isinstance(pattern, dict):
        return None
    return {
        key: sorted(value, key=json.dumps) if isinstance(value, list) else value
        for key, value in pattern.items()
    }


def pattern_matches(text: str | None, source: str) -> bool:
    """Whether a rule's EventPattern is the contract's, up to the order of values."""
    return normalised_pattern(text) == normalised_pattern(json.dumps(desired_event_pattern(source)))


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


# The blob-store bucket (SPEC 14) ----------------------------------------------------------------

#: Default encryption with S3-managed keys (SSE-S3): no KMS permissions for anyone.
BUCKET_ENCRYPTION: dict[str, Any] = {
    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
}
#: Every public-access switch on: the bucket holds recordings and transcripts.
PUBLIC_ACCESS_BLOCK: dict[str, bool] = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
#: Default encryptions that count as encrypted. A KMS key someone chose is kept, not replaced by
#: SSE-S3 (the service and consumers then need kms:Decrypt and kms:GenerateDataKey on it).
ENCRYPTED_ALGORITHMS = frozenset({"AES256", "aws:kms", "aws:kms:dsse"})


def create_bucket_arguments(bucket: str, region: str) -> dict[str, Any]:
    """CreateBucket's arguments: outside us-east-1 S3 needs the region as LocationConstraint
    (and refuses one that differs from the endpoint's region); in us-east-1 it refuses any."""
    arguments: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        arguments["CreateBucketConfiguration"] = {"LocationConstraint": region}
    return arguments


def encryption_algorithm(configuration: dict[str, Any] | None) -> str | None:
    """The default encryption algorithm of a GetBucketEncryption answer (None: none set)."""
    for rule in (configuration or {}).get("Rules", []):
        algorithm = rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
        if algorithm:
            return str(algorithm)
    return None


def bucket_drift(
    encryption: dict[str, Any] | None, public_access_block: dict[str, Any] | None
) -> list[Drift]:
    """Settings of the bucket that differ from the contract. `None` means "not configured"."""
    drifts = []
    algorithm = encryption_algorithm(encryption)
    if algorithm not in ENCRYPTED_ALGORITHMS:
        drifts.append(Drift("DefaultEncryption", algorithm, "AES256"))
    actual = public_access_block or {}
    off = sorted(name for name in PUBLIC_ACCESS_BLOCK if actual.get(name) is not True)
    if off:
        drifts.append(
            Drift(
                "PublicAccessBlock",
                json.dumps({name: bool(actual.get(name)) for name in off}, sort_keys=True),
                json.dumps({name: True for name in off}, sort_keys=True),
            )
        )
    return drifts
