"""`EventsRuntime`: the publisher, the outbox and the relay of one server process.

Events are not written here: a job's event is written by the worker in the transaction that
finishes the job (`batchscribe.events.outbox.OutboxJobEvents`). This runtime publishes them: its
relay thread wakes on the "outbox written" signal (from this server's workers, or from other
machines through PostgreSQL notifications) and polls for the rest. It also answers what the HTTP
layer asks about events: the delivery state of one, and readiness.

`start()` and `stop()` are synchronous (`stop()` blocks for up to SHUTDOWN_GRACE_SECONDS while
the relay drains), so call them from the lifespan through `anyio.to_thread.run_sync`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from batchscribe.config import Settings
from batchscribe.db.engine import Database
from batchscribe.events import metrics
from batchscribe.events.exceptions import EventNotFoundError, OutboxError
from batchscribe.events.outbox import UNSENT, Outbox, OutboxRow, OutboxStatus
from batchscribe.events.publisher import AWSEventPublisher
from batchscribe.events.relay import OutboxRelay
from batchscribe.events.schema import format_timestamp
from batchscribe.signals import Signals, Topic

logger = logging.getLogger(__name__)


class DeliveryStatus(StrEnum):
    """What a response says of its event (`event.status`).

    `queued`: stored, the relay sends it now; `sent`: EventBridge has it; `held`: publishing is
    off here (no AWS credentials), `batchscribe outbox replay` sends it later; `failed`:
    refused with a terminal code; `too_large`: over EVENT_MAX_BYTES, never sent; `not_stored`:
    no event was recorded (the transcripts are still returned); `unknown`: the event's state
    could not be read just now (ask `GET /events/{interaction_id}` later).
    """

    QUEUED = "queued"
    SENT = "sent"
    HELD = "held"
    FAILED = "failed"
    TOO_LARGE = "too_large"
    NOT_STORED = "not_stored"
    UNKNOWN = "unknown"


_DELIVERY = {
    OutboxStatus.PENDING: DeliveryStatus.QUEUED,
    OutboxStatus.SENDING: DeliveryStatus.QUEUED,
    OutboxStatus.SENT: DeliveryStatus.SENT,
    OutboxStatus.HELD: DeliveryStatus.HELD,
    OutboxStatus.FAILED: DeliveryStatus.FAILED,
    OutboxStatus.TOO_LARGE: DeliveryStatus.TOO_LARGE,
}


def _iso(epoch: float | None) -> str | None:
    return format_timestamp(datetime.fromtimestamp(epoch, UTC)) if epoch is not None else None


class EventsRuntime:
    """Publisher + outbox + relay, started and stopped with the app. Thread-safe."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        signals: Signals,
        publisher: AWSEventPublisher | None = None,
    ) -> None:
        self.settings = settings
        self.publisher = publisher or AWSEventPublisher(settings=settings)
        self.outbox = Outbox(db)
        self.signals = signals
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.relay = OutboxRelay(
            self.outbox,
            self.publisher,
            lease_seconds=settings.relay_lease_seconds,
            max_backoff_seconds=settings.relay_max_backoff_seconds,
            retention_seconds=settings.retention_days * 86400,
            owner=self.owner,
            concurrency=settings.relay_concurrency,
        )
        self._unsubscribe: Any = None
        self._started = False
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Log the publisher configuration and start the relay. Never raises."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self.publisher.log_startup()
        metrics.bind_outbox(self._unsent_count, self.outbox.oldest_unsent_created_at)
        try:
            counts = self.outbox.counts()
        except OutboxError:
            counts = None
        if counts and (_unsent(counts) or counts[OutboxStatus.HELD]):
            logger.info(
                "Outbox has %d pending and %d held events from earlier runs",
                _unsent(counts),
                counts[OutboxStatus.HELD],
            )
        self._unsubscribe = self.signals.subscribe(
            Topic.OUTBOX_WRITTEN, lambda _payload: self.relay.wake()
        )
        self.relay.start()

    def stop(self) -> None:
        """Drain pending events for up to SHUTDOWN_GRACE_SECONDS, then stop the relay."""
        with self._lock:
            if not self._started:
                return
            self._started = False
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.relay.stop(self.settings.shutdown_grace_seconds)

    def _unsent_count(self) -> int:
        return _unsent(self.outbox.counts())

    # -- queries -----------------------------------------------------------------------------

    def delivery(self, interaction_id: str) -> dict[str, Any]:
        """The `event` field of a response: the delivery state of this interaction's event.

        Never raises: events are never a reason for a response with transcripts to fail.
        """
        try:
            row = self.outbox.get(interaction_id)
        except OutboxError as exc:
            logger.warning("could not read the event's delivery state: %s", exc)
            return {"status": DeliveryStatus.UNKNOWN}
        if row is None:
            return {"status": DeliveryStatus.NOT_STORED}
        status = _DELIVERY[row.status]
        if status is DeliveryStatus.QUEUED and not self.publisher.enabled:
            return {"status": DeliveryStatus.HELD, "reason": "publishing_disabled"}
        answer: dict[str, Any] = {"status": status}
        if status is DeliveryStatus.HELD:
            answer["reason"] = "publishing_disabled"
        elif status is DeliveryStatus.TOO_LARGE:
            answer.update(size_bytes=row.size_bytes, limit_bytes=self.publisher.max_bytes)
        return answer

    def readiness(self) -> dict[str, Any]:
        """Publisher and relay state and the outbox's backlog, for /readyz (storage health is
        checked with the database's own probe)."""
        counts: dict[OutboxStatus, int] | None
        oldest_age: float | None = None
        try:
            counts = self.outbox.counts()
            oldest = self.outbox.oldest_unsent_created_at()
            oldest_age = round(time.time() - oldest, 3) if oldest is not None else None
        except OutboxError:
            counts = None
        info = self.publisher.describe()
        return {
            "publisher": info["state"],
            "publisher_reason": info["reason"],
            "relay_running": self.relay.running,
            "pending": _unsent(counts) if counts else None,
            "held": counts[OutboxStatus.HELD] if counts else None,
            "failed": counts[OutboxStatus.FAILED] if counts else None,
            "oldest_pending_age_seconds": oldest_age,
        }

    def event_status(self, interaction_id: str, tenant_id: str) -> dict[str, Any]:
        """Delivery state of one event of `tenant_id`.

        Raises `EventNotFoundError` when there is none (another tenant's event included) and
        `OutboxError` when the outbox cannot be read.
        """
        row = self.outbox.get(interaction_id)
        if row is None or row.tenant_id != tenant_id:
            raise EventNotFoundError(interaction_id)
        return status_view(row)


def _unsent(counts: dict[OutboxStatus, int]) -> int:
    return sum(counts[status] for status in UNSENT)


def status_view(row: OutboxRow) -> dict[str, Any]:
    """What `GET /events/{interaction_id}` shows: state and timing, never the transcripts."""
    return {
        "interaction_id": row.interaction_id,
        "detail_type": row.detail_type,
        "status": row.status,
        "attempts": row.attempts,
        "event_id": row.event_id,
        "error_code": row.error_code,
        "error_message": row.error_message,
        "size_bytes": row.size_bytes,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "sent_at": _iso(row.sent_at),
        "next_attempt_at": (
            _iso(row.next_attempt_at) if row.status == OutboxStatus.PENDING else None
        ),
    }
