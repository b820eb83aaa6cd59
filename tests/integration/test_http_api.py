"""The HTTP contract of POST /batch/process against the real app, engine and worker processes:
statuses, JSON error bodies, headers. Bad input is never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from batchscribe.config import Settings
from batchscribe.db import Database
from batchscribe.events.outbox import Outbox, OutboxStatus
from batchscribe.http.app import create_app
from batchscribe.http.identity import is_uuid4
from tests.support import bad_inputs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LIMIT_MB = 1


@pytest.fixture(scope="module")
def app_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tmp = tmp_path_factory.mktemp("app")
    return Settings(
        workers=1,
        max_queued=1,
        max_upload_mb=LIMIT_MB,
        database_url=f"sqlite:///{tmp / 'app.db'}",
        blob_store=f"file://{tmp / 'blobs'}",
        upload_dir=tmp,
    )


@pytest.fixture(scope="module")
def client(app_settings: Settings) -> Iterator[TestClient]:
    # No AWS credentials in the test environment: publishing is disabled, events are held.
    app = create_app(app_settings, workers=1)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def outbox(app_settings: Settings) -> Iterator[Outbox]:
    """The app's outbox, read through a handle of its own."""
    db = Database(app_settings.database)
    try:
        yield Outbox(db)
    finally:
        db.dispose()


def speech(fmt: str = "wav") -> bytes:
    return (FIXTURES / f"speech.{fmt}").read_bytes()


def post(client: TestClient, name: str, data: bytes, **kwargs: Any) -> httpx.Response:
    return client.post("/batch/process", files={"file": (name, data)}, **kwargs)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["message"].endswith((".", ")")), "message must be a sentence"
    assert "Traceback" not in response.text
    if code:
        assert body["error"]["code"] == code


