"""What the emulator cannot produce, with botocore's Stubber: AccessDenied, error codes and
their translation, rejected credentials, and the verifier's polling cadence. (Retries go through
real HTTP: tests/integration/test_aws_retries.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from batchscribe.aws.clients import AWSCaller
from batchscribe.aws.exceptions import (
    AWSAccessDeniedError,
    AWSCredentialsError,
    AWSError,
    AWSRequestError,
    AWSResourceNotFoundError,
    AWSUnavailableError,
    QueueNotFoundError,
)
from batchscribe.config import Settings
from batchscribe.infra.exceptions import ProvisioningError
from batchscribe.infra.provision import AWSInfrastructureProvisioner
from batchscribe.infra.target import AWSTarget
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


def _provisioner(sqs: Any, events: Any) -> AWSInfrastructureProvisioner:
    return AWSInfrastructureProvisioner(
        target=AWSTarget.from_settings(Settings()), sqs_client=sqs, events_client=events
    )


def test_access_denied_names_the_actions_needed(
    sqs: tuple[Any, Stubber], events: tuple[Any, Stubber]
) -> None:
    client, stubber = sqs
    stubber.add_client_error(
        "get_queue_url", "AccessDenied", "not authorized", http_status_code=403
    )
    with pytest.raises(AWSAccessDeniedError) as caught:
        _provisioner(client, events[0]).create_dlq()
    message = str(caught.value)
    assert "sqs:GetQueueUrl" in message  # the action that was refused
    for action in ("sqs:CreateQueue", "sqs:SetQueueAttributes", "events:PutRule",
                   "events:PutTargets"):  # fmt: skip
        assert action in message  # and everything the tool needs, in one go
    assert "docs/iam/provisioner-policy.json" in message


@pytest.mark.parametrize(
    ("code", "status", "error", "retryable"),
    [
        ("ThrottlingException", 400, AWSUnavailableError, True),
        ("RequestThrottled", 403, AWSUnavailableError, True),
        ("InternalError", 500, AWSUnavailableError, True),
        ("SomethingNew", 503, AWSUnavailableError, True),  # any 5xx
        ("AWS.SimpleQueueService.NonExistentQueue", 400, QueueNotFoundError, False),
        ("QueueDoesNotExist", 400, QueueNotFoundError, False),
        ("ResourceNotFoundException", 400, AWSResourceNotFoundError, False),
        ("InvalidAttributeValue", 400, AWSRequestError, False),
        ("ExpiredToken", 403, AWSCredentialsError, False),
    ],
)
def test_errors_are_translated_by_code_and_status(
    sqs: tuple[Any, Stubber], code: str, status: int, error: type[AWSError], retryable: bool
) -> None:
    client, stubber = sqs
    stubber.add_client_error("get_queue_url", code, "some text", http_status_code=status)
    with pytest.raises(error) as caught:
        AWSCaller().call(client, "get_queue_url", QueueName="q")
    assert type(caught.value) is error
    assert caught.value.code == code
    assert caught.value.retryable is retryable


def test_message_text_never_decides_the_translation(sqs: tuple[Any, Stubber]) -> None:
    """An error whose text names another code is still what its code says."""
    client, stubber = sqs
    stubber.add_client_error(
        "get_queue_url",
        "InvalidParameterValue",
        "not ThrottlingException, not AWS.SimpleQueueService.NonExistentQueue",
        http_status_code=400,
    )
    with pytest.raises(AWSRequestError) as caught:
        AWSCaller().call(client, "get_queue_url", QueueName="q")
    assert not caught.value.retryable


@pytest.mark.parametrize("code", ["AWS.SimpleQueueService.QueueDeletedRecently",
                                  "QueueDeletedRecently"])  # fmt: skip
def test_recreating_a_just_deleted_queue_says_to_wait_a_minute(
    sqs: tuple[Any, Stubber], events: tuple[Any, Stubber], code: str
) -> None:
    client, stubber = sqs
    stubber.add_client_error(
        "get_queue_url", "AWS.SimpleQueueService.NonExistentQueue", http_status_code=400
    )
    # AWS's own message does not repeat the code: the code alone must decide.
    stubber.add_client_error(
        "create_queue",
        code,
        "You must wait 60 seconds after deleting a queue before you can create another with "
        "the same name.",
        http_status_code=400,
    )
    with pytest.raises(ProvisioningError, match="wait a minute and run again"):
        _provisioner(client, events[0]).create_dlq()


def test_another_create_queue_refusal_is_not_mistaken_for_a_recent_deletion(
    sqs: tuple[Any, Stubber], events: tuple[Any, Stubber]
) -> None:
    client, stubber = sqs
    stubber.add_client_error(
        "get_queue_url", "AWS.SimpleQueueService.NonExistentQueue", http_status_code=400
    )
    stubber.add_client_error(
        "create_queue",
        "InvalidAttributeName",
        "unknown attribute, QueueDeletedRecently is not the point",
        http_status_code=400,
    )
    with pytest.raises(AWSRequestError, match="InvalidAttributeName"):
        _provisioner(client, events[0]).create_dlq()


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


# The blob store's bucket (--with-bucket) --------------------------------------------------------


@pytest.fixture
def s3() -> Iterator[tuple[Any, Stubber]]:
    client = _client("s3")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _with_bucket(
    sqs: Any, events: Any, s3: Any, region: str = "us-east-1"
) -> AWSInfrastructureProvisioner:
    return AWSInfrastructureProvisioner(
        target=AWSTarget.from_settings(Settings(), region=region),
        sqs_client=sqs,
        events_client=events,
        s3_client=s3,
        bucket="transcripts-media",
    )


def test_bucket_access_denied_names_the_s3_actions_needed(
    sqs: tuple[Any, Stubber], events: tuple[Any, Stubber], s3: tuple[Any, Stubber]
) -> None:
    client, stubber = s3
    stubber.add_client_error("head_bucket", "404", "Not Found", http_status_code=404)
    stubber.add_client_error("create_bucket", "AccessDenied", "denied", http_status_code=403)
    with pytest.raises(AWSAccessDeniedError) as caught:
        _with_bucket(sqs[0], events[0], client).create_bucket()
    message = str(caught.value)
    assert "AWS denied s3:CreateBucket on bucket 'transcripts-media'" in message
    for action in ("s3:CreateBucket", "s3:ListBucket", "s3:PutEncryptionConfiguration",
                   "s3:PutBucketPublicAccessBlock", "sqs:CreateQueue"):  # fmt: skip
        assert action in message
    assert "docs/iam/provisioner-policy.json" in message


def test_a_bucket_we_may_not_see_says_the_name_may_be_taken(
    sqs: tuple[Any, Stubber], events: tuple[Any, Stubber], s3: tuple[Any, Stubber]
) -> None:
    """HeadBucket answers a bare 403 both for a missing permission and for another account's
    bucket; the message says both, in IAM's words (s3:ListBucket, not HeadBucket)."""
    client, stubber = s3
    stubber.add_client_error("head_bucket", "403", "Forbidden", http_status_code=403)
    with pytest.raises(AWSAccessDeniedError) as caught:
        _with_bucket(sqs[0], events[0], client).create_bucket()
    message = str(caught.value)
    assert "AWS denied s3:ListBucket" in message
    assert "another AWS account" in message
    assert "--with-bucket" in message
    assert caught.value.denied_action == "s3:ListBucket"


