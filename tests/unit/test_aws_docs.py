"""The IAM policies in docs/ are the ones the code prints, and the scripts run from a checkout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from batchscribe.infra import iam
from batchscribe.infra.iam import placeholder_policies

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("stem", sorted(placeholder_policies()))
def test_checked_in_policy_matches_the_generated_one(stem: str) -> None:
    documented = json.loads((ROOT / "docs" / "iam" / f"{stem}.json").read_text(encoding="utf-8"))
    assert documented == placeholder_policies()[stem], (
        "regenerate with: python -m batchscribe.infra.iam docs/iam"
    )


def _statements(stem: str) -> dict[str, dict[str, Any]]:
    """A documented policy's statements by Sid (each Sid once)."""
    statements = placeholder_policies()[stem]["Statement"]
    by_sid = {statement["Sid"]: statement for statement in statements}
    assert len(by_sid) == len(statements)
    return by_sid


def test_the_service_may_put_events_and_use_only_its_blob_store_prefix() -> None:
    statements = _statements("publisher-policy")
    assert set(statements) == {
        "PublishBatchProcessingEvents",
        "BlobStoreObjects",
        "BlobStoreBucket",
    }
    events = statements["PublishBatchProcessingEvents"]
    assert events["Action"] == ["events:PutEvents"]
    assert events["Resource"] == "arn:aws:events:REGION:ACCOUNT_ID:event-bus/default"
    objects = statements["BlobStoreObjects"]
    assert set(objects["Action"]) == {
        "s3:PutObject",
        "s3:GetObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
    }
    assert objects["Resource"] == "arn:aws:s3:::BUCKET/PREFIX/*"
    # Listing only, on the bucket: what makes a missing object a 404 rather than a 403.
    assert statements["BlobStoreBucket"]["Action"] == ["s3:ListBucket"]
    assert statements["BlobStoreBucket"]["Resource"] == "arn:aws:s3:::BUCKET"
    every_action = [a for s in statements.values() for a in s["Action"]]
    assert not any("*" in action for action in every_action)
    assert not any(a.startswith("sqs:") for a in every_action)


def test_a_consumer_reads_the_queue_and_only_the_claim_check_documents() -> None:
    statements = _statements("consumer-policy")
    assert set(statements) == {"ConsumeMeetingTranscripts", "ReadClaimCheckDocuments"}
    queue = statements["ConsumeMeetingTranscripts"]
    assert not any(a.startswith("events:") or a == "sqs:SendMessage" for a in queue["Action"])
    assert queue["Resource"].endswith(":meeting-transcripts-queue")
    claim_checks = statements["ReadClaimCheckDocuments"]
    assert claim_checks["Action"] == ["s3:GetObject"]
    assert claim_checks["Resource"] == "arn:aws:s3:::BUCKET/PREFIX/events/*"


def test_the_provisioner_may_manage_the_bucket_but_not_its_objects() -> None:
    bucket = _statements("provisioner-policy")["ManageBlobStoreBucket"]
    assert bucket["Resource"] == "arn:aws:s3:::BUCKET"
    assert set(bucket["Action"]) == set(iam.PROVISIONER_S3_ACTIONS)
    assert not {"s3:PutObject", "s3:GetObject", "s3:DeleteObject"} & set(bucket["Action"])


def test_without_a_bucket_the_policies_have_no_s3_statement() -> None:
    policies = iam.all_policies(
        partition="aws", region="eu-west-1", account="123456789012", bus_name="default",
        queue_name="q", dlq_name="d", rule_name="r",
    )  # fmt: skip
    assert "s3:" not in json.dumps(policies)


def test_a_blob_store_without_prefix_scopes_the_whole_bucket() -> None:
    policies = iam.all_policies(
        partition="aws", region="eu-west-1", account="123456789012", bus_name="default",
        queue_name="q", dlq_name="d", rule_name="r", bucket="media", blob_prefix="",
    )  # fmt: skip
    resources = json.dumps(policies)
    assert '"arn:aws:s3:::media/*"' in resources
    assert '"arn:aws:s3:::media/events/*"' in resources
    assert "//" not in resources.replace("https://", "")


@pytest.mark.parametrize(
    ("script", "flags"),
    [
        (
            "setup_aws_infra.py",
            ["--dry-run", "--reconcile", "--json", "--bus-name", "--with-bucket"],
        ),
        ("verify_event_flow.py", ["--timeout", "--endpoint-url", "--region", "--source"]),
    ],
)
def test_scripts_run_straight_from_a_checkout(script: str, flags: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    for flag in flags:
        assert flag in done.stdout
    assert "exit codes" in done.stdout