@pytest.mark.slow
def test_speech_upload_returns_both_transcripts(client: TestClient, outbox: Outbox) -> None:
    tenant = "6f1c2a9e-3b7d-4c1e-9a8f-2d5b7c9e1f03"
    response = post(
        client,
        "speech.wav",
        speech(),
        headers={"X-Tenant-ID": tenant, "X-User-ID": "alice", "X-Account-ID": "acct-1"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["raw_transcript"].startswith("SPEAKER_0: ")
    assert body["cleaned_transcript"].startswith("SPEAKER_0: ")
    assert body["cleaned_transcript"][len("SPEAKER_0: ")].isupper()
    assert body["cleaned_transcript"].rstrip()[-1] in ".?!"
    assert (body["tenant_id"], body["user_id"], body["account_id"]) == (tenant, "alice", "acct-1")
    assert is_uuid4(body["interaction_id"])
    assert response.headers["X-Interaction-ID"] == body["interaction_id"]
    assert body["duration_seconds"] > 1
    # Without AWS credentials the event is kept for `batchscribe outbox replay`.
    assert body["event"] == {"status": "held", "reason": "publishing_disabled"}
    assert body["cleaning"] == {"engine": "rules", "degraded": False, "reason": None}
    row = outbox.get(body["interaction_id"])
    assert row is not None
    assert row.status in (OutboxStatus.PENDING, OutboxStatus.HELD)
    assert row.tenant_id == tenant
    detail = json.loads(row.entry["Detail"])
    assert (detail["tenant_id"], detail["user_id"], detail["account_id"]) == (
        tenant,
        "alice",
        "acct-1",
    )
    assert detail["data"] == {
        "raw_transcript": body["raw_transcript"],
        "cleaned_transcript": body["cleaned_transcript"],
    }


@pytest.mark.slow
def test_format_is_decided_by_decoding_not_by_name(client: TestClient) -> None:
    response = post(client, "voice-note.opus", speech("mp3"))
    assert response.status_code == 200, response.text
    assert response.json()["raw_transcript"].startswith("SPEAKER_0: ")


@pytest.mark.slow
def test_invalid_tenant_is_replaced_and_warned(client: TestClient) -> None:
    response = post(client, "a.wav", bad_inputs.sine_wav(), headers={"X-Tenant-ID": "acme"})
    assert response.status_code == 200, response.text
    assert is_uuid4(response.json()["tenant_id"])
    assert "X-Tenant-ID" in response.headers["X-Warning"]


BAD_UPLOADS = {
    "text renamed .wav": ("notes.wav", bad_inputs.text_bytes(), 422, "invalid_audio"),
    "random bytes as .m4a": ("x.m4a", bad_inputs.random_bytes(), 422, "invalid_audio"),
    "wav header, no samples": ("empty.wav", bad_inputs.wav_header_without_samples(), 422, None),
    "wav header lying about length": ("lie.wav", bad_inputs.wav_with_lying_header(), 422, None),
    "video-only file": ("clip.m4a", bad_inputs.video_only_mp4(), 422, "invalid_audio"),
    "zero bytes": ("zero.wav", b"", 400, "empty_file"),
    "unsupported extension": ("notes.txt", b"hello", 400, "unsupported_extension"),
    "executable extension": ("run.exe", bad_inputs.sine_wav(), 400, "unsupported_extension"),
    "over the size limit": (
        "big.wav",
        bad_inputs.oversized(LIMIT_MB * 1024 * 1024 + 1),
        413,
        "file_too_large",
    ),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS), ids=list(BAD_UPLOADS))
def test_bad_upload_gets_its_error(client: TestClient, outbox: Outbox, case: str) -> None:
    name, data, status, code = BAD_UPLOADS[case]
    response = post(client, name, data)
    assert_error(response, status, code)
    interaction_id = response.headers["X-Interaction-ID"]
    assert is_uuid4(interaction_id)
    # Bad input never produces a completed event: refused before a job existed (no event),
    # or a job that failed (a failed event, without transcripts).
    row = outbox.get(interaction_id)
    if status != 422:
        assert row is None
    elif row is not None:
        assert row.detail_type == "BatchProcessingFailed"
        assert "data" not in json.loads(row.entry["Detail"])


@pytest.mark.slow
def test_truncated_mp3_is_not_a_server_error(client: TestClient) -> None:
    head = speech("mp3")[:200]
    assert_error(post(client, "cut.mp3", head), 422, "invalid_audio")


def test_wrong_form_field(client: TestClient) -> None:
    response = client.post("/batch/process", files={"audio": ("a.wav", bad_inputs.sine_wav())})
    assert_error(response, 400, "unknown_field")
    assert (
        "Send only: `file`, `language`, `response_format`." in response.json()["error"]["message"]
    )


def test_form_field_without_filename(client: TestClient) -> None:
    response = client.post("/batch/process", data={"file": "not a file"})
    assert_error(response, 400, "missing_file")


def test_no_body(client: TestClient) -> None:
    assert_error(client.post("/batch/process"), 400, "missing_file")


def test_json_body(client: TestClient) -> None:
    assert_error(client.post("/batch/process", json={"file": "x"}), 400, "missing_file")


def test_truncated_multipart_body(client: TestClient) -> None:
    body = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF'
    response = client.post(
        "/batch/process",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=XyZ"},
    )
    assert_error(response, 400, "malformed_body")


def test_huge_other_field_is_refused(client: TestClient) -> None:
    response = client.post(
        "/batch/process",
        data={"note": "x" * (100 * 1024)},
        files={"file": ("a.wav", bad_inputs.sine_wav())},
    )
    # Refused at the field's name, before any of its value is read.
    assert_error(response, 400, "unknown_field")


@pytest.mark.parametrize(
    ("header", "value"),
    [("X-User-ID", "u" * 10_000), ("X-Account-ID", "a" * 257), ("X-Tenant-ID", "t\x01")],
)
def test_bad_identity_headers(client: TestClient, header: str, value: str) -> None:
    response = post(client, "a.wav", bad_inputs.sine_wav(), headers={header: value})
    assert_error(response, 400, "invalid_header")
    assert header in response.json()["error"]["message"]


def test_wrong_method_and_unknown_path_are_json(client: TestClient) -> None:
    assert_error(client.get("/batch/process"), 405, "method_not_allowed")
    assert_error(client.get("/no/such/thing"), 404, "not_found")


def test_health_ready_metrics_and_docs(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    assert ready.json()["failing"] == []
    assert ready.json()["engine"]["ready"] is True
    metrics = client.get("/metrics").text
    assert "batchscribe_requests_total" in metrics
    assert "batchscribe_audio_seconds_total" in metrics
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/batch/process"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body
    assert client.get("/docs").status_code == 200
