"""The printed IAM policies allow every call the code really makes, on the resources it makes
them on: each component runs against the emulator while its client records the operations,
and each operation is checked against the policy meant for it (an operator granting exactly
that policy must never meet an AccessDenied)."""

from __future__ import annotations

import fnmatch
import io
import json
import uuid
from typing import Any

import pytest

from batchscribe.aws.clients import iam_action
from batchscribe.blobs.exceptions import BlobNotFoundError
from batchscribe.blobs.s3 import PART_SIZE, S3BlobStore
from batchscribe.events.schema import BatchProcessingCompletedEvent, EventData
from batchscribe.infra import iam
from batchscribe.infra.claimcheck import ClaimCheckReader
from batchscribe.infra.emulator import LocalAWSEmulator
from batchscribe.infra.provision import AWSInfrastructureProvisioner
from batchscribe.jobs.factory import claim_check_for
from testkit.aws import reset_emulator
from tests.support.aws_tooling import clients, s3_client

BUCKET = "batchscribe-iam-test"
PREFIX = "prod"

#: How IAM authorises each S3 operation (AWS's "Actions, resources and condition keys for
#: Amazon S3"): several operations share one action. An operation missing here fails the test.
S3_OPERATION_ACTIONS = {
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "DeleteObject": "s3:DeleteObject",
    "HeadBucket": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "CreateBucket": "s3:CreateBucket",
    "GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
}


class CallLog:
    """Every operation a client sends, as (IAM action, resource ARN or None)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def watch(self, client: Any) -> Any:
        service = client.meta.service_model.service_name
        client.meta.events.register(f"provide-client-params.{service}", self._record(client))
        return client

    def _record(self, client: Any) -> Any:
        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            if client.meta.service_model.service_name != "s3":
                self.calls.append((iam_action(client, _snake(model.name)), None))
                return
            assert model.name in S3_OPERATION_ACTIONS, f"map {model.name} to its IAM action"
            key = params.get("Key")
            arn = f"arn:aws:s3:::{params['Bucket']}" + (f"/{key}" if key else "")
            self.calls.append((S3_OPERATION_ACTIONS[model.name], arn))

        return record


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _allowed(policy: dict[str, Any], action: str, arn: str | None) -> bool:
    for statement in policy["Statement"]:
        resources = statement["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        if action in statement["Action"] and (
            arn is None or any(fnmatch.fnmatchcase(arn, pattern) for pattern in resources)
        ):
            return True
    return False


def _policies() -> dict[str, dict[str, Any]]:
    return iam.all_policies(
        partition="aws", region="us-east-1", account="123456789012", bus_name="default",
        queue_name="meeting-transcripts-queue", dlq_name="meeting-transcripts-dlq",
        rule_name="capture-transcripts-rule", bucket=BUCKET, blob_prefix=PREFIX,
    )  # fmt: skip


def _refused(log: CallLog, policy: str) -> list[tuple[str, str | None]]:
    return [call for call in log.calls if not _allowed(_policies()[policy], *call)]


def scratch_file() -> str:
    """A scratch file for downloads (the test's working directory is its tmp_path)."""
    return f"download-{uuid.uuid4().hex}"


@pytest.fixture
def emulator(emulator_env: LocalAWSEmulator) -> LocalAWSEmulator:
    reset_emulator(emulator_env.endpoint_url)
    return emulator_env


def _provision(emulator: LocalAWSEmulator, log: CallLog, **kwargs: Any) -> None:
    sqs, events = clients(emulator)
    result = AWSInfrastructureProvisioner(
        sqs_client=log.watch(sqs),
        events_client=log.watch(events),
        s3_client=log.watch(s3_client(emulator)),
        bucket=BUCKET,
        **kwargs,
    ).provision_all()
    assert result.ok, result.problems


def test_the_provisioner_policy_allows_every_call_of_a_run_with_a_bucket(
    emulator: LocalAWSEmulator,
) -> None:
    log = CallLog()
    _provision(emulator, log)  # creates everything
    s3 = s3_client(emulator)
    s3.delete_bucket_encryption(Bucket=BUCKET)
    s3.delete_public_access_block(Bucket=BUCKET)
    _provision(emulator, log, reconcile=True)  # finds and fixes drift
    actions = {action for action, _ in log.calls}
    assert {"s3:CreateBucket", "s3:PutEncryptionConfiguration", "sqs:CreateQueue"} <= actions
    assert _refused(log, "provisioner-policy") == []


def test_the_service_policy_allows_every_call_of_the_blob_store(
    emulator: LocalAWSEmulator,
) -> None:
    log = CallLog()
    s3 = s3_client(emulator)
    s3.create_bucket(Bucket=BUCKET)
    store = S3BlobStore(BUCKET, PREFIX, client=log.watch(s3_client(emulator)))
    small = store.put_stream("audio/a", io.BytesIO(b"x" * 1000))
    store.put_stream("audio/b", io.BytesIO(b"y" * (PART_SIZE + 1)))  # a multipart upload
    with store.open("audio/a") as stream:
        assert stream.read() == b"x" * 1000
    assert store.download("audio/b", scratch_file()) == PART_SIZE + 1
    assert not store.exists("audio/never")
    with pytest.raises(BlobNotFoundError):
        store.open("audio/never")
    store.check_writable()
    store.delete("audio/a")
    claim = claim_check_for(store)
    assert claim is not None
    claim(str(uuid.uuid4()), b'{"data": {"cleaned_transcript": "", "raw_transcript": ""}}')
    assert small.size == 1000
    actions = {action for action, _ in log.calls}
    assert {"s3:PutObject", "s3:GetObject", "s3:DeleteObject"} <= actions
    assert _refused(log, "publisher-policy") == []
    assert all(arn is not None and arn.startswith(f"arn:aws:s3:::{BUCKET}") for _, arn in log.calls)


def test_the_consumer_policy_allows_following_a_claim_check_and_nothing_else_in_s3(
    emulator: LocalAWSEmulator,
) -> None:
    s3 = s3_client(emulator)
    s3.create_bucket(Bucket=BUCKET)
    store = S3BlobStore(BUCKET, PREFIX, client=s3)
    claim = claim_check_for(store)
    assert claim is not None
    event = BatchProcessingCompletedEvent(
        interaction_id=str(uuid.uuid4()),
        tenant_id=str(uuid.uuid4()),
        user_id="u-1",
        data=EventData(raw_transcript="SPEAKER_0: hi", cleaned_transcript="Hi."),
    )
    ref = claim(event.interaction_id, event.model_dump_json(include={"data"}).encode())
    log = CallLog()
    data = ClaimCheckReader(log.watch(s3_client(emulator))).fetch(ref)
    assert data.cleaned_transcript == "Hi."
    assert _refused(log, "consumer-policy") == []
    # ...and the same policy would refuse the audio next to it.
    audio = f"arn:aws:s3:::{BUCKET}/{PREFIX}/audio/{event.interaction_id}"
    assert not _allowed(_policies()["consumer-policy"], "s3:GetObject", audio)


def test_the_printed_policies_are_the_documented_ones_with_real_names() -> None:
    """What `provision` prints for a bucket is docs/iam/ with the placeholders filled in."""
    documented = json.dumps(iam.placeholder_policies())
    filled = (
        documented.replace("REGION", "us-east-1")
        .replace("ACCOUNT_ID", "123456789012")
        .replace("BUCKET", BUCKET)
        .replace("PREFIX", PREFIX)
    )
    assert json.loads(filled) == _policies()
