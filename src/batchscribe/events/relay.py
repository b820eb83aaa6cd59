"""The relay: a background thread that moves outbox rows to EventBridge.

It sleeps on a `threading.Event` and is woken by `wake()` the moment the request path stores a
row, so a healthy EventBridge sees the event within milliseconds. A slow poll (every
`poll_interval` seconds) also picks up rows written by other processes, retries that came due
and leases that expired. Each step claims up to `concurrency` x 10 rows in one transaction, sends
them as PutEvents calls of 10 (the most a call takes), `concurrency` calls at once, records every
outcome in one transaction, and repeats until nothing is due. On AWS a call costs a network round
trip, so calls at once multiply what one relay sends; the database work per event is divided by
the batch.

Failures: retryable codes (`ThrottlingException`, `InternalFailure`, 5xx, network errors; the
AWS boundary's one table) put the row back as pending with its next attempt time stored in the
outbox (`redelivery_delay`: exponential with jitter, capped at `RELAY_MAX_BACKOFF_SECONDS`,
forever); a failure of the whole call also pauses the relay for the same delay so a dead endpoint
is not hammered. Other codes mark the row `failed` with its code. This is a delivery schedule
that survives restarts, not a request retry: each PutEvents call itself is made once.
A thread rather than an asyncio task: boto3 is blocking, and the relay must keep running (and
draining on shutdown) regardless of what the event loop is doing.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from batchscribe.aws.errors import is_retryable_code
from batchscribe.events import metrics
from batchscribe.events.exceptions import EventsError, OutboxError, PublishError
from batchscribe.events.outbox import Outbox, OutboxRow, OutboxStatus, Outcome
from batchscribe.events.publisher import MAX_ENTRIES_PER_CALL, AWSEventPublisher

PENDING, SENT, FAILED = OutboxStatus.PENDING, OutboxStatus.SENT, OutboxStatus.FAILED

logger = logging.getLogger(__name__)

REDELIVERY_BASE_SECONDS = 0.5
DEFAULT_POLL_SECONDS = 1.0
DEFAULT_CONCURRENCY = 4
PURGE_INTERVAL_SECONDS = 3600.0


def redelivery_delay(attempt: int, cap: float, base: float = REDELIVERY_BASE_SECONDS) -> float:
    """Seconds until an event that failed `attempt` times (1-based) is offered to EventBridge
    again: exponential, capped at `cap`, with "equal jitter".

    This is the outbox's stored schedule (the row's `next_attempt_at`, kept across restarts),
    not a request retry: each PutEvents call is made once. Half the delay is fixed so it keeps
    growing; the other half is random so relays that failed together do not retry together.
    """
    delay = min(cap, base * 2.0 ** min(max(attempt - 1, 0), 32))
    return float(delay / 2 + random.uniform(0, delay / 2))


def _detail_timestamp(row: OutboxRow) -> str | None:
    """The event's own `timestamp` (for the success log line), if the detail has one."""
    try:
        value = json.loads(row.entry.get("Detail") or "{}").get("timestamp")
    except (ValueError, AttributeError):
        return None
    return str(value) if value is not None else None


