"""AWSEventPublisher against botocore's Stubber: exact PutEvents calls and error translation."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from batchscribe.config import Settings
from batchscribe.events.exceptions import (
    EventTooLargeError,
    EventValidationError,
    PublishingDisabledError,
    PublishRejectedError,
    PublishTransientError,
)
from batchscribe.events.publisher import AWSEventPublisher
from batchscribe.infra.emulator import free_port

TENANT = str(uuid.uuid4())
INTERACTION = str(uuid.uuid4())
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def _client(endpoint_url: str | None = None) -> Any:
    return boto3.client(
        "events",
        region_name="us-east-1",
        endpoint_url=endpoint_url,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="stub-secret",
    )


@pytest.fixture
def stubbed() -> Iterator[tuple[AWSEventPublisher, Stubber, list[dict[str, Any]]]]:
    """A publisher on a stubbed client, plus the PutEvents params it sent."""
    client = _client()
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.events.PutEvents", lambda params, **_: sent.append(params)
    )
    publisher = AWSEventPublisher(client=client, settings=Settings())
    with Stubber(client) as stubber:
        yield publisher, stubber, sent
        stubber.assert_no_pending_responses()
    client.close()


def _publish(publisher: AWSEventPublisher, **overrides: Any) -> str:
    args: dict[str, Any] = {
        "interaction_id": INTERACTION,
        "tenant_id": TENANT,
        "user_id": "user-7",
        "account_id": "acct-1",
        "raw_transcript": "SPEAKER_0: um hello",
        "cleaned_transcript": "SPEAKER_0: Hello.",
    }
    args.update(overrides)
    return publisher.publish_batch_completed_event(**args)


def test_sends_the_exact_putevents_entry(stubbed: Any) -> None:
    publisher, stubber, sent = stubbed
    expected_entry = {
        "Source": "com.yourapp.transcription",
        "DetailType": "BatchProcessingCompleted",
        "Detail": ANY,
        "EventBusName": "default",
    }
    stubber.add_response(
        "put_events",
        {"FailedEntryCount": 0, "Entries": [{"EventId": "evt-1"}]},
        {"Entries": [expected_entry]},
    )
    assert _publish(publisher) == "evt-1"
    (params,) = sent
    detail = json.loads(params["Entries"][0]["Detail"])
    assert TIMESTAMP.match(detail.pop("timestamp"))
    assert detail == {
        "version": "1.0",
        "interaction_id": INTERACTION,
        "tenant_id": TENANT,
        "user_id": "user-7",
        "account_id": "acct-1",
        "status": "completed",
        "data": {
            "cleaned_transcript": "SPEAKER_0: Hello.",
            "raw_transcript": "SPEAKER_0: um hello",
        },
    }
    assert "Time" not in params["Entries"][0]


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("InternalFailure", PublishTransientError),
        ("ThrottlingException", PublishTransientError),
        ("AccessDeniedException", PublishRejectedError),
    ],
)
def test_partial_failure_raises_with_the_code_and_interaction_id(
    stubbed: Any, code: str, error: type[Exception]
) -> None:
    publisher, stubber, _ = stubbed
    stubber.add_response(
        "put_events",
        {"FailedEntryCount": 1, "Entries": [{"ErrorCode": code, "ErrorMessage": "nope"}]},
    )
    with pytest.raises(error) as info:
        _publish(publisher)
    assert info.value.code == code  # type: ignore[attr-defined]
    assert INTERACTION in str(info.value)


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("ThrottlingException", 400, PublishTransientError),
        ("InternalException", 500, PublishTransientError),
        ("ServiceUnavailableX", 503, PublishTransientError),
        ("AccessDeniedException", 400, PublishRejectedError),
        ("ResourceNotFoundException", 400, PublishRejectedError),
    ],
)
def test_client_errors_are_translated(
    stubbed: Any, code: str, status: int, error: type[Exception]
) -> None:
    publisher, stubber, _ = stubbed
    stubber.add_client_error("put_events", service_error_code=code, http_status_code=status)
    with pytest.raises(error) as info:
        _publish(publisher)
    assert info.value.code == code  # type: ignore[attr-defined]
    assert INTERACTION in str(info.value)
    assert not isinstance(info.value, ClientError)  # botocore errors stop at the boundary


def test_too_large_event_is_never_sent(stubbed: Any) -> None:
    publisher, _, sent = stubbed
    publisher.max_bytes = 500
    with pytest.raises(EventTooLargeError) as info:
        _publish(publisher, raw_transcript="x" * 600)
    assert info.value.size_bytes > 500
    assert sent == []


def test_invalid_identity_is_refused_before_sending_without_echoing_text(stubbed: Any) -> None:
    publisher, _, sent = stubbed
    with pytest.raises(EventValidationError) as info:
        _publish(publisher, tenant_id="not-a-uuid", raw_transcript="private words")
    assert "tenant_id" in str(info.value)
    assert "private words" not in str(info.value)
    assert sent == []


def test_no_credentials_disables_publishing() -> None:
    publisher = AWSEventPublisher(settings=Settings())  # env scrubbed: no credentials anywhere
    try:
        assert not publisher.credentials_available()
        assert not publisher.enabled
        assert publisher.describe()["state"] == "disabled"
        with pytest.raises(PublishingDisabledError):
            _publish(publisher)
    finally:
        publisher.client.close()


def test_no_credentials_error_from_botocore_is_translated() -> None:
    client = boto3.client(
        "events", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{free_port()}"
    )
    publisher = AWSEventPublisher(client=client, settings=Settings())
    try:
        assert not publisher.enabled
        with pytest.raises(PublishTransientError) as info:  # NoCredentialsError underneath
            publisher.put_entries([{"Source": "s", "DetailType": "d", "Detail": "{}"}])
        assert info.value.code == "NoCredentials"
    finally:
        client.close()


def test_unreachable_endpoint_is_a_retryable_network_error() -> None:
    client = _client(f"http://127.0.0.1:{free_port()}")
    publisher = AWSEventPublisher(client=client, settings=Settings())
    try:
        with pytest.raises(PublishTransientError) as info:
            _publish(publisher)
        assert info.value.code == "NetworkError"
    finally:
        client.close()


def test_credentials_from_settings_enable_publishing() -> None:
    settings = Settings(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="from-dotenv")
    publisher = AWSEventPublisher(settings=settings)
    try:
        assert publisher.enabled
        assert "from-dotenv" not in json.dumps(publisher.describe())
    finally:
        publisher.client.close()
