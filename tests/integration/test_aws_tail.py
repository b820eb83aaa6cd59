"""`batchscribe tail`: lengths not text, deletes only with --ack, invalid messages reported;
claim checks followed to S3 and checked; failed events shown with their error code."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest

from batchscribe.blobs.s3 import S3BlobStore
from batchscribe.config import get_settings
from batchscribe.events.schema import (
    DETAIL_TYPE,
    FAILED_DETAIL_TYPE,
    BatchProcessingCompletedEvent,
    BatchProcessingFailedEvent,
    DataRef,
    EventData,
    EventError,
)
from batchscribe.infra.emulator import LocalAWSEmulator
from batchscribe.infra.provision import AWSInfrastructureProvisioner
from batchscribe.jobs.factory import claim_check_for
from testkit.aws import reset_emulator
from testkit.faultproxy import FaultProxy
from tests.support.aws_tooling import (  # noqa: F401 - fixture
    QUEUE,
    clients,
    drain,
    queue_url,
    restore_cli_logging,
    run_cli,
    s3_client,
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


# Claim checks (SPEC 14) and failed events (SPEC 13) ----------------------------------------------

BUCKET = "batchscribe-tail-test"
SOURCE = "com.yourapp.transcription"
LONG_RAW = "SPEAKER_0: " + "the board approved the confidential merger " * 50
LONG_CLEANED = "The board approved the confidential merger. " * 50


def _put(events: Any, detail_type: str, detail: str) -> None:
    """One event through EventBridge, the provisioned rule and into the queue."""
    answer = events.put_events(
        Entries=[{"Source": SOURCE, "DetailType": detail_type, "Detail": detail,
                  "EventBusName": "default"}]
    )  # fmt: skip
    assert answer["FailedEntryCount"] == 0


@pytest.fixture
def flow(emulator_env: LocalAWSEmulator) -> tuple[Any, Any, Any]:
    """(sqs, events, s3) on an emulator provisioned with the blob store's bucket."""
    reset_emulator(emulator_env.endpoint_url)
    sqs, events = clients(emulator_env)
    s3 = s3_client(emulator_env)
    AWSInfrastructureProvisioner(
        sqs_client=sqs, events_client=events, s3_client=s3, bucket=BUCKET
    ).provision_all()
    return sqs, events, s3


def publish_claim_check(events: Any, s3: Any, raw: str = LONG_RAW) -> tuple[str, DataRef]:
    """A 1.1 event whose transcripts went to S3 the way the service stores them (the job
    store's claim check on an S3 blob store); its interaction id and reference."""
    interaction_id = str(uuid.uuid4())
    full = BatchProcessingCompletedEvent(
        interaction_id=interaction_id,
        tenant_id=str(uuid.uuid4()),
        user_id="u-1",
        data=EventData(raw_transcript=raw, cleaned_transcript=LONG_CLEANED),
    )
    store = claim_check_for(S3BlobStore(BUCKET, "prod", client=s3))
    assert store is not None
    data_ref = store(interaction_id, full.model_dump_json(include={"data"}).encode("utf-8"))
    event = BatchProcessingCompletedEvent(
        interaction_id=interaction_id,
        tenant_id=full.tenant_id,
        user_id="u-1",
        data_ref=data_ref,
        metadata={"meeting": "board"},
    )
    assert event.version == "1.1"
    _put(events, DETAIL_TYPE, event.detail_json())
    return interaction_id, data_ref