@dataclass
class DrainResult:
    """What a synchronous drain did: rows sent, failed terminally, and put back for retry."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    # A call failed as a whole with a retryable error (EventBridge unreachable or throttling).
    unreachable: bool = False

    def add(self, other: DrainResult) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.retried += other.retried
        self.unreachable = self.unreachable or other.unreachable


class OutboxRelay:
    """Publishes outbox rows in batches from a daemon thread; `start()`, `wake()`, `stop()`.

    `max_backoff_seconds` (`RELAY_MAX_BACKOFF_SECONDS`) caps `redelivery_delay`;
    `concurrency` (`RELAY_CONCURRENCY`) is how many PutEvents calls one step makes at once.
    """

    def __init__(
        self,
        outbox: Outbox,
        publisher: AWSEventPublisher,
        *,
        lease_seconds: float = 30.0,
        max_backoff_seconds: float = 300.0,
        retention_seconds: float = 7 * 86400.0,
        poll_interval: float = DEFAULT_POLL_SECONDS,
        owner: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        if concurrency < 1:
            raise ValueError("the relay makes at least one call at a time")
        self.outbox = outbox
        self.publisher = publisher
        self.lease_seconds = lease_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.retention_seconds = retention_seconds
        self.poll_interval = poll_interval
        self.owner = owner or f"relay-{uuid.uuid4().hex[:12]}"
        self.concurrency = concurrency
        self.claim_size = MAX_ENTRIES_PER_CALL * concurrency
        self._calls: ThreadPoolExecutor | None = None
        self._failures_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._drain_deadline = 0.0
        self._thread: threading.Thread | None = None
        self._paused_until = 0.0
        self._call_failures = 0
        self._next_purge = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Tell the relay a row is waiting: it claims and sends at once."""
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, grace_seconds: float) -> None:
        """Keep sending due rows for up to `grace_seconds`, then stop and give back leases."""
        if self._thread is None:
            return
        self._drain_deadline = time.monotonic() + grace_seconds
        self._stopping.set()
        self._wake.set()
        # The last PutEvents call may outlive the deadline by at most the client's timeouts.
        self._thread.join(grace_seconds + 15.0)
        if self._thread.is_alive():
            logger.error("The outbox relay did not stop in time; its leases will expire")
        self._thread = None
        self._close_calls()

    def _close_calls(self) -> None:
        if self._calls is not None:
            self._calls.shutdown(wait=True)
            self._calls = None

    # -- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        logger.info("Outbox relay started", extra={"relay_owner": self.owner})
        try:
            while not self._stopping.is_set():
                self._maybe_purge()
                sent_something = self._step()
                if not sent_something:
                    self._wait(self._sleep_for())
            self._drain()
        finally:
            try:
                released = self.outbox.release(self.owner)
                if released:
                    logger.info("Released %d leased events for other relays", released)
            except OutboxError:
                logger.exception("Could not release the relay's leases; they will expire")
            logger.info("Outbox relay stopped", extra={"relay_owner": self.owner})

    def _drain(self) -> None:
        """After stop(): send what is due until nothing is, or the grace period ends."""
        while time.monotonic() < self._drain_deadline:
            if self._step():
                continue
            try:
                due = self.outbox.next_due_at()
            except OutboxError:
                return
            left = self._drain_deadline - time.monotonic()
            if due is None or not self.publisher.enabled:
                return
            wait = max(due - time.time(), self._paused_until - time.monotonic(), 0.0)
            if wait >= left:
                return
            time.sleep(min(wait, left) + 0.01)
        pending = self._pending_count()
        if pending:
            logger.warning(
                "Shutdown grace period over with %d events still pending; they are sent on the "
                "next start",
                pending,
            )

    def _pending_count(self) -> int:
        try:
            counts = self.outbox.counts()
        except OutboxError:
            return -1
        return counts[PENDING] + counts[OutboxStatus.SENDING]

    def _wait(self, seconds: float) -> None:
        self._wake.wait(max(seconds, 0.0))
        self._wake.clear()

    def _sleep_for(self) -> float:
        """Until the next retry, lease expiry or pause end, at most the poll interval."""
        now_mono = time.monotonic()
        if not self.publisher.enabled:
            return self.poll_interval
        if self._paused_until > now_mono:
            return min(self._paused_until - now_mono, self.poll_interval)
        try:
            due = self.outbox.next_due_at()
        except OutboxError:
            return self.poll_interval
        if due is None:
            return self.poll_interval
        return min(max(due - time.time(), 0.0), self.poll_interval)

    def _maybe_purge(self) -> None:
        now = time.monotonic()
        if now < self._next_purge:
            return
        self._next_purge = now + PURGE_INTERVAL_SECONDS
        try:
            purged = self.outbox.purge(self.retention_seconds)
        except OutboxError:
            logger.exception("Purging old events from the outbox failed")
            return
        if purged:
            logger.info("Purged %d events older than the retention period", purged)

    def _hold_while_disabled(self) -> None:
        """Publishing is disabled (no credentials): keep new events as `held` for a replay."""
        try:
            held = self.outbox.hold_pending()
        except OutboxError:
            logger.exception("Holding events while publishing is disabled failed")
            return
        for interaction_id in held:
            logger.warning(
                "Event held: publishing is disabled (%s); run `batchscribe outbox replay` once "
                "AWS is configured",
                self.publisher.disabled_reason,
                extra={"interaction_id": interaction_id, "event_status": "held"},
            )

    def _step(self) -> bool:
        """Claim and send one batch. True when a batch was attempted (more may be due)."""
        if not self.publisher.enabled:
            self._hold_while_disabled()
            return False
        if time.monotonic() < self._paused_until:
            return False
        try:
            rows = self.outbox.claim(self.owner, self.claim_size, self.lease_seconds)
        except OutboxError:
            logger.exception("Claiming events from the outbox failed")
            self._paused_until = time.monotonic() + self.poll_interval
            return False
        if not rows:
            return False
        try:
            self.send_batch(rows)
        except Exception:
            # A bug must not kill the thread: log it, give the rows back, slow down.
            logger.exception("The outbox relay failed on a batch; retrying later")
            self._paused_until = time.monotonic() + self.poll_interval
            try:
                self.outbox.release(self.owner)
            except EventsError:
                logger.exception("Could not release leases after a relay failure")
        return True

    def send_batch(self, rows: Sequence[OutboxRow]) -> DrainResult:
        """Send the claimed `rows` (PutEvents calls of up to 10, up to `concurrency` at once)
        and record every outcome in the outbox in one transaction."""
        chunks = [
            rows[start : start + MAX_ENTRIES_PER_CALL]
            for start in range(0, len(rows), MAX_ENTRIES_PER_CALL)
        ]
        if len(chunks) == 1:
            answered = [self._send_call(chunks[0])]
        else:
            if self._calls is None:
                self._calls = ThreadPoolExecutor(self.concurrency, thread_name_prefix="putevents")
            answered = list(self._calls.map(self._send_call, chunks))
        result = DrainResult()
        outcomes: list[Outcome] = []
        for chunk_outcomes, chunk_result in answered:
            outcomes.extend(chunk_outcomes)
            result.add(chunk_result)
        with self._failures_lock:
            # A step whose calls could not reach EventBridge counts once towards the pause, however
            # many calls it made; a step that got through resets it.
            if any(chunk_result.unreachable for _, chunk_result in answered):
                self._call_failures += 1
            else:
                self._call_failures = 0
        self.outbox.apply(self.owner, outcomes)
        return result

    def _send_call(self, rows: Sequence[OutboxRow]) -> tuple[list[Outcome], DrainResult]:
        """One PutEvents call for up to 10 `rows`: the outcome of each (not yet recorded)."""
        result = DrainResult()
        now = time.time()
        outcomes: list[Outcome] = []
        try:
            answers = self.publisher.put_entries([row.entry for row in rows])
        except PublishError as exc:
            code = exc.code or type(exc).__name__
            if exc.retryable:
                result.unreachable = True
                with self._failures_lock:
                    pause = redelivery_delay(self._call_failures + 1, self.max_backoff_seconds)
                    self._paused_until = max(self._paused_until, time.monotonic() + pause)
                logger.warning(
                    "PutEvents failed for %d events with %s; retrying in %.1f s",
                    len(rows),
                    code,
                    pause,
                    extra={"error_code": code, "retry_in_seconds": round(pause, 3)},
                )
                for row in rows:
                    outcomes.append(
                        Outcome(
                            row.id,
                            PENDING,
                            error_code=code,
                            error_message=str(exc)[:500],
                            next_attempt_at=now + pause,
                        )
                    )
                    metrics.RELAY_RETRIES.labels(code=code).inc()
                result.retried = len(rows)
            elif len(rows) > 1:
                # A refused call may be the fault of one entry (a bus that does not exist, a
                # bad field): send each alone so the others are not failed with it.
                logger.warning(
                    "PutEvents refused a batch of %d with %s; sending them one by one",
                    len(rows),
                    code,
                    extra={"error_code": code},
                )
                for row in rows:
                    alone, step = self._send_call([row])
                    outcomes.extend(alone)
                    result.add(step)
                return outcomes, result
            else:
                logger.exception(
                    "PutEvents refused %d events with %s: %s",
                    len(rows),
                    code,
                    exc,
                    extra={
                        "error_code": code,
                        "interaction_ids": [row.interaction_id for row in rows],
                    },
                )
                for row in rows:
                    outcomes.append(
                        Outcome(row.id, FAILED, error_code=code, error_message=str(exc)[:500])
                    )
                    metrics.PUBLISHES_FAILED.labels(code=code).inc()
                result.failed = len(rows)
            return outcomes, result

        for row, answer in zip(rows, answers, strict=True):
            outcomes.append(self._entry_outcome(row, answer, now, result))
        return outcomes, result

    def _entry_outcome(
        self, row: OutboxRow, answer: dict[str, str], now: float, result: DrainResult
    ) -> Outcome:
        log_extra = {
            "interaction_id": row.interaction_id,
            "source": row.entry.get("Source"),
            "detail_type": row.entry.get("DetailType"),
            "raw_len": row.raw_len,
            "cleaned_len": row.cleaned_len,
            "attempts": row.attempts,
        }
        event_id = answer.get("EventId")
        code = answer.get("ErrorCode")
        if event_id and not code:
            metrics.PUBLISHES_OK.inc()
            result.sent += 1
            logger.info(
                "Published BatchProcessingCompleted event %s",
                event_id,
                extra={"event_id": event_id, "timestamp": _detail_timestamp(row), **log_extra},
            )
            return Outcome(row.id, SENT, event_id=event_id)
        code = code or "Unknown"
        message = str(answer.get("ErrorMessage") or "")[:500]
        if is_retryable_code(code):
            delay = redelivery_delay(row.attempts, self.max_backoff_seconds)
            metrics.RELAY_RETRIES.labels(code=code).inc()
            result.retried += 1
            logger.warning(
                "EventBridge answered %s for an event; retrying in %.1f s",
                code,
                delay,
                extra={"error_code": code, **log_extra},
            )
            return Outcome(
                row.id, PENDING, error_code=code, error_message=message, next_attempt_at=now + delay
            )
        metrics.PUBLISHES_FAILED.labels(code=code).inc()
        result.failed += 1
        logger.error(
            "EventBridge refused an event with %s: %s",
            code,
            message,
            extra={"error_code": code, **log_extra},
        )
        return Outcome(row.id, FAILED, error_code=code, error_message=message)

    # -- synchronous use (CLI replay, tests) -------------------------------------------------

    def drain_now(self, timeout_seconds: float) -> DrainResult:
        """Send due rows in the calling thread until none is due or the timeout passes.

        Waits for retries that come due within the timeout. Used by `outbox replay`.
        """
        total = DrainResult()
        deadline = time.monotonic() + timeout_seconds
        try:
            while time.monotonic() < deadline:
                wait = max(self._paused_until - time.monotonic(), 0.0)
                if wait:
                    time.sleep(min(wait, max(deadline - time.monotonic(), 0.0)))
                    continue
                rows = self.outbox.claim(self.owner, self.claim_size, self.lease_seconds)
                if rows:
                    total.add(self.send_batch(rows))
                    continue
                due = self.outbox.next_due_at()
                if due is None or due - time.time() >= deadline - time.monotonic():
                    break
                time.sleep(max(due - time.time(), 0.0) + 0.01)
        finally:
            self.outbox.release(self.owner)
            if self._thread is None:
                self._close_calls()
        return total