def test_a_bucket_name_taken_by_another_account_asks_for_another_name(
    sqs: tuple[Any, Stubber], events: tuple[Any, Stubber], s3: tuple[Any, Stubber]
) -> None:
    client, stubber = s3
    stubber.add_client_error("head_bucket", "404", "Not Found", http_status_code=404)
    stubber.add_client_error("create_bucket", "BucketAlreadyExists", http_status_code=409)
    with pytest.raises(ProvisioningError, match="belongs to another AWS account"):
        _with_bucket(sqs[0], events[0], client).create_bucket()


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("us-east-1", {"Bucket": "transcripts-media"}),
        ("eu-west-1", {"Bucket": "transcripts-media",
                       "CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"}}),
    ],
)  # fmt: skip
def test_the_bucket_is_created_in_the_target_region_encrypted_and_private(
    sqs: tuple[Any, Stubber],
    events: tuple[Any, Stubber],
    s3: tuple[Any, Stubber],
    region: str,
    expected: dict[str, Any],
) -> None:
    client, stubber = s3
    stubber.add_client_error("head_bucket", "404", "Not Found", http_status_code=404)
    stubber.add_response("create_bucket", {}, expected)
    stubber.add_response(
        "put_bucket_encryption",
        {},
        {"Bucket": "transcripts-media", "ServerSideEncryptionConfiguration": {
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}},
    )  # fmt: skip
    stubber.add_response(
        "put_public_access_block",
        {},
        {"Bucket": "transcripts-media", "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True}},
    )  # fmt: skip
    outcome = _with_bucket(sqs[0], events[0], client, region).create_bucket()
    assert outcome is not None
    assert outcome.action == "created"


def test_an_invalid_bucket_name_is_refused_before_any_call() -> None:
    with pytest.raises(ProvisioningError, match="not a valid S3 bucket name"):
        AWSInfrastructureProvisioner(
            sqs_client=object(), events_client=object(), s3_client=object(), bucket="My_Bucket"
        )
