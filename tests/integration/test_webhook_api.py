"""callback_url through the real app (SPEC 13): checked at submission (scheme, host, length, a
secret to sign with), stored with the job, and the job's `callback` shows the delivery: waiting
while the job runs, then its state and attempts. The job is finished here by the test acting
as a worker on the same database; the app's sender delivers the webhook."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from batchscribe.auth.keys import KeyStore
from batchscribe.config import Settings
from batchscribe.db import Database
from batchscribe.jobs.store import JobStore
from batchscribe.webhooks.tenant_secrets import TenantSecrets
from tests.support.auth import bearer, serve
from tests.support.fixtures import write_tone
from tests.support.jobs import job_store, result_of
from tests.support.webhook_jobs import FALLBACK_SECRET, TENANT
from tests.support.webhooks import ReceiverReply, WebhookReceiver, verify_signature


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "auth_mode": "none",
        "database_url": f"sqlite:///{tmp_path / 'app.db'}",
        "blob_store": f"file://{tmp_path / 'blobs'}",
        "webhook_secret": FALLBACK_SECRET,
        "callback_allow_private_networks": True,
        "callback_retry_delays": (0.2,),
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    return write_tone(tmp_path / "meeting.wav")


def _submit(
    client: TestClient, audio: Path, callback_url: str | None, headers: dict[str, str] | None = None
) -> Any:
    data = {"callback_url": callback_url} if callback_url is not None else {}
    with audio.open("rb") as upload:
        return client.post(
            "/batch/jobs",
            files={"file": ("meeting.wav", upload, "audio/wav")},
            data=data,
            headers=headers if headers is not None else {"X-Tenant-ID": TENANT},
        )


def _finish(settings: Settings, job_id: str, text: str) -> None:
    """Do a worker's part: claim the job and complete it (its delivery is written with it)."""
    db = Database(settings.database)
    try:
        store: JobStore = job_store(db)
        claimed = store.claim("test-worker", 30)
        assert claimed is not None
        assert claimed.id == job_id
        store.complete(job_id, "test-worker", result_of(text))
    finally:
        db.dispose()


def _callback_when(client: TestClient, job_id: str, status: str) -> Any:
    deadline = time.monotonic() + 30
    while True:
        callback = client.get(f"/batch/jobs/{job_id}", headers={"X-Tenant-ID": TENANT}).json()[
            "callback"
        ]
        if callback["status"] == status:
            return callback
        assert time.monotonic() < deadline, callback
        time.sleep(0.05)


def test_a_job_with_a_callback_shows_it_waiting_then_delivered_with_its_attempts(
    tmp_path: Path, audio: Path, receiver: WebhookReceiver
) -> None:
    settings = _settings(tmp_path)
    receiver.queue(ReceiverReply(status=503))
    url = receiver.url_for("127.0.0.1", "/hooks/batchscribe?token=t0k")
    with serve(settings) as client:
        accepted = _submit(client, audio, url)
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        waiting = _callback_when(client, job_id, "waiting")
        assert waiting["url"] == url
        assert waiting["attempts"] == 0
        assert waiting["webhook_id"] is None

        _finish(settings, job_id, "the launch moves to friday")
        delivered = _callback_when(client, job_id, "delivered")
        listed = client.get("/batch/jobs", headers={"X-Tenant-ID": TENANT}).json()["jobs"]

    assert delivered["type"] == "batch.completed"
    assert delivered["attempts"] == 2
    assert delivered["last_status_code"] == 204
    assert [a["outcome"] for a in delivered["recent_attempts"]] == ["retry", "delivered"]
    assert [a["status_code"] for a in delivered["recent_attempts"]] == [503, 204]
    assert delivered["recent_attempts"][0]["error"] == "the receiver answered 503"
    assert delivered["next_attempt_at"] is None
    assert [job["callback"]["status"] for job in listed] == ["delivered"]
    assert listed[0]["callback"]["recent_attempts"] == []
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivered["webhook_id"]
    assert verify_signature(FALLBACK_SECRET, second.headers, second.body)
    assert b"the launch moves to friday" in second.body
    # The README's receiver example accepts it, and refuses it altered.
    verify_webhook = _readme_verifier()
    event = verify_webhook(FALLBACK_SECRET, second.headers, second.body)
    assert event["data"]["job_id"] == job_id
    with pytest.raises(ValueError, match="bad signature"):
        verify_webhook(FALLBACK_SECRET, second.headers, second.body.replace(b"friday", b"monday"))
    with pytest.raises(ValueError, match="bad signature"):
        verify_webhook("whsec_" + "A" * 32, second.headers, second.body)


