"""Provisioning against the emulator: every setting of SPEC section 6 read back from AWS."""

from __future__ import annotations

import json
from typing import Any

import pytest

from batchscribe.infra.emulator import LocalAWSEmulator
from batchscribe.infra.exit_codes import ExitCode
from batchscribe.infra.provision import AWSInfrastructureProvisioner
from testkit.aws import reset_emulator
from tests.support.aws_tooling import (  # noqa: F401 - fixture
    DLQ,
    QUEUE,
    RULE,
    attributes,
    clients,
    policy_statement,
    restore_cli_logging,
    run_cli,
)

SOURCE = "com.yourapp.transcription"


@pytest.fixture
def aws(emulator_env: LocalAWSEmulator) -> tuple[Any, Any]:
    reset_emulator(emulator_env.endpoint_url)
    return clients(emulator_env)


def test_provision_creates_every_resource_exactly_as_specified(
    aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, events = aws
    assert run_cli("provision") == 0

    dlq = attributes(sqs, DLQ)
    assert dlq["MessageRetentionPeriod"] == "1209600"
    assert dlq["SqsManagedSseEnabled"] == "true"

    queue = attributes(sqs, QUEUE)
    assert queue["VisibilityTimeout"] == "30"
    assert queue["MessageRetentionPeriod"] == "1209600"
    assert queue["SqsManagedSseEnabled"] == "true" or queue.get("KmsMasterKeyId")
    assert "FifoQueue" not in queue or queue["FifoQueue"] == "false"
    redrive = json.loads(queue["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == 3

    rule = events.describe_rule(Name=RULE)
    assert rule["State"] == "ENABLED"
    assert json.loads(rule["EventPattern"]) == {
        "source": [SOURCE],
        "detail-type": ["BatchProcessingCompleted"],
    }

    statement = policy_statement(sqs)
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == queue["QueueArn"]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule["Arn"]}}

    targets = events.list_targets_by_rule(Rule=RULE)["Targets"]
    assert [t["Arn"] for t in targets] == [queue["QueueArn"]]
    assert "RoleArn" not in targets[0]

    out = capsys.readouterr().out
    assert queue_url_in(out, QUEUE)
    assert queue_url_in(out, DLQ)
    assert rule["Arn"] in out
    assert '"events:PutEvents"' in out  # the publisher policy is printed


def queue_url_in(text: str, name: str) -> bool:
    return any(line.endswith(f"/{name}") for line in text.splitlines())


def test_json_output_carries_urls_arn_and_policies(
    aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, events = aws
    assert run_cli("provision", "--json") == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # stdout is pure JSON; progress went to stderr
    assert result["ok"] is True
    assert result["queue_url"] == sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    assert result["dlq_url"] == sqs.get_queue_url(QueueName=DLQ)["QueueUrl"]
    assert result["rule_arn"] == events.describe_rule(Name=RULE)["Arn"]
    assert [r["action"] for r in result["resources"]] == ["created"] * 4
    publisher = result["iam_policies"]["publisher-policy"]["Statement"][0]
    assert publisher["Action"] == ["events:PutEvents"]
    assert publisher["Resource"].endswith(":event-bus/default")
    consumer = result["iam_policies"]["consumer-policy"]["Statement"][0]
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= set(
        consumer["Action"]
    )
    assert consumer["Resource"] == result["queue_arn"]


def test_second_run_keeps_everything_and_warns(
    aws: tuple[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    AWSInfrastructureProvisioner().provision_all()
    provisioner = AWSInfrastructureProvisioner()
    with caplog.at_level("WARNING", logger="batchscribe.infra"):
        outcome = provisioner.provision_all()
    assert [r.action for r in outcome.resources] == ["exists"] * 4
    assert not outcome.changed
    assert sum("already exists" in r.getMessage() for r in caplog.records) == 4


def test_dry_run_creates_nothing(aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]) -> None:
    sqs, events = aws
    assert run_cli("provision", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "DRY RUN" in out
    assert out.count("would-create") == 4
    assert sqs.list_queues().get("QueueUrls", []) == []
    assert events.list_rules()["Rules"] == []


def test_dry_run_over_drift_reports_without_changing(
    aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, _ = aws
    assert run_cli("provision") == 0
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "60"})
    capsys.readouterr()
    assert run_cli("provision", "--dry-run", "--reconcile", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["resources"][1]["action"] == "would-update"
    assert attributes(sqs, QUEUE)["VisibilityTimeout"] == "60"


def test_drift_is_reported_and_reconcile_restores_it(
    aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, events = aws
    assert run_cli("provision") == 0
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"VisibilityTimeout": "60", "SqsManagedSseEnabled": "false"}
    )
    events.put_rule(Name=RULE, EventPattern=json.dumps({"source": ["other"]}), State="DISABLED")
    capsys.readouterr()

    assert run_cli("provision") == ExitCode.DRIFT  # drift left in place
    out = capsys.readouterr().out
    assert "VisibilityTimeout: '60' (expected '30')" in out
    assert "SqsManagedSseEnabled" in out
    assert "State: 'DISABLED'" in out
    assert attributes(sqs, QUEUE)["VisibilityTimeout"] == "60"  # reported, not corrected

    assert run_cli("provision", "--reconcile") == 0
    queue = attributes(sqs, QUEUE)
    assert queue["VisibilityTimeout"] == "30"
    assert queue["SqsManagedSseEnabled"] == "true"
    rule = events.describe_rule(Name=RULE)
    assert rule["State"] == "ENABLED"
    assert json.loads(rule["EventPattern"])["source"] == [SOURCE]


def test_drift_does_not_share_an_exit_code_with_a_missing_queue(
    aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A deploy script reading 3 as "queue not found" (verify, tail) must never get 3 from
    provision's drift: each meaning has its own number."""
    sqs, _ = aws
    missing_queue = run_cli("verify", "--timeout", "1"), run_cli("tail", "--once")
    assert missing_queue == (3, 3)
    assert run_cli("provision") == 0
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "60"})

    drift = run_cli("provision")

    assert drift == 5
    assert drift not in missing_queue
    assert "--reconcile" in capsys.readouterr().out


def test_a_missing_bus_fails_with_exit_1_naming_the_bus(
    aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("provision", "--bus-name", "no-such-bus") == 1
    err = capsys.readouterr().err
    assert "event bus 'no-such-bus' does not exist" in err
    assert "EVENTBRIDGE_BUS_NAME" in err


def test_target_with_role_is_drift_and_reconcile_removes_the_role(
    aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, events = aws
    assert run_cli("provision") == 0
    queue_arn = attributes(sqs, QUEUE)["QueueArn"]
    target_id = events.list_targets_by_rule(Rule=RULE)["Targets"][0]["Id"]
    role = "arn:aws:iam::123456789012:role/unneeded"
    events.put_targets(Rule=RULE, Targets=[{"Id": target_id, "Arn": queue_arn, "RoleArn": role}])
    assert run_cli("provision") == ExitCode.DRIFT
    assert run_cli("provision", "--reconcile") == 0
    targets = events.list_targets_by_rule(Rule=RULE)["Targets"]
    assert [t["Arn"] for t in targets] == [queue_arn]
    assert "RoleArn" not in targets[0]


def test_custom_source_and_bus_flags_shape_the_rule(aws: tuple[Any, Any]) -> None:
    _, events = aws
    events.create_event_bus(Name="transcripts")
    assert run_cli("provision", "--bus-name", "transcripts", "--source", "com.example.x") == 0
    rule = events.describe_rule(Name=RULE, EventBusName="transcripts")
    assert json.loads(rule["EventPattern"])["source"] == ["com.example.x"]
    assert rule["EventBusName"] == "transcripts"


def test_missing_credentials_fail_fast_with_exit_2(
    aws_emulator: LocalAWSEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # A non-loopback endpoint: no dummy-credential convenience, and nothing is ever contacted.
    assert run_cli("provision", "--endpoint-url", "http://192.0.2.1:4566") == 2
    assert "No AWS credentials found" in capsys.readouterr().err


def test_an_unknown_aws_profile_is_a_credentials_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    assert run_cli("provision", "--endpoint-url", "http://192.0.2.1:4566") == 2
    err = capsys.readouterr().err
    assert "no-such-profile" in err
    assert "AWS_PROFILE" in err
