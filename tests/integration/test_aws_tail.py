"""`batchscribe tail`: lengths not text, deletes only with --ack, invalid messages reported."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from batchscribe.events.schema import DETAIL_TYPE, BatchProcessingCompletedEvent, EventData
from batchscribe.infra.emulator import LocalAWSEmulator
from batchscribe.infra.provision import AWSInfrastructureProvisioner
from testkit.aws import reset_emulator
from tests.support.aws_tooling import (  # noqa: F401 - fixture
    QUEUE,
    clients,
    drain,
    queue_url,
    restore_cli_logging,
    run_cli,
)

RAW = "SPEAKER_0: the quarterly numbers are confidential"
CLEANED = "The quarterly numbers are confidential."


@pytest.fixture
def published(emulator_env: LocalAWSEmulator) -> tuple[Any, list[str]]:
    """Two events published through EventBridge into the provisioned queue."""
    reset_emulator(emulator_env.endpoint_url)
    sqs, events = clients(emulator_env)
    AWSInfrastructureProvisioner(sqs_client=sqs, events_client=events).provision_all()
    ids = []
    for _ in range(2):
        event = BatchProcessingCompletedEvent(
            interaction_id=str(uuid.uuid4()),
            tenant_id=str(uuid.uuid4()),
            user_id="u-1",
            data=EventData(raw_transcript=RAW, cleaned_transcript=CLEANED),
        )
        events.put_events(
            Entries=[{"Source": "com.yourapp.transcription", "DetailType": DETAIL_TYPE,
                      "Detail": event.detail_json(), "EventBusName": "default"}]
        )  # fmt: skip
        ids.append(event.interaction_id)
    return sqs, ids


def test_tail_prints_lengths_not_text_and_keeps_messages(
    published: tuple[Any, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, ids = published
    assert run_cli("tail", "--once", "--wait-seconds", "0") == 0
    out = capsys.readouterr().out
    for interaction_id in ids:
        assert f"interaction_id={interaction_id}" in out
    assert f"raw_transcript={len(RAW)} chars" in out
    assert f"cleaned_transcript={len(CLEANED)} chars" in out
    assert "confidential" not in out
    assert len(drain(sqs, QUEUE)) == 2  # not acked: still there, and visible at once


def test_show_text_prints_the_transcripts(
    published: tuple[Any, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("tail", "--once", "--wait-seconds", "0", "--show-text") == 0
    assert RAW in capsys.readouterr().out


def test_ack_deletes_and_max_messages_stops(
    published: tuple[Any, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, _ = published
    assert run_cli("tail", "--ack", "--max-messages", "1", "--wait-seconds", "0") == 0
    out = capsys.readouterr().out
    assert out.count("acked") == 1
    assert len(drain(sqs, QUEUE)) == 1  # one consumed, the other left for later


def test_invalid_message_is_reported_and_never_deleted(
    published: tuple[Any, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, _ = published
    drain(sqs, QUEUE)
    sqs.send_message(QueueUrl=queue_url(sqs, QUEUE), MessageBody='{"not": "an event"}')
    assert run_cli("tail", "--ack", "--once", "--wait-seconds", "0") == 0
    assert "invalid message" in capsys.readouterr().out
    assert len(drain(sqs, QUEUE)) == 1


def test_tail_without_queue_exits_3(
    emulator_env: LocalAWSEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    reset_emulator(emulator_env.endpoint_url)
    assert run_cli("tail", "--once", "--wait-seconds", "0") == 3
    assert "provision" in capsys.readouterr().err
