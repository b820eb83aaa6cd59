"""The IAM policies in docs/ are the ones the code prints, and the scripts run from a checkout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from batchscribe.infra.iam import placeholder_policies

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("stem", sorted(placeholder_policies()))
def test_checked_in_policy_matches_the_generated_one(stem: str) -> None:
    documented = json.loads((ROOT / "docs" / "iam" / f"{stem}.json").read_text(encoding="utf-8"))
    assert documented == placeholder_policies()[stem], (
        "regenerate with: python -m batchscribe.infra.iam docs/iam"
    )


def test_publisher_may_only_put_events_and_consumer_only_read_the_queue() -> None:
    policies = placeholder_policies()
    (publisher,) = policies["publisher-policy"]["Statement"]
    assert publisher["Action"] == ["events:PutEvents"]
    assert publisher["Resource"] == "arn:aws:events:REGION:ACCOUNT_ID:event-bus/default"
    (consumer,) = policies["consumer-policy"]["Statement"]
    assert not any(a.startswith("events:") or a == "sqs:SendMessage" for a in consumer["Action"])
    assert consumer["Resource"].endswith(":meeting-transcripts-queue")


@pytest.mark.parametrize(
    ("script", "flags"),
    [
        ("setup_aws_infra.py", ["--dry-run", "--reconcile", "--json", "--bus-name"]),
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
