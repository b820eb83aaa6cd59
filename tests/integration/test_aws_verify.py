"""Property 7 / the event flow verifier against the emulator, with every exit code."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from batchscribe.config import Settings
from batchscribe.infra.emulator import LocalAWSEmulator
from batchscribe.infra.provision import AWSInfrastructureProvisioner
from batchscribe.infra.target import AWSTarget
from batchscribe.infra.verify import EventFlowVerifier
from testkit.aws import reset_emulator
from tests.support.aws_tooling import (  # noqa: F401 - fixture
    DLQ,
    QUEUE,
    RULE,
    clients,
    drain,
    queue_url,
    restore_cli_logging,
    run_cli,
)


@pytest.fixture
def aws(emulator_env: LocalAWSEmulator) -> tuple[Any, Any]:
    reset_emulator(emulator_env.endpoint_url)
    return clients(emulator_env)


@pytest.fixture
def provisioned(aws: tuple[Any, Any]) -> tuple[Any, Any]:
    sqs, events = aws
    AWSInfrastructureProvisioner(sqs_client=sqs, events_client=events).provision_all()
    return aws


def _verifier(aws: tuple[Any, Any], **kwargs: Any) -> EventFlowVerifier:
    sqs, events = aws
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("poll_interval", 0.2)
    return EventFlowVerifier(sqs_client=sqs, events_client=events, **kwargs)


def test_event_flows_and_the_test_message_is_deleted(provisioned: tuple[Any, Any]) -> None:
    sqs, _ = provisioned
    result = _verifier(provisioned).run()
    assert result.exit_code == 0, result.message
    assert result.status == "ok"
    assert result.event_id
    assert drain(sqs, QUEUE) == []  # its own message is gone
    assert drain(sqs, DLQ) == []


def test_someone_elses_message_is_still_there_afterwards(provisioned: tuple[Any, Any]) -> None:
    sqs, _ = provisioned
    url = queue_url(sqs, QUEUE)
    foreign = json.dumps({"detail": {"interaction_id": str(uuid.uuid4())}, "note": "not yours"})
    sqs.send_message(QueueUrl=url, MessageBody=foreign)

    result = _verifier(provisioned).run()

    assert result.exit_code == 0, result.message
    assert result.other_messages_released == 1
    # Visible again at once (visibility 0), not eaten, not pushed towards the DLQ.
    left = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert [m["Body"] for m in left.get("Messages", [])] == [foreign]
    assert drain(sqs, DLQ) == []


def test_foreign_messages_seen_twice_are_held_then_released(
    provisioned: tuple[Any, Any],
) -> None:
    sqs, events = provisioned
    events.remove_targets(Rule=RULE, Ids=[QUEUE])  # our event never comes: poll to the end
    url = queue_url(sqs, QUEUE)
    sqs.send_message(QueueUrl=url, MessageBody="someone else's")

    result = _verifier(provisioned, timeout=2.0).run()

    assert result.exit_code == 1
    assert result.polls > 2
    message = sqs.receive_message(
        QueueUrl=url, VisibilityTimeout=0, MessageSystemAttributeNames=["ApproximateReceiveCount"]
    )["Messages"][0]
    assert message["Body"] == "someone else's"
    # Seen on the first poll (released), again on the second (held), then never again: two
    # receives by the verifier, plus ours now, whatever the number of polls.
    assert int(message["Attributes"]["ApproximateReceiveCount"]) == 3


def test_no_target_means_exit_1_within_the_timeout(provisioned: tuple[Any, Any]) -> None:
    _, events = provisioned
    events.remove_targets(Rule=RULE, Ids=[QUEUE])
    result = _verifier(provisioned, timeout=3.0, poll_interval=0.5).run()
    assert result.exit_code == 1
    assert result.status == "not_received"
    assert "did not arrive" in result.message
    assert result.polls >= 2
    assert "within 3 s" in result.message  # gave up at its own timeout, not the default 30 s


def test_missing_queue_exits_3(aws: tuple[Any, Any]) -> None:
    result = _verifier(aws).run()
    assert result.exit_code == 3
    assert "provision" in result.message


def test_missing_credentials_exit_2(aws_emulator: LocalAWSEmulator) -> None:
    settings = Settings(aws_endpoint_url=aws_emulator.endpoint_url)
    verifier = EventFlowVerifier(settings, target=AWSTarget.from_settings(settings), timeout=1)
    result = verifier.run()
    assert result.exit_code == 2
    assert "No AWS credentials" in result.message


def test_malformed_event_with_the_test_id_exits_4(provisioned: tuple[Any, Any]) -> None:
    sqs, events = provisioned
    events.remove_targets(Rule=RULE, Ids=[QUEUE])  # only the malformed message can arrive
    verifier = _verifier(provisioned)
    envelope = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "BatchProcessingCompleted",
        "source": "com.yourapp.transcription",
        "time": "2026-11-29T10:30:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"interaction_id": verifier.interaction_id, "status": "completed"},
    }
    sqs.send_message(QueueUrl=queue_url(sqs, QUEUE), MessageBody=json.dumps(envelope))

    result = verifier.run()

    assert result.exit_code == 4
    assert "tenant_id" in result.message  # names the missing field
    assert drain(sqs, QUEUE) == []  # the test message does not stay behind


def test_cli_verify_json_reports_success(
    provisioned: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("verify", "--json", "--timeout", "5", "--poll-interval", "0.2") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "ok"
    uuid.UUID(result["interaction_id"], version=4)


def test_cli_verify_without_queue_exits_3(
    aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("verify", "--timeout", "1") == 3
    assert "not found" in capsys.readouterr().err


def test_loopback_endpoint_needs_no_credentials(
    aws_emulator: LocalAWSEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """`batchscribe verify --endpoint-url http://127.0.0.1:<port>` in a fresh terminal."""
    reset_emulator(aws_emulator.endpoint_url)
    assert run_cli("provision", "--endpoint-url", aws_emulator.endpoint_url) == 0
    assert run_cli("verify", "--endpoint-url", aws_emulator.endpoint_url, "--timeout", "5") == 0
    assert "ok:" in capsys.readouterr().out
