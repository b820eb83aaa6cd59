"""The webhook sender: a background thread that attempts due deliveries.

It sleeps on a `threading.Event` and is woken the moment a job ends (the "job finished" signal,
from this server's workers or, through PostgreSQL notifications, from other machines), so a
healthy receiver hears of a job within milliseconds. A poll (every `poll_interval` seconds)
picks up retries that came due, leases that expired and deliveries no signal announced.

Each due delivery is leased (`DeliveryStore.claim`) and attempted once in a small thread pool,
so one slow receiver (up to CALLBACK_TIMEOUT_SECONDS per attempt) does not hold up the others.
An attempt signs the stored body with the tenant's current secrets (both during a rotation's
overlap), sends it with `send` (public addresses only, no redirects, bounded time), records the
attempt, and moves the delivery on:

    2xx -> delivered      410 -> gone      a URL that no longer passes -> failed
    anything else -> pending at the schedule's next time, or failed once the window is over

A thread rather than asyncio: `send` blocks, and the sender keeps running whatever the event
loop of the HTTP layer is doing (and in processes without one).
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpcore

from batchscribe.webhooks import metrics
from batchscribe.webhooks.deliveries import (
    AttemptRecord,
    Delivery,
    DeliveryStatus,
    DeliveryStore,
)
from batchscribe.webhooks.exceptions import (
    CallbackSecretMissing,
    DeliveryStoreError,
    SecretUnreadable,
)
from batchscribe.webhooks.schedule import RetrySchedule
from batchscribe.webhooks.sender import DeliveryResult, Outcome, Resolver, send
from batchscribe.webhooks.signing import sign
from batchscribe.webhooks.tenant_secrets import TenantSecrets

logger = logging.getLogger(__name__)

DEFAULT_POLL_SECONDS = 1.0
DEFAULT_CONCURRENCY = 8
#: Outcome recorded for an attempt that was not made because nothing could sign it.
NO_SECRET = "no_secret"  # noqa: S105 (an outcome's name, not a secret)


def default_owner() -> str:
    """A lease owner unique to this process: host, pid and a random part."""
    return f"webhooks-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class Decision:
    """Where one attempt leaves its delivery."""

    status: DeliveryStatus
    next_attempt_at: float | None = None
    error: str | None = None


class WebhookDispatcher:
    """Attempts due deliveries from a daemon thread; `start()`, `wake()`, `stop()`.

    `resolver`, `ssl_context` and `network_backend` default to the system's resolver, CA
    bundle and sockets (tests pass their own, as they do to `send`). The lease covers one
    attempt (`timeout_seconds`) and its recording with room to spare, so a delivery is never
    attempted by two senders at once unless one of them died.
    """

    def __init__(
        self,
        store: DeliveryStore,
        secrets: TenantSecrets,
        *,
        schedule: RetrySchedule | None = None,
        timeout_seconds: float = 10.0,
        allow_private: bool = False,
        concurrency: int = DEFAULT_CONCURRENCY,
        poll_interval: float = DEFAULT_POLL_SECONDS,
        owner: str | None = None,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        network_backend: httpcore.NetworkBackend | None = None,
    ) -> None:
        self.store = store
        self.secrets = secrets
        self.schedule = schedule or RetrySchedule()
        self.timeout_seconds = timeout_seconds
        self.allow_private = allow_private
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.owner = owner or default_owner()
        self.lease_seconds = timeout_seconds + 30.0
        self.resolver = resolver
        self.ssl_context = ssl_context
        self.network_backend = network_backend
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="webhook-send")
        self._thread = threading.Thread(target=self._run, name="webhook-sender", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Tell the sender a delivery may be due: it looks at once."""
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Start no new attempt; let those in flight finish (each within the attempt time
        limit), then give back this sender's leases."""
        if self._thread is None:
            return
        self._stopping.set()
        self._wake.set()
        self._thread.join(self.timeout_seconds + 15.0)
        if self._thread.is_alive():
            logger.error("The webhook sender did not stop in time; its leases will expire")
        self._thread = None

    # -- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        logger.info("Webhook sender started", extra={"webhook_sender": self.owner})
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                claimed = self._claim_some()
                if claimed == 0:
                    self._wake.wait(self._sleep_for())
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            try:
                released = self.store.release(self.owner)
                if released:
                    logger.info("Released %d webhook deliveries for other senders", released)
            except DeliveryStoreError:
                logger.exception("Could not release the webhook leases; they will expire")
            logger.info("Webhook sender stopped", extra={"webhook_sender": self.owner})

    def _free(self) -> int:
        with self._lock:
            return self.concurrency - self._in_flight

    def _claim_some(self) -> int:
        """Lease as many due deliveries as there are free slots and start their attempts."""
        free = self._free()
        if free <= 0:
            return 0
        try:
            if not self.store.has_due():
                return 0
            claimed = self.store.claim(self.owner, free, self.lease_seconds)
        except DeliveryStoreError as exc:
            logger.warning("could not claim webhook deliveries: %s", exc)
            return 0
        for delivery in claimed:
            with self._lock:
                self._in_flight += 1
            assert self._pool is not None
            self._pool.submit(self._attempt_in_pool, delivery)
        return len(claimed)

    def _sleep_for(self) -> float:
        """Until the next retry or lease expiry, at most the poll interval (a finished attempt
        or a new delivery wakes the thread sooner)."""
        if self._free() <= 0:
            return self.poll_interval
        try:
            due = self.store.next_due_at()
        except DeliveryStoreError:
            return self.poll_interval
        if due is None:
            return self.poll_interval
        return min(max(due - time.time(), 0.0), self.poll_interval)

    def _attempt_in_pool(self, delivery: Delivery) -> None:
        try:
            self.attempt(delivery)
        except Exception:
            # A bug or a database outage must not kill the pool thread; the lease expires and
            # the delivery is attempted again.
            logger.exception(
                "A webhook attempt could not be completed; it will be tried again",
                extra={"interaction_id": delivery.job_id, "webhook_id": delivery.message_id},
            )
        finally:
            with self._lock:
                self._in_flight -= 1
            self._wake.set()

    # -- one attempt -------------------------------------------------------------------------

    def attempt(self, delivery: Delivery) -> DeliveryStatus:
        """Make one attempt of a delivery this sender claimed, and record it."""
        started = time.time()
        outcome: str
        try:
            keys = self.secrets.for_tenant(delivery.tenant_id)
        except (CallbackSecretMissing, SecretUnreadable) as exc:
            logger.error(
                "A webhook could not be signed: %s",
                exc,
                extra={"interaction_id": delivery.job_id, "webhook_id": delivery.message_id},
            )
            result = DeliveryResult(Outcome.RETRY, error=str(exc))
            outcome = NO_SECRET
        else:
            assert delivery.payload is not None, "redacted deliveries are never claimed"
            body = delivery.payload.encode("utf-8")
            headers = sign(delivery.message_id, int(started), body, keys)
            result = send(
                delivery.url,
                body,
                headers,
                timeout=self.timeout_seconds,
                allow_private=self.allow_private,
                resolver=self.resolver,
                ssl_context=self.ssl_context,
                network_backend=self.network_backend,
            )
            outcome = result.outcome.value
        decision = self.decide(delivery, result)
        self.store.record(
            self.owner,
            AttemptRecord(
                delivery=delivery,
                started_at=started,
                duration_ms=(time.time() - started) * 1000,
                outcome=outcome,
                status_code=result.status_code,
                error=decision.error,
                status=decision.status,
                next_attempt_at=decision.next_attempt_at,
            ),
        )
        metrics.WEBHOOK_ATTEMPTS.labels(outcome=outcome).inc()
        self._log(delivery, decision)
        return decision.status

    def decide(self, delivery: Delivery, result: DeliveryResult) -> Decision:
        """The delivery's next state after `result` (its `attempts` already counts this one)."""
        if result.outcome is Outcome.DELIVERED:
            return Decision(DeliveryStatus.DELIVERED)
        if result.outcome is Outcome.GONE:
            return Decision(DeliveryStatus.GONE, error=result.error)
        if result.outcome is Outcome.INVALID_URL:
            return Decision(DeliveryStatus.FAILED, error=result.error)
        now = time.time()
        following = self.schedule.next_attempt_at(
            delivery.attempts, now, delivery.give_up_at, result.retry_after_seconds
        )
        if following is None:
            return Decision(
                DeliveryStatus.FAILED,
                error=f"gave up after {delivery.attempts} attempts over the retry window; the "
                f"last: {result.error or 'no answer'}",
            )
        return Decision(DeliveryStatus.PENDING, next_attempt_at=following, error=result.error)

    def _log(self, delivery: Delivery, decision: Decision) -> None:
        extra = {
            "interaction_id": delivery.job_id,
            "webhook_id": delivery.message_id,
            "attempt": delivery.attempts,
            "delivery_status": str(decision.status),
        }
        if decision.status is DeliveryStatus.PENDING:
            retry_in = (decision.next_attempt_at or time.time()) - time.time()
            logger.warning(
                "Webhook not delivered (%s); next attempt in %.1f s",
                decision.error,
                retry_in,
                extra={**extra, "retry_in_seconds": round(retry_in, 3)},
            )
            return
        metrics.WEBHOOK_FINISHED.labels(status=str(decision.status)).inc()
        if decision.status is DeliveryStatus.DELIVERED:
            logger.info("Webhook delivered", extra=extra)
        elif decision.status is DeliveryStatus.GONE:
            logger.warning("Webhook receiver answered 410 Gone; not retrying", extra=extra)
        else:
            logger.error("Webhook delivery failed: %s", decision.error, extra=extra)
