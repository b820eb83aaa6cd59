"""Least-privilege IAM policies for the service, consumers, the verifier and the provisioner.

The same builders print the policies with real ARNs (the provisioner knows the account) and
generate `docs/iam/*.json` with `REGION`, `ACCOUNT_ID`, `BUCKET` and `PREFIX` placeholders.
The S3 statements appear when there is a blob-store bucket (SPEC 14): the service keeps uploads
and large results in it, and consumers read claim-check documents from its `events/` prefix.
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
PROVISIONER_S3_ACTIONS = (
    "s3:CreateBucket",
    "s3:ListBucket",  # HeadBucket: does the bucket exist, and may we use it
    "s3:GetEncryptionConfiguration",
    "s3:PutEncryptionConfiguration",
    "s3:GetBucketPublicAccessBlock",
    "s3:PutBucketPublicAccessBlock",
)
PROVISIONER_ACTIONS = PROVISIONER_SQS_ACTIONS + PROVISIONER_EVENTS_ACTIONS
#: What the S3 blob store calls (batchscribe.blobs.s3), on its objects: PutObject (and, above
#: 5 MiB, the multipart upload calls S3 authorises as s3:PutObject), GetObject (HeadObject too),
#: DeleteObject, and AbortMultipartUpload when an upload fails half-way (else its parts linger).
SERVICE_S3_OBJECT_ACTIONS = (
    "s3:PutObject",
    "s3:GetObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
)
#: On the bucket itself. Without s3:ListBucket, S3 answers a read of a missing object with 403
#: instead of 404, and the service could no longer tell a job whose audio is gone (the job
#: fails with audio_missing) from an unreachable store (the job waits and is retried).
SERVICE_S3_BUCKET_ACTIONS = ("s3:ListBucket",)
#: A consumer following a claim check (`data_ref`) reads one document.
CONSUMER_S3_ACTIONS = ("s3:GetObject",)
#: Where claim-check documents live, under the blob store's prefix (jobs/factory.py).
CLAIM_CHECK_PREFIX = "events/"


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


def bucket_arn(partition: str, bucket: str) -> str:
    """ARN of an S3 bucket (global: no region, no account)."""
    return f"arn:{partition}:s3:::{bucket}"


def objects_arn(partition: str, bucket: str, prefix: str = "") -> str:
    """ARN of every object under `prefix` ("" for the whole bucket) in `bucket`."""
    prefix = prefix.strip("/")
    return f"arn:{partition}:s3:::{bucket}/{prefix + '/' if prefix else ''}*"


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def publisher_policy(
    bus: str, blob_objects: str | None = None, blob_bucket: str | None = None
) -> dict[str, Any]:
    """The service (API, relay and workers): put events on the bus and, with an S3 blob store,
    keep its objects (`blob_objects`, the prefix's ARN) in the bucket (`blob_bucket`)."""
    statements = [
        {
            "Sid": "PublishBatchProcessingEvents",
            "Effect": "Allow",
            "Action": list(PUBLISHER_ACTIONS),
            "Resource": bus,
        }
    ]
    if blob_objects is not None and blob_bucket is not None:
        statements += [
            {
                "Sid": "BlobStoreObjects",
                "Effect": "Allow",
                "Action": list(SERVICE_S3_OBJECT_ACTIONS),
                "Resource": blob_objects,
            },
            {
                "Sid": "BlobStoreBucket",
                "Effect": "Allow",
                "Action": list(SERVICE_S3_BUCKET_ACTIONS),
                "Resource": blob_bucket,
            },
        ]
    return _policy(*statements)


def consumer_policy(queue: str, claim_checks: str | None = None) -> dict[str, Any]:
    """A downstream consumer: read and delete messages of the transcripts queue and, with an S3
    blob store, read the claim-check documents of oversize events (`claim_checks`)."""
    statements = [
        {
            "Sid": "ConsumeMeetingTranscripts",
            "Effect": "Allow",
            "Action": list(CONSUMER_ACTIONS),
            "Resource": queue,
        }
    ]
    if claim_checks is not None:
        statements.append(
            {
                "Sid": "ReadClaimCheckDocuments",
                "Effect": "Allow",
                "Action": list(CONSUMER_S3_ACTIONS),
                "Resource": claim_checks,
            }
        )
    return _policy(*statements)


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


def provisioner_policy(
    queue: str, dlq: str, rule: str, bucket: str | None = None
) -> dict[str, Any]:
    """`setup_aws_infra.py`: create and inspect the two queues, the rule and its target and,
    with `--with-bucket`, the blob-store bucket."""
    statements = [
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
    ]
    if bucket is not None:
        statements.append(
            {
                "Sid": "ManageBlobStoreBucket",
                "Effect": "Allow",
                "Action": list(PROVISIONER_S3_ACTIONS),
                "Resource": bucket,
            }
        )
    return _policy(*statements)


def all_policies(
    *,
    partition: str,
    region: str,
    account: str,
    bus_name: str,
    queue_name: str,
    dlq_name: str,
    rule_name: str,
    bucket: str | None = None,
    blob_prefix: str = "",
) -> dict[str, dict[str, Any]]:
    """Every policy, keyed by the file stem it is saved under in docs/iam/. With `bucket` (the
    blob store's, `blob_prefix` its key prefix) the S3 statements are included."""
    bus = bus_arn(partition, region, account, bus_name)
    queue = queue_arn(partition, region, account, queue_name)
    dlq = queue_arn(partition, region, account, dlq_name)
    rule = rule_arn(partition, region, account, bus_name, rule_name)
    if bucket is None:
        return {
            "publisher-policy": publisher_policy(bus),
            "consumer-policy": consumer_policy(queue),
            "verifier-policy": verifier_policy(bus, queue),
            "provisioner-policy": provisioner_policy(queue, dlq, rule),
        }
    the_bucket = bucket_arn(partition, bucket)
    claim_checks = objects_arn(partition, bucket, f"{blob_prefix.strip('/')}/{CLAIM_CHECK_PREFIX}")
    return {
        "publisher-policy": publisher_policy(
            bus, objects_arn(partition, bucket, blob_prefix), the_bucket
        ),
        "consumer-policy": consumer_policy(queue, claim_checks),
        "verifier-policy": verifier_policy(bus, queue),
        "provisioner-policy": provisioner_policy(queue, dlq, rule, the_bucket),
    }


def placeholder_policies() -> dict[str, dict[str, Any]]:
    """The policies as documented: default names, `REGION`, `ACCOUNT_ID`, and `BUCKET` and
    `PREFIX` for `BLOB_STORE=s3://BUCKET/PREFIX`."""
    return all_policies(
        partition="aws",
        region="REGION",
        account="ACCOUNT_ID",
        bus_name="default",
        queue_name="meeting-transcripts-queue",
        dlq_name="meeting-transcripts-dlq",
        rule_name="capture-transcripts-rule",
        bucket="BUCKET",
        blob_prefix="PREFIX",
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
