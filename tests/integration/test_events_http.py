"""Events through the real app: the event of a processed upload reaches the queue, its status
is visible only to its tenant, publisher failures never fail the request (Property 3), and
events survive a SIGKILL while EventBridge is unreachable."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from batchscribe.config import Settings
from batchscribe.events.exceptions import OutboxError
from batchscribe.events.outbox import OutboxStatus
from batchscribe.events.runtime import EventsRuntime
from batchscribe.events.schema import BatchProcessingCompletedEvent
from batchscribe.http.app import create_app
from batchscribe.infra.emulator import LocalAWSEmulator, free_port
from batchscribe.services.runtime import ServiceRuntime
from testkit.aws import EventSink
from testkit.server import ServerProcess
from testkit.standins import DeepgramStandIn, OpenAIStandIn, deepgram_words
from tests.strategies import publisher_failures
from tests.support.events import wait_for

TURNS = [(0, "So we ship on Friday."), (1, "Who tells the customer?")]
RAW = "SPEAKER_0: So we ship on Friday.\nSPEAKER_1: Who tells the customer?"
# The stand-in model upper-cases what it is given, so the cleaned text differs from the raw
# text and the tests can tell which one went where.
CLEANED = RAW.upper()


def app_settings(
    tmp_path: Path, dg: DeepgramStandIn, llm: OpenAIStandIn, **overrides: Any
) -> Settings:
    dg.words = deepgram_words(TURNS)
    llm.clean = str.upper
    values: dict[str, Any] = {
        "workers": 1,
        "transcriber": "deepgram",
        "deepgram_api_key": dg.api_key,
        "deepgram_base_url": dg.base_url,
        "cleaner": "openai",
        "openai_api_key": llm.api_key,
        "openai_base_url": llm.base_url,
        "database_url": f"sqlite:///{tmp_path / 'app.db'}",
        "blob_store": f"file://{tmp_path / 'blobs'}",
        "upload_dir": tmp_path,
        "relay_max_backoff_seconds": 1,
        "shutdown_grace_seconds": 1,
    }
    values.update(overrides)
    return Settings(**values)


def upload(client: TestClient, tenant: str) -> httpx.Response:
    return client.post(
        "/batch/process",
        files={"file": ("meeting.wav", tone_bytes())},
        headers={"X-Tenant-ID": tenant, "X-User-ID": "user-9"},
    )


def tone_bytes() -> bytes:
    from tests.support.fixtures import write_tone

    path = Path(f"tone-{uuid.uuid4().hex}.wav")  # tests run in their tmp dir
    return write_tone(path, seconds=0.5).read_bytes()


def runtime_of(client: TestClient) -> ServiceRuntime:
    runtime: ServiceRuntime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def test_event_of_an_upload_arrives_and_only_its_tenant_sees_its_status(
    emulator_env: LocalAWSEmulator,
    sink: EventSink,
    source: str,
    tmp_path: Path,
    deepgram_standin: DeepgramStandIn,
    openai_standin: OpenAIStandIn,
) -> None:
    settings = app_settings(
        tmp_path,
        deepgram_standin,
        openai_standin,
        event_source=source,
        aws_endpoint_url=emulator_env.endpoint_url,
    )
    tenant = str(uuid.uuid4())
    with TestClient(create_app(settings)) as client:
        response = upload(client, tenant)
        assert response.status_code == 200, response.text
        body = response.json()
        # The relay starts sending as soon as the job is recorded: it may already be out.
        assert body["event"]["status"] in ("queued", "sent")
        assert set(body["event"]) == {"status"}
        (detail,) = sink.receive_details(1)
        event = BatchProcessingCompletedEvent.model_validate(detail)
        assert event.interaction_id == body["interaction_id"]
        assert event.tenant_id == tenant
        assert event.user_id == "user-9"
        assert event.data is not None
        assert event.data.raw_transcript == body["raw_transcript"] == RAW
        assert event.data.cleaned_transcript == body["cleaned_transcript"] == CLEANED

        url = f"/events/{body['interaction_id']}"
        assert wait_for(
            lambda: (
                client.get(url, headers={"X-Tenant-ID": tenant}).json().get("status")
                == OutboxStatus.SENT
            )
        )
        mine = client.get(url, headers={"X-Tenant-ID": tenant}).json()
        assert mine["event_id"]
        assert "Friday" not in str(mine)
        other = client.get(url, headers={"X-Tenant-ID": str(uuid.uuid4())})
        assert other.status_code == 404
        assert other.json()["error"]["code"] == "event_not_found"
        unknown = client.get(f"/events/{uuid.uuid4()}", headers={"X-Tenant-ID": tenant})
        assert unknown.status_code == 404
        ready = client.get("/readyz").json()
        assert (ready["status"], ready["failing"]) == ("ready", [])
        assert ready["events"]["publisher"] == "enabled"
        assert ready["events"]["relay_running"] is True


class BrokenClient:
    """An `events` client failing in whichever way the current example asks."""

    def __init__(self) -> None:
        self.failure: tuple[str, str] = ("entry", "InternalFailure")
        self.meta = None

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        kind, code = self.failure
        if kind == "entry":
            return {
                "FailedEntryCount": len(Entries),
                "Entries": [{"ErrorCode": code, "ErrorMessage": "x"}] * len(Entries),
            }
        if kind == "call":
            status = 500 if code.startswith("Internal") else 400
            raise ClientError(
                {
                    "Error": {"Code": code, "Message": "x"},
                    "ResponseMetadata": {"HTTPStatusCode": status},
                },
                "PutEvents",
            )
        if kind == "network":
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        if kind == "timeout":
            raise ReadTimeoutError(endpoint_url="http://127.0.0.1:1")
        if kind == "credentials":
            raise NoCredentialsError()
        raise RuntimeError("a bug in the client")

    def close(self) -> None:
        pass


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(failure=publisher_failures())
def test_property3_no_publisher_failure_fails_the_request(
    failure: tuple[str, str],
    app_with_broken_publisher: tuple[TestClient, BrokenClient, EventsRuntime],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, broken, events = app_with_broken_publisher
    broken.failure = failure
    with monkeypatch.context() as patch:
        if failure[0] == "outbox":
            # The relay cannot use the outbox at all (the job's own transaction, in the
            # worker, still records the event).
            def refuse(*_: Any, **__: Any) -> None:
                raise OutboxError("disk full")

            patch.setattr(events.outbox, "claim", refuse)
            patch.setattr(events.outbox, "apply", refuse)
        response = upload(client, str(uuid.uuid4()))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["raw_transcript"] == RAW
    assert body["cleaned_transcript"] == CLEANED
    # The event is recorded and never reported sent; a terminal refusal may already show.
    terminal_possible = failure[0] in ("entry", "call")
    assert body["event"]["status"] in (("queued", "failed") if terminal_possible else ("queued",))
    row = events.outbox.get(body["interaction_id"])
    assert row is not None
    assert row.status != OutboxStatus.SENT
    if body["event"]["status"] == "failed":
        assert row.status == OutboxStatus.FAILED
        assert row.error_code
    assert client.get("/healthz").status_code == 200


def test_an_unreadable_event_state_still_returns_the_transcripts(
    tmp_path: Path,
    deepgram_standin: DeepgramStandIn,
    openai_standin: OpenAIStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = app_settings(tmp_path, deepgram_standin, openai_standin)
    with TestClient(create_app(settings)) as client:
        events = runtime_of(client).events
        assert events is not None

        def refuse(*_: Any, **__: Any) -> None:
            raise OutboxError("database is locked")

        monkeypatch.setattr(events.outbox, "get", refuse)
        response = upload(client, str(uuid.uuid4()))
    assert response.status_code == 200, response.text
    assert response.json()["raw_transcript"] == RAW
    assert response.json()["cleaned_transcript"] == CLEANED
    assert response.json()["event"] == {"status": "unknown"}


@pytest.fixture
def app_with_broken_publisher(
    emulator_env: LocalAWSEmulator,
    tmp_path: Path,
    deepgram_standin: DeepgramStandIn,
    openai_standin: OpenAIStandIn,
) -> Iterator[tuple[TestClient, BrokenClient, EventsRuntime]]:
    """The app with credentials (publishing enabled) whose relay's `events` client fails as
    each example asks."""
    settings = app_settings(
        tmp_path, deepgram_standin, openai_standin, aws_endpoint_url=emulator_env.endpoint_url
    )
    broken = BrokenClient()
    with TestClient(create_app(settings)) as client:
        events = runtime_of(client).events
        assert events is not None
        assert events.publisher.enabled
        real = events.publisher.client
        events.publisher.client = broken
        try:
            yield client, broken, events
        finally:
            real.close()


@pytest.mark.slow
def test_events_survive_sigkill_while_eventbridge_is_unreachable(
    aws_emulator: LocalAWSEmulator,
    sink: EventSink,
    source: str,
    tmp_path: Path,
    deepgram_standin: DeepgramStandIn,
    openai_standin: OpenAIStandIn,
) -> None:
    deepgram_standin.words = deepgram_words(TURNS)
    secret = f"emulator-secret-{uuid.uuid4().hex}"  # the emulator accepts any key
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "EVENT_SOURCE": source,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "BLOB_STORE": f"file://{tmp_path / 'blobs'}",
        "TRANSCRIBER": "deepgram",
        "DEEPGRAM_API_KEY": deepgram_standin.api_key,
        "DEEPGRAM_BASE_URL": deepgram_standin.base_url,
        "CLEANER": "openai",
        "OPENAI_API_KEY": openai_standin.api_key,
        "OPENAI_BASE_URL": openai_standin.base_url,
        "WORKERS": "1",
        "RELAY_MAX_BACKOFF_SECONDS": "0.5",
    }
    log = tmp_path / "server.log"
    server = ServerProcess(env, log)
    ids = []
    with server:
        for _ in range(5):
            response = httpx.post(
                server.url + "/batch/process", files={"file": ("m.wav", tone_bytes())}, timeout=60
            )
            assert response.status_code == 200, response.text
            assert response.json()["event"]["status"] == "queued"
            ids.append(response.json()["interaction_id"])
        server.kill()  # SIGKILL: no drain, no lease release

    restarted = ServerProcess({**env, "AWS_ENDPOINT_URL": aws_emulator.endpoint_url}, log)
    with restarted:
        details = sink.receive_details(5, timeout=60)
    assert sorted(d["interaction_id"] for d in details) == sorted(ids)
    text = log.read_text(errors="replace")
    assert "ship on Friday" not in text  # transcripts never reach the logs
    assert secret not in text
