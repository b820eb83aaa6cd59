"""Property 6: provisioning is idempotent, whatever was deleted between runs (the blob store's
bucket included: created by the first run, kept by the others)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings

from batchscribe.config import Settings
from batchscribe.infra.emulator import LocalAWSEmulator
from batchscribe.infra.provision import AWSInfrastructureProvisioner
from batchscribe.infra.target import AWSTarget
from testkit.aws import reset_emulator
from tests.strategies import deletion_plans
from tests.support.aws_tooling import (
    DLQ,
    PRIVATE,
    QUEUE,
    RULE,
    bucket_settings,
    clients,
    queue_url,
    s3_client,
    snapshot,
)

BUCKET = "batchscribe-property-test"


def _delete(sqs: Any, events: Any, resources: frozenset[str]) -> None:
    """Delete what the plan says, if it exists (a target goes with its rule)."""
    existing = {u.rsplit("/", 1)[-1] for u in sqs.list_queues().get("QueueUrls", [])}
    rules = {r["Name"] for r in events.list_rules()["Rules"]}
    if RULE in rules and {"rule", "target"} & resources:
        ids = [t["Id"] for t in events.list_targets_by_rule(Rule=RULE)["Targets"]]
        if ids:
            events.remove_targets(Rule=RULE, Ids=ids)
        if "rule" in resources:
            events.delete_rule(Name=RULE)
    for kind, name in (("dlq", DLQ), ("queue", QUEUE)):
        if kind in resources and name in existing:
            sqs.delete_queue(QueueUrl=queue_url(sqs, name))


def _assert_complete_and_correct(sqs: Any, events: Any, s3: Any) -> None:
    assert bucket_settings(s3, BUCKET) == {"encryption": "AES256", "public_access_block": PRIVATE}
    state = snapshot(sqs, events)
    queue, dlq = state[QUEUE], state[DLQ]
    assert queue["VisibilityTimeout"] == "30"
    assert queue["MessageRetentionPeriod"] == dlq["MessageRetentionPeriod"] == "1209600"
    assert json.loads(queue["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq["QueueArn"],
        "maxReceiveCount": 3,
    }
    statement = json.loads(queue["Policy"])["Statement"][0]
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == state[RULE]["Arn"]
    assert state[RULE]["State"] == "ENABLED"
    assert sorted(json.loads(state[RULE]["EventPattern"])["detail-type"]) == [
        "BatchProcessingCompleted",
        "BatchProcessingFailed",
    ]
    assert [t["Arn"] for t in state["targets"]] == [queue["QueueArn"]]


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(plan=deletion_plans())
def test_any_sequence_of_runs_ends_complete_and_a_rerun_changes_nothing(
    emulator_env: LocalAWSEmulator, plan: list[frozenset[str]]
) -> None:
    reset_emulator(emulator_env.endpoint_url)
    sqs, events = clients(emulator_env)
    s3 = s3_client(emulator_env)
    target = AWSTarget.from_settings(Settings())

    def run() -> Any:
        provisioner = AWSInfrastructureProvisioner(
            target=target, sqs_client=sqs, events_client=events, s3_client=s3, bucket=BUCKET
        )
        return provisioner.provision_all()

    for deletions in plan:
        _delete(sqs, events, deletions)
        result = run()
        assert result.ok, result.problems
        _assert_complete_and_correct(sqs, events, s3)

    before = snapshot(sqs, events), bucket_settings(s3, BUCKET)
    again = run()
    assert [r.action for r in again.resources] == ["exists"] * 5
    assert (snapshot(sqs, events), bucket_settings(s3, BUCKET)) == before
