"""Helpers for tests of job webhooks end to end inside one process: jobs that end with a
callback_url (through the real job store and its hooks), senders on the same database, and
waiting for a delivery to reach a state."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from batchscribe.config import Settings
from batchscribe.db import Database
from batchscribe.jobs.models import Job
from batchscribe.jobs.store import JobStore
from batchscribe.webhooks.deliveries import Delivery, DeliveryStatus, DeliveryStore
from batchscribe.webhooks.dispatcher import WebhookDispatcher
from batchscribe.webhooks.schedule import RetrySchedule
from batchscribe.webhooks.tenant_secrets import TenantSecrets
from tests.support.jobs import new_job, result_of

#: The WEBHOOK_SECRET of these tests (none mode: it signs every tenant's webhooks).
FALLBACK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TENANT = "6f1c2a9e-3b7d-4c1e-9a8f-2d5b7c9e1f03"


def webhook_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "auth_mode": "none",
        "webhook_secret": FALLBACK_SECRET,
        "callback_allow_private_networks": True,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def sender(
    db: Database,
    *,
    delays: Iterable[float] = (0.05,),
    window: float = 60.0,
    timeout: float = 2.0,
    settings: Settings | None = None,
    **options: Any,
) -> WebhookDispatcher:
    """A sender on `db` with a short schedule (no jitter) and a fast poll."""
    settings = settings or webhook_settings()
    return WebhookDispatcher(
        DeliveryStore(db),
        TenantSecrets.from_settings(db, settings),
        schedule=RetrySchedule(tuple(delays), window, jitter=0.0),
        timeout_seconds=timeout,
        allow_private=settings.callback_allow_private_networks,
        poll_interval=0.05,
        **options,
    )


def finish_with_callback(
    store: JobStore,
    url: str,
    *,
    text: str = "hello there",
    fail: str | None = None,
    tenant: str = TENANT,
    **job: Any,
) -> Job:
    """Create a job with `callback_url`, claim it, and complete it (or fail it with the code
    `fail`): its delivery is written with it. No other job may be queued."""
    created, _ = store.create(new_job(tenant=tenant, callback_url=url, **job))
    owner = f"test-worker-{created.id[:8]}"
    claimed = store.claim(owner, 30)
    assert claimed is not None
    assert claimed.id == created.id, "another job was queued"
    if fail is not None:
        failed = store.fail(created.id, owner, fail, "The file is not audio.")
        assert failed is not None
        return failed
    return store.complete(created.id, owner, result_of(text))


def wait_for(
    store: DeliveryStore,
    job_id: str,
    statuses: Iterable[DeliveryStatus] = (
        DeliveryStatus.DELIVERED,
        DeliveryStatus.FAILED,
        DeliveryStatus.GONE,
    ),
    *,
    attempts: int = 0,
    timeout: float = 60.0,
) -> Delivery:
    """The job's delivery once it is in one of `statuses` with at least `attempts` attempts
    (the timeout only keeps a broken test from hanging)."""
    wanted = set(statuses)
    deadline = time.monotonic() + timeout
    while True:
        delivery = store.for_job(job_id)
        if delivery is not None and delivery.status in wanted and delivery.attempts >= attempts:
            return delivery
        if time.monotonic() > deadline:
            raise AssertionError(f"delivery of {job_id} never reached {wanted}: {delivery}")
        time.sleep(0.02)
