"""Provisioning against the emulator: every setting of SPEC section 6 read back from AWS."""

from __future__ import annotations

import json
from typing import Any

import pytest

from batchscribe.events.schema import BatchProcessingFailedEvent, EventError
from batchscribe.infra.emulator import LocalAWSEmulator
from batchscribe.infra.exit_codes import ExitCode
from batchscribe.infra.provision import AWSInfrastructureProvisioner
from testkit.aws import reset_emulator
from tests.support.aws_tooling import (  # noqa: F401 - fixture
    DLQ,
    PRIVATE,
    QUEUE,
    RULE,
    attributes,
    bucket_settings,
    clients,
    policy_statement,
    restore_cli_logging,
    run_cli,
    s3_client,
)

SOURCE = "com.yourapp.transcription"
BOTH = ["BatchProcessingCompleted", "BatchProcessingFailed"]
BUCKET = "batchscribe-media-test"


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
    pattern = json.loads(rule["EventPattern"])
    assert pattern["source"] == [SOURCE]
    assert sorted(pattern["detail-type"]) == ["BatchProcessingCompleted", "BatchProcessingFailed"]
    assert set(pattern) == {"source", "detail-type"}

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


# SPEC 13: the rule matches both detail types -------------------------------------------------


def test_the_old_single_type_rule_is_drift_until_reconciled(
    aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A rule provisioned before failed events existed would drop every BatchProcessingFailed:
    provision reports it, --reconcile updates it, and the next run finds nothing to do."""
    _, events = aws
    old = {"source": [SOURCE], "detail-type": ["BatchProcessingCompleted"]}
    events.put_rule(Name=RULE, EventPattern=json.dumps(old), State="ENABLED")
    assert run_cli("provision") == ExitCode.DRIFT
    out = capsys.readouterr().out
    assert "EventPattern" in out
    assert "BatchProcessingFailed" in out  # the expected pattern is shown
    assert json.loads(events.describe_rule(Name=RULE)["EventPattern"]) == old  # not corrected

    assert run_cli("provision", "--reconcile") == ExitCode.OK
    pattern = json.loads(events.describe_rule(Name=RULE)["EventPattern"])
    assert sorted(pattern["detail-type"]) == BOTH
    capsys.readouterr()

    assert run_cli("provision", "--json") == ExitCode.OK
    result = json.loads(capsys.readouterr().out)
    assert [r["action"] for r in result["resources"]] == ["exists"] * 4


def test_a_rule_listing_both_types_in_another_order_is_not_drift(aws: tuple[Any, Any]) -> None:
    _, events = aws
    pattern = {"detail-type": BOTH[::-1], "source": [SOURCE]}
    events.put_rule(Name=RULE, EventPattern=json.dumps(pattern), State="ENABLED")
    outcome = AWSInfrastructureProvisioner().create_eventbridge_rule()
    assert outcome.action == "exists"
    assert outcome.drift == []


def test_a_failed_event_reaches_the_queue_through_the_provisioned_rule(
    aws: tuple[Any, Any],
) -> None:
    sqs, events = aws
    assert run_cli("provision") == 0
    failed = BatchProcessingFailedEvent(
        interaction_id="0b5f8a59-5c1e-4a43-8f7a-0f3c4e0f1b2d",
        tenant_id="6f1c2a9e-3b7d-4c1e-9a8f-2d5b7c9e1f03",
        user_id="u-1",
        error=EventError(code="engine_timeout", message="The engine took too long."),
    )
    events.put_events(
        Entries=[{"Source": SOURCE, "DetailType": "BatchProcessingFailed",
                  "Detail": failed.detail_json(), "EventBusName": "default"}]
    )  # fmt: skip
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
    assert [json.loads(m["Body"])["detail-type"] for m in messages] == ["BatchProcessingFailed"]


# SPEC 14: the blob store's bucket (--with-bucket) ------------------------------------------------


def test_with_bucket_creates_an_encrypted_private_bucket_and_prints_its_policies(
    emulator_env: LocalAWSEmulator,
    aws: tuple[Any, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BLOB_STORE", f"s3://{BUCKET}/prod")
    assert run_cli("provision", "--with-bucket", BUCKET, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["resources"][-1] == {"kind": "bucket", "name": BUCKET, "action": "created",
                                       "drift": []}  # fmt: skip
    assert result["bucket"] == BUCKET
    assert result["blob_store"] == f"s3://{BUCKET}/prod"
    s3 = s3_client(emulator_env)
    assert BUCKET in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert bucket_settings(s3, BUCKET) == {"encryption": "AES256", "public_access_block": PRIVATE}

    policies = json.dumps(result["iam_policies"])
    assert f'"arn:aws:s3:::{BUCKET}/prod/*"' in policies  # the service, on its prefix
    assert f'"arn:aws:s3:::{BUCKET}/prod/events/*"' in policies  # consumers, claim checks only


def test_an_existing_bucket_is_kept_and_its_drift_reconciled(
    emulator_env: LocalAWSEmulator,
    aws: tuple[Any, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    s3 = s3_client(emulator_env)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="audio/kept", Body=b"x")
    assert run_cli("provision", "--with-bucket", BUCKET) == ExitCode.DRIFT
    out, err = capsys.readouterr()
    assert f"WARNING bucket {BUCKET} already exists; keeping it" in err
    assert "DefaultEncryption: None (expected 'AES256')" in out
    assert "PublicAccessBlock" in out
    assert bucket_settings(s3, BUCKET) == {"encryption": None, "public_access_block": None}

    assert run_cli("provision", "--with-bucket", BUCKET, "--reconcile") == 0
    assert bucket_settings(s3, BUCKET) == {"encryption": "AES256", "public_access_block": PRIVATE}
    assert s3.get_object(Bucket=BUCKET, Key="audio/kept")["Body"].read() == b"x"  # kept

    s3.put_public_access_block(
        Bucket=BUCKET, PublicAccessBlockConfiguration={**PRIVATE, "RestrictPublicBuckets": False}
    )
    capsys.readouterr()
    assert run_cli("provision", "--with-bucket", BUCKET, "--json") == ExitCode.DRIFT
    (bucket,) = [
        r for r in json.loads(capsys.readouterr().out)["resources"] if r["kind"] == "bucket"
    ]
    assert bucket["action"] == "drift"
    assert [d["setting"] for d in bucket["drift"]] == ["PublicAccessBlock"]
    assert run_cli("provision", "--with-bucket", BUCKET, "--reconcile") == 0
    assert run_cli("provision", "--with-bucket", BUCKET) == 0


def test_dry_run_with_bucket_shows_the_plan_and_creates_nothing(
    emulator_env: LocalAWSEmulator, aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("provision", "--with-bucket", BUCKET, "--dry-run") == 0
    out = capsys.readouterr().out
    assert out.count("would-create") == 5
    assert BUCKET in out
    assert s3_client(emulator_env).list_buckets()["Buckets"] == []


def test_the_bucket_is_created_in_the_region_asked_for(
    emulator_env: LocalAWSEmulator, aws: tuple[Any, Any]
) -> None:
    """Outside us-east-1 S3 needs a LocationConstraint; the emulator refuses a create without
    one, as S3 does."""
    assert run_cli("provision", "--region", "eu-west-1", "--with-bucket", BUCKET) == 0
    location = s3_client(emulator_env).get_bucket_location(Bucket=BUCKET)
    assert location["LocationConstraint"] == "eu-west-1"
    assert run_cli("provision", "--region", "eu-west-1", "--with-bucket", BUCKET) == 0


def test_an_invalid_bucket_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli("provision", "--with-bucket", "Not_A_Bucket")
    assert exited.value.code == 2
    assert "not a valid S3 bucket name" in capsys.readouterr().err