def test_tail_follows_a_claim_check_and_prints_lengths(
    flow: tuple[Any, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, events, s3 = flow
    interaction_id, data_ref = publish_claim_check(events, s3)
    assert data_ref.uri == f"s3://{BUCKET}/prod/events/{interaction_id}.json"

    assert run_cli("tail", "--once", "--wait-seconds", "0", "--ack") == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if interaction_id in line)
    assert f"data_ref={data_ref.uri} ({data_ref.bytes} bytes)" in line
    assert f"raw_transcript={len(LONG_RAW)} chars" in line
    assert f"cleaned_transcript={len(LONG_CLEANED)} chars" in line
    assert "acked" in line
    assert "confidential" not in out
    assert drain(sqs, QUEUE) == []


def test_show_text_prints_the_transcripts_read_from_s3(
    flow: tuple[Any, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    _, events, s3 = flow
    publish_claim_check(events, s3)
    assert run_cli("tail", "--once", "--wait-seconds", "0", "--show-text") == 0
    out = capsys.readouterr().out
    assert LONG_CLEANED.strip() in out
    assert LONG_RAW.strip() in out


def test_s3_endpoint_url_is_where_tail_reads_claim_checks(
    flow: tuple[Any, Any, Any],
    proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The service's S3_ENDPOINT_URL wins over the tool's endpoint for S3, as in the blob
    store: here S3 is reached only through a proxy, SQS directly."""
    _, events, s3 = flow
    publish_claim_check(events, s3)
    monkeypatch.setenv("S3_ENDPOINT_URL", proxy.url)
    get_settings.cache_clear()
    assert run_cli("tail", "--once", "--wait-seconds", "0") == 0
    assert f"raw_transcript={len(LONG_RAW)} chars" in capsys.readouterr().out
    assert proxy.counts.get("pass", 0) >= 1


def test_a_missing_claim_check_document_is_an_invalid_event_and_tail_goes_on(
    flow: tuple[Any, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, events, s3 = flow
    gone, data_ref = publish_claim_check(events, s3)
    s3.delete_object(Bucket=BUCKET, Key=f"prod/events/{gone}.json")
    kept, _ = publish_claim_check(events, s3)

    assert run_cli("tail", "--once", "--wait-seconds", "0", "--ack", "--json") == 0
    captured = capsys.readouterr()
    assert "invalid message" in captured.out
    assert f"interaction_id={gone}: the claim-check document {data_ref.uri} does not exist" in (
        captured.out
    )
    assert f"interaction_id={kept}" in captured.out  # the next event is still printed
    assert '{"valid": 1, "invalid": 1, "acked": 1}' in captured.out
    remaining = drain(sqs, QUEUE)  # the invalid one is never deleted, even with --ack
    assert [json.loads(m["Body"])["detail"]["interaction_id"] for m in remaining] == [gone]


@pytest.mark.parametrize(
    "replacement",
    [
        b'{"data": {"cleaned_transcript": "other", "raw_transcript": "other"}}',
        b"x" * 10,
    ],
    ids=["another-document", "truncated"],
)
def test_a_document_that_differs_from_its_reference_is_refused(
    flow: tuple[Any, Any, Any], capsys: pytest.CaptureFixture[str], replacement: bytes
) -> None:
    sqs, events, s3 = flow
    interaction_id, data_ref = publish_claim_check(events, s3)
    s3.put_object(Bucket=BUCKET, Key=f"prod/events/{interaction_id}.json", Body=replacement)

    assert run_cli("tail", "--once", "--wait-seconds", "0", "--ack") == 0
    out = capsys.readouterr().out
    assert f"interaction_id={interaction_id}: the claim-check document {data_ref.uri}" in out
    assert "not the document this event refers to" in out
    assert "other" not in out  # the replacement's text is never shown
    assert len(drain(sqs, QUEUE)) == 1


def test_a_document_with_the_right_hash_but_the_wrong_shape_is_refused(
    flow: tuple[Any, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    _, events, s3 = flow
    document = b'{"data": {"raw_transcript": 42}}'
    interaction_id = str(uuid.uuid4())
    key = f"prod/events/{interaction_id}.json"
    s3.put_object(Bucket=BUCKET, Key=key, Body=document)
    event = BatchProcessingCompletedEvent(
        interaction_id=interaction_id,
        tenant_id=str(uuid.uuid4()),
        user_id="u-1",
        data_ref=DataRef(uri=f"s3://{BUCKET}/{key}", bytes=len(document),
                         sha256=hashlib.sha256(document).hexdigest()),
    )  # fmt: skip
    _put(events, DETAIL_TYPE, event.detail_json())
    assert run_cli("tail", "--once", "--wait-seconds", "0") == 0
    out = capsys.readouterr().out
    assert "does not match the event schema" in out
    assert "cleaned_transcript" in out  # names the fields, never values


def test_a_failed_event_is_printed_with_its_error_code(
    flow: tuple[Any, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    _, events, _ = flow
    failed = BatchProcessingFailedEvent(
        interaction_id=str(uuid.uuid4()),
        tenant_id=str(uuid.uuid4()),
        user_id="u-1",
        error=EventError(code="audio_too_long", message="The recording is too long."),
    )
    _put(events, FAILED_DETAIL_TYPE, failed.detail_json())
    assert run_cli("tail", "--once", "--wait-seconds", "0") == 0
    line = next(
        line for line in capsys.readouterr().out.splitlines() if failed.interaction_id in line
    )
    assert line.startswith("failed ")
    assert "error=audio_too_long" in line
