"""Job webhooks end to end in one process, on SQLite and PostgreSQL: a job that ends with a
callback_url has its delivery written with it; the sender signs it so an independent verifier
accepts it, retries it through a receiver's failures (500, timeout, refused connection) on the
stored schedule until it is delivered, stops at 410 and at the end of the window, resumes after
a restart, signs with both secrets during a rotation, and never reaches an address that is not
public. Two senders on one database attempt each delivery once per scheduled attempt.

The receivers listen on 127.0.0.1, so senders run with CALLBACK_ALLOW_PRIVATE_NETWORKS, except
where the address rule itself is under test.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook

from batchscribe.db import Database
from batchscribe.db.tables import tenant_webhook_secrets, webhook_deliveries
from batchscribe.infra.emulator import free_port
from batchscribe.jobs.store import JobStore
from batchscribe.services.runtime import ServiceRuntime
from batchscribe.webhooks.deliveries import DeliveryStatus, DeliveryStore
from batchscribe.webhooks.tenant_secrets import TenantSecrets
from tests.support.jobs import job_store
from tests.support.webhook_jobs import (
    FALLBACK_SECRET,
    TENANT,
    finish_with_callback,
    sender,
    wait_for,
    webhook_settings,
)
from tests.support.webhooks import (
    ReceiverReply,
    WebhookReceiver,
    fail_first,
    now,
    verify_signature,
)

SPOKEN = "the quarterly numbers look strong"


@pytest.fixture
def store(database: Database) -> JobStore:
    return job_store(database)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def _attempt_outcomes(deliveries: DeliveryStore, job_id: str) -> list[str]:
    delivery = deliveries.for_job(job_id)
    assert delivery is not None
    return [attempt.outcome for attempt in deliveries.attempts(delivery.id, 100)]


def test_a_completed_job_delivers_a_webhook_an_independent_verifier_accepts(
    database: Database, store: JobStore, receiver: WebhookReceiver
) -> None:
    url = receiver.url_for("127.0.0.1", "/hooks/batchscribe?token=abc")
    job = finish_with_callback(store, url, text=SPOKEN, metadata={"meeting": "weekly"})
    dispatcher = sender(database)
    dispatcher.start()
    try:
        delivery = wait_for(dispatcher.store, job.id)
    finally:
        dispatcher.stop()

    assert delivery.status is DeliveryStatus.DELIVERED
    assert (delivery.attempts, delivery.last_status_code) == (1, 204)
    [got] = receiver.requests
    assert got.target == "/hooks/batchscribe?token=abc"
    assert got.headers["webhook-id"] == delivery.message_id
    assert verify_signature(FALLBACK_SECRET, got.headers, got.body, now=now())
    body = Webhook(FALLBACK_SECRET).verify(got.body, got.headers)  # the reference library too
    assert body["type"] == "batch.completed"
    data = body["data"]
    assert (data["job_id"], data["tenant_id"], data["status"]) == (job.id, TENANT, "completed")
    assert data["metadata"] == {"meeting": "weekly"}
    assert data["result"]["raw_transcript"] == f"SPEAKER_0: {SPOKEN}"
    assert data["result"]["segments"][0]["text"] == SPOKEN
    assert data["result_url"] is None
    assert data["error"] is None
    assert got.body.decode() == delivery.payload  # the stored bytes, exactly


def test_a_failed_job_delivers_its_error_and_no_transcripts(
    database: Database, store: JobStore, receiver: WebhookReceiver
) -> None:
    job = finish_with_callback(store, receiver.url_for("127.0.0.1"), fail="invalid_audio")
    dispatcher = sender(database)
    dispatcher.start()
    try:
        wait_for(dispatcher.store, job.id)
    finally:
        dispatcher.stop()
    [got] = receiver.requests
    body = json.loads(got.body)
    assert body["type"] == "batch.failed"
    assert body["data"]["status"] == "failed"
    assert body["data"]["error"] == {"code": "invalid_audio", "message": "The file is not audio."}
    assert body["data"]["result"] is None
    assert body["data"]["result_url"] is None


def test_a_large_result_is_a_result_url_and_small_bodies_stay_small(
    database: Database, receiver: WebhookReceiver
) -> None:
    store = job_store(database, callback_inline_max_bytes=2048)
    job = finish_with_callback(store, receiver.url_for("127.0.0.1"), text="word " * 1000)
    delivery = DeliveryStore(database).for_job(job.id)
    assert delivery is not None
    assert delivery.payload is not None
    data = json.loads(delivery.payload)["data"]
    assert data["result"] is None
    assert data["result_url"] == job.status_url == f"http://batchscribe.test/batch/jobs/{job.id}"
    assert "word word" not in delivery.payload
    assert delivery.payload_bytes <= 2048


def test_jobs_without_a_callback_or_cancelled_send_nothing(
    database: Database, store: JobStore, receiver: WebhookReceiver
) -> None:
    from tests.support.jobs import completed_job, new_job

    plain = completed_job(store, tenant=TENANT)
    cancelled, _ = store.create(new_job(tenant=TENANT, callback_url=receiver.url_for("127.0.0.1")))
    store.cancel(cancelled.id)
    deliveries = DeliveryStore(database)
    assert deliveries.for_job(plain.id) is None
    assert deliveries.for_job(cancelled.id) is None
    assert not deliveries.has_due()


def test_retries_through_a_refused_connection_a_500_and_a_timeout_until_delivered(
    database: Database, store: JobStore
) -> None:
    port = free_port()  # nothing listens here yet: connections are refused
    job = finish_with_callback(store, f"http://127.0.0.1:{port}/hooks")
    dispatcher = sender(database, delays=(0.2,), timeout=0.5)
    dispatcher.start()
    try:
        wait_for(dispatcher.store, job.id, [DeliveryStatus.PENDING], attempts=1)
        with WebhookReceiver(port=port) as receiver:
            receiver.queue(ReceiverReply(status=500), ReceiverReply(delay=2.0))  # then 204
            delivery = wait_for(dispatcher.store, job.id)
    finally:
        dispatcher.stop()

    assert delivery.status is DeliveryStatus.DELIVERED
    outcomes = _attempt_outcomes(dispatcher.store, job.id)
    refused = outcomes.count("retry") - 2  # the 500 and the timeout are retries too
    assert refused >= 1
    assert outcomes == ["retry"] * (refused + 2) + ["delivered"]
    attempts = dispatcher.store.attempts(delivery.id, 100)
    assert "could not connect" in (attempts[0].error or "")
    assert attempts[-3].status_code == 500
    assert "no answer within 0.5 s" in (attempts[-2].error or "")
    # The receiver saw the same message three times, each signed for its own attempt.
    assert [r.headers["webhook-id"] for r in receiver.requests] == [delivery.message_id] * 3
    assert all(verify_signature(FALLBACK_SECRET, r.headers, r.body) for r in receiver.requests)
    assert delivery.attempts == len(outcomes)


def test_410_gone_stops_the_retries(
    database: Database, store: JobStore, receiver: WebhookReceiver
) -> None:
    receiver.queue(ReceiverReply(status=410))
    job = finish_with_callback(store, receiver.url_for("127.0.0.1"))
    dispatcher = sender(database)
    dispatcher.start()
    try:
        delivery = wait_for(dispatcher.store, job.id)
    finally:
        dispatcher.stop()
    assert delivery.status is DeliveryStatus.GONE
    assert delivery.last_status_code == 410
    assert len(receiver.requests) == 1
    assert dispatcher.store.next_due_at() is None  # nothing left to try


def test_after_the_window_the_delivery_is_failed_with_the_last_error(
    database: Database, receiver: WebhookReceiver
) -> None:
    receiver.responder = lambda request: ReceiverReply(status=503)
    store = job_store(database, callback_window_seconds=0.6)
    job = finish_with_callback(store, receiver.url_for("127.0.0.1"))
    dispatcher = sender(database, delays=(0.1,), window=0.6)
    dispatcher.start()
    try:
        delivery = wait_for(dispatcher.store, job.id)
    finally:
        dispatcher.stop()
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.attempts >= 3
    assert delivery.last_error is not None
    assert delivery.last_error.startswith(f"gave up after {delivery.attempts} attempts")
    assert "the receiver answered 503" in delivery.last_error
    # Retried until the window ended: no room was left for another attempt within it.
    assert (delivery.last_attempt_at or 0) + 0.1 >= delivery.give_up_at
    assert len(receiver.requests) == delivery.attempts


def test_a_restarted_sender_resumes_a_delivery_mid_retry(
    database_url: str, receiver: WebhookReceiver
) -> None:
    receiver.queue(ReceiverReply(status=500))
    first_db = Database(database_url)
    store = job_store(first_db)
    job = finish_with_callback(store, receiver.url_for("127.0.0.1"))
    first = sender(first_db, delays=(0.5,))
    first.start()
    wait_for(first.store, job.id, [DeliveryStatus.PENDING], attempts=1)
    first.stop()
    first_db.dispose()  # the process is gone; only the database remains

    second_db = Database(database_url)
    second = sender(second_db, delays=(0.5,))
    second.start()
    try:
        delivery = wait_for(second.store, job.id)
    finally:
        second.stop()
        attempts = second.store.attempts(delivery.id)
        second_db.dispose()
    assert delivery.status is DeliveryStatus.DELIVERED
    assert [a.sender for a in attempts] == [first.owner, second.owner]
    assert [a.outcome for a in attempts] == ["retry", "delivered"]
    assert {r.headers["webhook-id"] for r in receiver.requests} == {delivery.message_id}


def test_during_a_rotation_both_secrets_sign_and_afterwards_only_the_new_one(
    database: Database, store: JobStore, receiver: WebhookReceiver
) -> None:
    settings = webhook_settings(auth_mode="api_key", webhook_secret=None)
    secrets = TenantSecrets.from_settings(database, settings)
    old = secrets.rotate(TENANT).encoded
    new = secrets.rotate(TENANT).encoded
    dispatcher = sender(database, settings=settings)
    dispatcher.start()
    try:
        during = finish_with_callback(store, receiver.url_for("127.0.0.1"))
        wait_for(dispatcher.store, during.id)
        # 25 hours later: the overlap is over.
        with database.transaction() as conn:
            conn.execute(
                sa.update(tenant_webhook_secrets).values(rotated_at=time.time() - 25 * 3600)
            )
        after = finish_with_callback(store, receiver.url_for("127.0.0.1"))
        wait_for(dispatcher.store, after.id)
    finally:
        dispatcher.stop()
    first, second = receiver.requests
    assert len(first.headers["webhook-signature"].split(" ")) == 2
    assert verify_signature(old, first.headers, first.body)
    assert verify_signature(new, first.headers, first.body)
    assert len(second.headers["webhook-signature"].split(" ")) == 1
    assert verify_signature(new, second.headers, second.body)
    assert not verify_signature(old, second.headers, second.body)
    assert not verify_signature(FALLBACK_SECRET, first.headers, first.body)


def test_without_a_tenant_secret_in_api_key_mode_nothing_is_sent_until_one_exists(
    database: Database, store: JobStore, receiver: WebhookReceiver
) -> None:
    settings = webhook_settings(auth_mode="api_key")  # WEBHOOK_SECRET is not a fallback here
    job = finish_with_callback(store, receiver.url_for("127.0.0.1"))
    dispatcher = sender(database, settings=settings, delays=(0.2,))
    dispatcher.start()
    try:
        waiting = wait_for(dispatcher.store, job.id, [DeliveryStatus.PENDING], attempts=1)
        assert receiver.requests == []
        assert "rotate-secret --tenant" in (waiting.last_error or "")
        secret = TenantSecrets.from_settings(database, settings).rotate(TENANT).encoded
        delivery = wait_for(dispatcher.store, job.id)
    finally:
        dispatcher.stop()
    assert delivery.status is DeliveryStatus.DELIVERED
    assert _attempt_outcomes(dispatcher.store, job.id)[0] == "no_secret"
    [got] = receiver.requests
    assert verify_signature(secret, got.headers, got.body)
    assert not verify_signature(FALLBACK_SECRET, got.headers, got.body)


def test_a_host_that_resolves_to_a_private_address_is_never_contacted(
    database: Database, receiver: WebhookReceiver
) -> None:
    settings = webhook_settings(callback_allow_private_networks=False)
    store = job_store(database, callback_window_seconds=0.5)
    job = finish_with_callback(store, f"https://hooks.example.com:{receiver.port}/hooks")
    dispatcher = sender(
        database, settings=settings, delays=(0.05,), window=0.5, resolver=receiver.resolver
    )
    dispatcher.start()
    try:
        delivery = wait_for(dispatcher.store, job.id)
    finally:
        dispatcher.stop()
    assert delivery.status is DeliveryStatus.FAILED
    assert receiver.requests == []
    assert set(_attempt_outcomes(dispatcher.store, job.id)) == {"refused_address"}
    assert "not public" in (delivery.last_error or "")
    assert "127.0.0.1" not in (delivery.last_error or "")  # no oracle for internal DNS


def test_two_senders_attempt_each_delivery_once_per_scheduled_attempt(
    database_url: str,
) -> None:
    with WebhookReceiver(responder=fail_first(1)) as receiver:
        dbs = [Database(database_url) for _ in range(3)]
        store = job_store(dbs[0])
        senders = [sender(db, delays=(0.1,)) for db in dbs[1:]]
        for each in senders:
            each.start()
        try:
            jobs = [finish_with_callback(store, receiver.url_for("127.0.0.1")) for _ in range(24)]
            for each in senders:
                each.wake()
            finals = [wait_for(senders[0].store, job.id) for job in jobs]
        finally:
            threads = [threading.Thread(target=each.stop) for each in senders]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        per_message = Counter(r.headers["webhook-id"] for r in receiver.requests)
        by_sender = Counter(
            a.sender for final in finals for a in senders[0].store.attempts(final.id)
        )
        for db in dbs:
            db.dispose()
    assert all(final.status is DeliveryStatus.DELIVERED for final in finals)
    assert all(final.attempts == 2 for final in finals)
    # Exactly two requests per message: the failed first attempt and the delivered retry.
    assert per_message == Counter({final.message_id: 2 for final in finals})
    assert sum(by_sender.values()) == 48
    print(f"attempts per sender: {sorted(by_sender.values())}")  # the split, for the record
    assert set(by_sender) <= {each.owner for each in senders}


def test_bodies_go_after_the_retention_period_and_the_state_stays(
    database: Database, store: JobStore, receiver: WebhookReceiver
) -> None:
    old = finish_with_callback(store, receiver.url_for("127.0.0.1"), text=SPOKEN)
    waiting = finish_with_callback(store, receiver.url_for("127.0.0.1"), text=SPOKEN)
    deliveries = DeliveryStore(database)
    dispatcher = sender(database)
    dispatcher.start()
    try:
        wait_for(deliveries, old.id)
        wait_for(deliveries, waiting.id)
    finally:
        dispatcher.stop()
    eight_days_ago = time.time() - 8 * 86400
    with database.transaction() as conn:
        conn.execute(
            sa.update(webhook_deliveries)
            .where(webhook_deliveries.c.job_id == old.id)
            .values(updated_at=eight_days_ago)
        )
    assert deliveries.redact(7 * 86400) == 1
    expired, recent = deliveries.for_job(old.id), deliveries.for_job(waiting.id)
    assert expired is not None
    assert recent is not None
    assert expired.payload is None
    assert expired.status is DeliveryStatus.DELIVERED  # what happened stays visible
    assert [a.outcome for a in deliveries.attempts(expired.id)] == ["delivered"]
    assert recent.payload is not None
    assert SPOKEN in recent.payload
    # A body that is gone cannot be sent again.
    assert deliveries.replay(ids=[expired.id], window_seconds=60) == []
    assert [d.id for d in deliveries.replay(ids=[recent.id], window_seconds=60)] == [recent.id]


def test_the_running_service_drops_expired_bodies_on_its_own(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    settings = webhook_settings(
        database_url=f"sqlite:///{tmp_path / 'app.db'}",
        blob_store=f"file://{tmp_path / 'blobs'}",
        retention_days=1,
    )
    runtime = ServiceRuntime(settings, workers=0, with_relay=True)
    runtime.start()
    try:
        assert runtime.db is not None
        job = finish_with_callback(job_store(runtime.db), receiver.url_for("127.0.0.1"))
        deliveries = DeliveryStore(runtime.db)
        wait_for(deliveries, job.id)  # delivered by the runtime's own sender
        with runtime.db.transaction() as conn:
            conn.execute(sa.update(webhook_deliveries).values(updated_at=time.time() - 2 * 86400))
        deadline = time.monotonic() + 60
        while (delivery := deliveries.for_job(job.id)) is not None and delivery.payload:
            assert time.monotonic() < deadline, "the janitor never dropped the body"
            time.sleep(0.2)
    finally:
        runtime.stop()
    assert delivery is not None
    assert delivery.status is DeliveryStatus.DELIVERED
