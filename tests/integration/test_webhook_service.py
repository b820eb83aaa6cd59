"""Job webhooks through real `batchscribe serve` processes (SPEC 13, 14):

- a recording submitted with a callback_url is transcribed by the real engine and its webhook
  keeps being retried while the receiver is down, across a SIGKILL of the server, until the
  restarted server delivers it, signed so an independent verifier accepts it;
- two API processes sharing PostgreSQL send each job's webhook once per scheduled attempt.

Receivers listen on 127.0.0.1, so the servers run with CALLBACK_ALLOW_PRIVATE_NETWORKS=true.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from batchscribe.db import Database
from batchscribe.webhooks.deliveries import DeliveryStatus, DeliveryStore
from testkit.environment import clean_environ
from testkit.server import ServerProcess
from tests.support.audio import speech_fixture
from tests.support.jobs import job_store
from tests.support.webhook_jobs import FALLBACK_SECRET, TENANT, finish_with_callback, wait_for
from tests.support.webhooks import (
    ReceivedWebhook,
    ReceiverReply,
    WebhookReceiver,
    fail_first,
    verify_signature,
)

pytestmark = pytest.mark.slow


def _env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    return {
        **clean_environ({}, tmp_path),
        "DATABASE_URL": database_url,
        "AUTO_MIGRATE": "true",
        "BLOB_STORE": f"file://{tmp_path / 'blobs'}",
        "WEBHOOK_SECRET": FALLBACK_SECRET,
        "CALLBACK_ALLOW_PRIVATE_NETWORKS": "true",
        "CALLBACK_TIMEOUT_SECONDS": "2",
        "LOG_LEVEL": "INFO",
        **extra,
    }


def _job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    answer = client.get(f"/batch/jobs/{job_id}", headers={"X-Tenant-ID": TENANT})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_a_webhook_survives_receiver_outage_and_a_killed_server_and_verifies(
    tmp_path: Path,
) -> None:
    receiver_up = threading.Event()

    def respond(request: ReceivedWebhook) -> ReceiverReply:
        return ReceiverReply() if receiver_up.is_set() else ReceiverReply(status=503)

    env = _env(tmp_path, f"sqlite:///{tmp_path / 'app.db'}", CALLBACK_RETRY_DELAYS="0.5,1")
    with WebhookReceiver(responder=respond) as receiver:
        first = ServerProcess(env, tmp_path / "first.log", args=("--workers", "1")).start()
        try:
            with httpx.Client(base_url=first.url, timeout=30) as client:
                audio = speech_fixture("wav", short=True)
                with audio.open("rb") as upload:
                    accepted = client.post(
                        "/batch/jobs",
                        files={"file": (audio.name, upload, "audio/wav")},
                        data={"callback_url": receiver.url_for("127.0.0.1", "/hooks?t=1")},
                        headers={"X-Tenant-ID": TENANT},
                    )
                assert accepted.status_code == 202, accepted.text
                job_id = accepted.json()["job_id"]
                deadline = time.monotonic() + 180
                while (callback := _job(client, job_id)["callback"])["attempts"] < 2:
                    assert time.monotonic() < deadline, first.log_tail()
                    time.sleep(0.1)
                assert callback["status"] in ("pending", "sending")
        finally:
            first.kill()  # SIGKILL, mid-retry: only the database remains

        receiver_up.set()
        second = ServerProcess(env, tmp_path / "second.log", args=("--workers", "0"))
        with second, httpx.Client(base_url=second.url, timeout=30) as client:
            deadline = time.monotonic() + 120
            while (job := _job(client, job_id))["callback"]["status"] != "delivered":
                assert time.monotonic() < deadline, second.log_tail()
                time.sleep(0.1)

    callback = job["callback"]
    requests = receiver.requests
    assert callback["attempts"] == len(requests) >= 3
    assert [a["status_code"] for a in callback["recent_attempts"]][-1] == 204
    assert {r.headers["webhook-id"] for r in requests} == {callback["webhook_id"]}
    delivered = requests[-1]
    assert delivered.target == "/hooks?t=1"
    assert verify_signature(FALLBACK_SECRET, delivered.headers, delivered.body)
    body = httpx.Response(200, content=delivered.body).json()
    assert body["type"] == "batch.completed"
    assert body["data"]["job_id"] == job_id
    assert body["data"]["result"]["raw_transcript"] == job["result"]["raw_transcript"]
    assert body["data"]["result"]["cleaned_transcript"] == job["result"]["cleaned_transcript"]
    # The attempts before the kill were the first server's, the last one the second's.
    db = Database(env["DATABASE_URL"])
    try:
        store = DeliveryStore(db)
        delivery = store.for_job(job_id)
        assert delivery is not None
        senders = [a.sender for a in store.attempts(delivery.id, 100)]
    finally:
        db.dispose()
    assert len(set(senders)) == 2
    assert senders[-1] != senders[0]
    print(f"attempts: {len(senders)}, by the killed server: {senders.count(senders[0])}")


def test_two_servers_sharing_postgresql_send_each_webhook_once_per_attempt(
    tmp_path: Path, postgres_url: str
) -> None:
    env = _env(tmp_path, postgres_url, CALLBACK_RETRY_DELAYS="0.3")
    jobs_count = 30
    with WebhookReceiver(responder=fail_first(1)) as receiver:
        servers = [
            ServerProcess(env, tmp_path / f"api-{n}.log", args=("--workers", "0")).start()
            for n in range(2)
        ]
        db = Database(postgres_url)
        try:
            store = job_store(db)
            jobs = [
                finish_with_callback(store, receiver.url_for("127.0.0.1"))
                for _ in range(jobs_count)
            ]
            deliveries = DeliveryStore(db)
            finals = [wait_for(deliveries, job.id, timeout=120) for job in jobs]
            senders = Counter(
                a.sender for final in finals for a in deliveries.attempts(final.id, 100)
            )
        finally:
            for server in servers:
                server.terminate(timeout=30)
            db.dispose()
    per_message = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert all(final.status is DeliveryStatus.DELIVERED for final in finals)
    assert all(final.attempts == 2 for final in finals)
    assert per_message == Counter({final.message_id: 2 for final in finals})
    assert sum(senders.values()) == 2 * jobs_count
    assert len(senders) <= 2
    print(f"attempts per server: {sorted(senders.values())}")
