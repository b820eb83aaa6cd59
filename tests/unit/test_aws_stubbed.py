"""What the emulator cannot produce, with botocore's Stubber: AccessDenied, throttling, network
errors, rejected credentials, and the verifier's polling cadence."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import ANY, Stubber

from batchscribe.aws.clients import AWSCaller, AWSTarget
from batchscribe.aws.exceptions import (
    AWSAccessDeniedError,
    AWSCredentialsError,
    AWSUnavailableError,
)
from batchscribe.config import Settings
from batchscribe.infra.emulator import free_port
from batchscribe.infra.provision import AWSInfrastructureProvisioner
from batchscribe.infra.verify import EventFlowVerifier

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/meeting-transcripts-queue"


def _client(service: str, endpoint_url: str | None = None) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        aws_access_key_id="unit",
        aws_secret_access_key="unit",
        endpoint_url=endpoint_url,
    )


@pytest.fixture
def sqs() -> Iterator[tuple[Any, Stubber]]:
    client = _client("sqs")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def events() -> Iterator[tuple[Any, Stubber]]:
    client = _client("events")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _provisioner(sqs: Any, events: Any, sleeps: list[float]) -> AWSInfrastructureProvisioner:
    return AWSInfrastructureProvisioner(
        target=AWSTarget.from_settings(Settings()),
        sqs_client=sqs,
        events_client=events,
        backoff_base=0.01,
        sleep=sleeps.append,
    )


def test_access_denied_names_the_actions_needed(
    sqs: tuple[Any, Stubber], events: tuple[Any, Stubber]
) -> None:
    client, stubber = sqs
    stubber.add_client_error(
        "get_queue_url", "AccessDenied", "not authorized", http_status_code=403
    )
    with pytest.raises(AWSAccessDeniedError) as caught:
        _provisioner(client, events[0], []).create_dlq()
    message = str(caught.value)
    assert "sqs:GetQueueUrl" in message  # the action that was refused
    for action in ("sqs:CreateQueue", "sqs:SetQueueAttributes", "events:PutRule",
                   "events:PutTargets"):  # fmt: skip
        assert action in message  # and everything the tool needs, in one go
    assert "docs/iam/provisioner-policy.json" in message


def test_throttling_is_retried_with_exponential_backoff_then_succeeds(
    sqs: tuple[Any, Stubber], events: tuple[Any, Stubber]
) -> None:
    client, stubber = sqs
    for _ in range(3):
        stubber.add_client_error("get_queue_url", "RequestThrottled", http_status_code=400)
    stubber.add_response("get_queue_url", {"QueueUrl": QUEUE_URL})
    stubber.add_response(
        "get_queue_attributes",
        {
            "Attributes": {
                "QueueArn": "arn:aws:sqs:us-east-1:123456789012:meeting-transcripts-dlq",
                "MessageRetentionPeriod": "1209600",
                "SqsManagedSseEnabled": "true",
            }
        },
    )
    sleeps: list[float] = []
    outcome = _provisioner(client, events[0], sleeps).create_dlq()
    assert outcome.action == "exists"
    assert sleeps == [0.01, 0.02, 0.04]


def test_throttling_that_never_ends_fails_clearly_after_three_retries(
    sqs: tuple[Any, Stubber], events: tuple[Any, Stubber]
) -> None:
    client, stubber = sqs
    for _ in range(4):
        stubber.add_client_error("get_queue_url", "ThrottlingException", http_status_code=400)
    sleeps: list[float] = []
    with pytest.raises(AWSUnavailableError, match="after 3 retries"):
        _provisioner(client, events[0], sleeps).create_dlq()
    assert len(sleeps) == 3


def test_server_errors_are_retried_too(sqs: tuple[Any, Stubber]) -> None:
    client, stubber = sqs
    stubber.add_client_error("get_queue_url", "InternalError", http_status_code=500)
    stubber.add_response("get_queue_url", {"QueueUrl": QUEUE_URL})
    caller = AWSCaller(backoff_base=0.0, sleep=lambda _: None)
    response = caller.call(client, "get_queue_url", QueueName="meeting-transcripts-queue")
    assert response["QueueUrl"] == QUEUE_URL


def test_network_errors_are_retried_three_times_then_fail_clearly() -> None:
    # A real connection refused: nothing listens on this loopback port.
    endpoint = f"http://127.0.0.1:{free_port()}"
    client = _client("sqs", endpoint)
    sleeps: list[float] = []
    caller = AWSCaller(backoff_base=0.01, sleep=sleeps.append)
    with pytest.raises(AWSUnavailableError) as caught:
        caller.call(client, "get_queue_url", QueueName="meeting-transcripts-queue")
    assert sleeps == [0.01, 0.02, 0.04]
    assert endpoint in str(caught.value)
    assert "after 3 retries" in str(caught.value)
    assert isinstance(caught.value.__cause__, EndpointConnectionError)
    client.close()


def test_network_error_then_recovery_succeeds(sqs: tuple[Any, Stubber]) -> None:
    client, stubber = sqs
    stubber.add_response("get_queue_url", {"QueueUrl": QUEUE_URL})
    failures = iter([EndpointConnectionError(endpoint_url="https://sqs.example")])

    def flaky_send(**_: Any) -> None:
        error = next(failures, None)
        if error is not None:
            raise error

    client.meta.events.register_first("before-parameter-build.sqs.GetQueueUrl", flaky_send)
    caller = AWSCaller(backoff_base=0.0, sleep=lambda _: None)
    assert caller.call(client, "get_queue_url", QueueName="q")["QueueUrl"] == QUEUE_URL


def test_rejected_credentials_are_a_credentials_error(sqs: tuple[Any, Stubber]) -> None:
    client, stubber = sqs
    stubber.add_client_error(
        "get_queue_url", "InvalidClientTokenId", "bad token", http_status_code=403
    )
    with pytest.raises(AWSCredentialsError, match="AWS_ACCESS_KEY_ID"):
        AWSCaller().call(client, "get_queue_url", QueueName="q")


def test_verifier_maps_access_denied_to_exit_2_with_actions(
    sqs: tuple[Any, Stubber], events: tuple[Any, Stubber]
) -> None:
    sqs_client, sqs_stub = sqs
    events_client, events_stub = events
    sqs_stub.add_response("get_queue_url", {"QueueUrl": QUEUE_URL})
    events_stub.add_client_error("put_events", "AccessDeniedException", http_status_code=400)
    result = EventFlowVerifier(sqs_client=sqs_client, events_client=events_client).run()
    assert result.exit_code == 2
    assert "events:PutEvents" in result.message
    assert "sqs:ChangeMessageVisibility" in result.message


def test_verifier_polls_every_2_s_for_30_s_with_10_s_visibility(
    sqs: tuple[Any, Stubber], events: tuple[Any, Stubber]
) -> None:
    sqs_client, sqs_stub = sqs
    events_client, events_stub = events
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    sqs_stub.add_response("get_queue_url", {"QueueUrl": QUEUE_URL})
    events_stub.add_response(
        "put_events",
        {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]},
        {"Entries": [{"Source": "com.yourapp.transcription",
                      "DetailType": "BatchProcessingCompleted",
                      "Detail": ANY, "EventBusName": "default"}]},
    )  # fmt: skip
    for _ in range(15):
        sqs_stub.add_response(
            "receive_message",
            {"Messages": []},
            {"QueueUrl": QUEUE_URL, "MaxNumberOfMessages": 10, "VisibilityTimeout": 10,
             "WaitTimeSeconds": 2},
        )  # fmt: skip
    verifier = EventFlowVerifier(
        sqs_client=sqs_client, events_client=events_client, sleep=sleep, clock=lambda: now[0]
    )
    result = verifier.run()
    assert result.exit_code == 1
    assert result.polls == 15
    assert now[0] == pytest.approx(30.0)