def _readme_verifier() -> Any:
    """`verify_webhook` exactly as the README shows it."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    (code,) = [block for block in blocks if "def verify_webhook" in block]
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 (our own README)
    return namespace["verify_webhook"]


@pytest.mark.parametrize(
    ("callback_url", "says"),
    [
        ("http://hooks.example.com/x", "has 'http' scheme"),
        ("https://127.0.0.1/x", "points to a loopback address"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://localhost:8443/x", "points to this machine"),
        ("https://intranet/x", "single-label host name"),
        ("https://user:pw@hooks.example.com/x", "credentials"),
        ("https://hooks.example.com/" + "a" * 2100, "characters long"),
        ("not a url", "spaces"),
    ],
)
def test_a_callback_url_that_breaks_a_rule_is_refused_at_submission(
    tmp_path: Path, audio: Path, callback_url: str, says: str
) -> None:
    settings = _settings(tmp_path, callback_allow_private_networks=False)
    with serve(settings) as client:
        answer = _submit(client, audio, callback_url)
        jobs = client.get("/batch/jobs", headers={"X-Tenant-ID": TENANT}).json()["jobs"]
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_callback_url"
    assert says in error["message"]
    assert "expected an https:// URL" in error["message"]
    assert jobs == []  # nothing was stored
    assert list((tmp_path / "blobs").rglob("audio/*")) == []


def test_private_networks_allowed_accepts_http_and_loopback(tmp_path: Path, audio: Path) -> None:
    with serve(_settings(tmp_path)) as client:
        answer = _submit(client, audio, "http://127.0.0.1:9/hooks")
    assert answer.status_code == 202, answer.text


def test_without_any_secret_to_sign_with_a_callback_is_refused_with_what_to_do(
    tmp_path: Path, audio: Path
) -> None:
    with serve(_settings(tmp_path, webhook_secret=None)) as client:
        refused = _submit(client, audio, "http://127.0.0.1:9/hooks")
        plain = _submit(client, audio, None)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "callback_secret_missing"
    assert f"batchscribe webhooks rotate-secret --tenant {TENANT}" in error["message"]
    assert plain.status_code == 202  # jobs without a callback are not affected


def test_in_api_key_mode_each_tenant_needs_its_own_secret(tmp_path: Path, audio: Path) -> None:
    settings = _settings(tmp_path, auth_mode="api_key", workers=1)
    db = Database(settings.database)
    try:
        job_store(db)  # migrates
        tenant = str(uuid.uuid4())
        _, key = KeyStore(db).create(tenant)
        with serve(settings) as client:
            # WEBHOOK_SECRET is set, but one secret shared by tenants who do not trust each
            # other would let one forge webhooks to another: it is not used in this mode.
            refused = _submit(client, audio, "http://127.0.0.1:9/hooks", bearer(key))
            TenantSecrets.from_settings(db, settings).rotate(tenant)
            accepted = _submit(client, audio, "http://127.0.0.1:9/hooks", bearer(key))
    finally:
        db.dispose()
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "callback_secret_missing"
    assert accepted.status_code == 202, accepted.text


def test_the_api_document_describes_callback_url_and_the_callback_state(tmp_path: Path) -> None:
    with serve(_settings(tmp_path)) as client:
        document = client.get("/openapi.json").json()
    body = document["paths"]["/batch/jobs"]["post"]["requestBody"]["content"]
    assert "callback_url" in body["multipart/form-data"]["schema"]["properties"]
    states = document["components"]["schemas"]["CallbackState"]["enum"]
    assert set(states) == {
        "waiting",
        "pending",
        "sending",
        "delivered",
        "failed",
        "gone",
        "not_sent",
    }
    job = document["components"]["schemas"]["JobView"]["properties"]["callback"]
    assert "CallbackView" in str(job)
