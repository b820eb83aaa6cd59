"""Local mode (`make run`): the emulator comes up provisioned (queues, rule and the blob store's
bucket), and the flow works against it, for a user who sends no identity headers at all."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
import pytest

from batchscribe.config import Settings
from batchscribe.infra.emulator import free_port
from batchscribe.infra.exceptions import LocalStackError
from batchscribe.infra.local import (
    LOCAL_BLOB_PREFIX,
    LOCAL_BLOB_STORE,
    LOCAL_BUCKET,
    LOCAL_TENANT_ID,
    banner,
    real_aws_configured,
    service_environment,
    start_local_aws,
    tenant_id,
)
from batchscribe.infra.verify import EventFlowVerifier
from testkit.aws import emulator_client
from testkit.server import ServerProcess
from tests.support.aws_tooling import (  # noqa: F401 - fixture
    PRIVATE,
    QUEUE,
    bucket_settings,
    queue_url,
    restore_cli_logging,
    run_cli,
    s3_client,
)

OTHER_TENANT = "6f1c2a9e-3b7d-4c1e-9a8f-2d5b7c9e1f03"


def test_start_local_aws_provisions_an_emulator_the_verifier_succeeds_against(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    monkeypatch.setenv("LOCAL_AWS_PORT", str(port))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALLOOKINGKEY00")  # a "real" account: ignored
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "real-looking-secret")
    monkeypatch.setenv("BLOB_STORE", "s3://someone-elses-bucket/prod")  # replaced in local mode
    settings = Settings()
    assert real_aws_configured(settings)
    emulator, result = start_local_aws(settings)
    try:
        assert emulator.endpoint_url == f"http://127.0.0.1:{port}"
        assert result.ok
        assert result.queue_url is not None
        assert result.queue_url.startswith(emulator.endpoint_url)
        assert result.bucket == LOCAL_BUCKET
        assert bucket_settings(s3_client(emulator), LOCAL_BUCKET) == {
            "encryption": "AES256",
            "public_access_block": PRIVATE,
        }
        text = banner(settings, emulator.endpoint_url, result)
        assert f"batchscribe tail --endpoint-url {emulator.endpoint_url}" in text
        assert f"batchscribe verify --endpoint-url {emulator.endpoint_url}" in text
        assert f"s3://{LOCAL_BUCKET}/{LOCAL_BLOB_PREFIX}" in text
        assert LOCAL_TENANT_ID in text

        env = service_environment(settings, emulator.endpoint_url)
        assert env["AWS_ENDPOINT_URL"] == emulator.endpoint_url
        assert env["AWS_ACCESS_KEY_ID"] == "testing"  # the real key never reaches the service
        assert env["BLOB_STORE"] == LOCAL_BLOB_STORE == f"s3://{LOCAL_BUCKET}/{LOCAL_BLOB_PREFIX}"
        assert env["S3_ENDPOINT_URL"] == emulator.endpoint_url
        assert env["MOCK_TENANT_ID"] == LOCAL_TENANT_ID

        # What a second terminal does while `make run` is up.
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        assert run_cli("verify", "--endpoint-url", emulator.endpoint_url, "--timeout", "5") == 0
    finally:
        emulator.stop()


def test_a_tenant_the_user_set_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCK_TENANT_ID", OTHER_TENANT)
    settings = Settings()
    assert tenant_id(settings) == OTHER_TENANT
    assert service_environment(settings, "http://127.0.0.1:4566")["MOCK_TENANT_ID"] == OTHER_TENANT


def test_a_tenant_set_in_dot_env_is_left_to_the_service_to_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"MOCK_TENANT_ID={OTHER_TENANT}\n", encoding="utf-8")
    settings = Settings()  # the working directory is tmp_path
    assert tenant_id(settings) == OTHER_TENANT
    assert "MOCK_TENANT_ID" not in service_environment(settings, "http://127.0.0.1:4566")


def test_a_job_submitted_without_identity_reads_back_and_uses_the_emulator_bucket(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tone_file: Path
) -> None:
    """What a `make run` user does with curl: submit, then poll, without any header. The job
    is found (the fixed local tenant), its audio went to the emulator's bucket, and its event
    carries that tenant."""
    monkeypatch.setenv("LOCAL_AWS_PORT", str(free_port()))
    settings = Settings()
    emulator, _ = start_local_aws(settings)
    try:
        env = service_environment(settings, emulator.endpoint_url)
        env.update({"KEEP_AUDIO": "true", "WORKERS": "1"})
        with ServerProcess(env, tmp_path / "server.log") as server:
            audio = tone_file.read_bytes()
            submitted = httpx.post(
                f"{server.url}/batch/jobs", files={"file": ("tone.wav", audio)}, timeout=30
            )
            assert submitted.status_code == 202, submitted.text
            job_id = submitted.json()["job_id"]
            job = _wait_for_end(f"{server.url}/batch/jobs/{job_id}")
            assert job["status"] == "completed", job

            head = s3_client(emulator).head_object(
                Bucket=LOCAL_BUCKET, Key=f"{LOCAL_BLOB_PREFIX}/audio/{job_id}"
            )
            assert head["ContentLength"] == len(audio)

            detail = _event_detail(emulator.endpoint_url, job_id)
            assert detail["tenant_id"] == LOCAL_TENANT_ID
            assert detail["status"] == "completed"
    finally:
        emulator.stop()


def _wait_for_end(url: str, patience: float = 120.0) -> dict[str, object]:
    """Poll a job (no identity headers) until it ends; every poll must find it."""
    deadline = time.monotonic() + patience
    while True:
        answer = httpx.get(url, timeout=10)
        assert answer.status_code == 200, answer.text  # not 404: the same tenant every time
        job: dict[str, object] = answer.json()
        if job["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def _event_detail(endpoint_url: str, job_id: str, patience: float = 30.0) -> dict[str, object]:
    """The detail of the job's event, received from the provisioned queue."""
    sqs = emulator_client("sqs", endpoint_url)
    url = queue_url(sqs, QUEUE)
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        for message in sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", []):
            detail: dict[str, object] = json.loads(message["Body"])["detail"]
            if detail.get("interaction_id") == job_id:
                return detail
    raise AssertionError(f"no event for job {job_id} in the queue")


def test_busy_port_gives_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        monkeypatch.setenv("LOCAL_AWS_PORT", str(busy.getsockname()[1]))
        with pytest.raises(LocalStackError, match="LOCAL_AWS_PORT"):
            start_local_aws(Settings())


def test_default_verifier_settings_match_the_spec() -> None:
    verifier = EventFlowVerifier(sqs_client=object(), events_client=object())
    assert (verifier.timeout, verifier.poll_interval, verifier.visibility_timeout) == (30, 2, 10)
