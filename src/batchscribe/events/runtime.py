"""`EventsRuntime`: the one object the HTTP layer holds for events.

It owns the publisher, the outbox and the relay thread. The request path calls `record()`, which
only writes the outbox and never raises; the relay publishes. `start()` and `stop()` are
synchronous (`stop()` blocks for up to SHUTDOWN_GRACE_SECONDS while it drains), so call them from
the lifespan through `anyio.to_thread.run_sync` or directly before the loop matters.
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
from batchscribe.events import metrics
from batchscribe.events.exceptions import EventNotFoundError, EventValidationError, OutboxError
from batchscribe.events.outbox import UNSENT, Outbox, OutboxRow, OutboxStatus
from batchscribe.events.publisher import AWSEventPublisher
from batchscribe.events.relay import OutboxRelay
from batchscribe.events.schema import format_timestamp
from batchscribe.identity import RequestContext

logger = logging.getLogger(__name__)


class DeliveryStatus(StrEnum):
    """What happened to a request's event when it was recorded: the response's `event.status`.

    `queued` rows are `pending` in the outbox; `not_stored` means the outbox could not take it
    (the request still succeeds, the failure is logged and counted).
    """

    QUEUED = "queued"
    HELD = "held"
    TOO_LARGE = "too_large"
    NOT_STORED = "not_stored"


def _iso(epoch: float | None) -> str | None:
    return format_timestamp(datetime.fromtimestamp(epoch, UTC)) if epoch is not None else None


class EventsRuntime:
    """Publisher + outbox + relay, started and stopped with the app.

    Thread-safe: `record()`, `readiness()` and `event_status()` may be called from any thread
    (each thread gets its own SQLite connection). `record()` does one fsync'd SQLite insert
    (about a millisecond), so call it through `anyio.to_thread.run_sync` from async code.
    """

    def __init__(self, settings: Settings, publisher: AWSEventPublisher | None = None) -> None:
        self.settings = settings
        self.publisher = publisher or AWSEventPublisher(settings=settings)
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._outbox: Outbox | None = None
        self._outbox_error: str | None = None
        self._relay: OutboxRelay | None = None
        self._started = False
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Log the publisher configuration, open the outbox, start the relay. Never raises."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self.publisher.log_startup()
        outbox = self._ensure_outbox()
        if outbox is not None:
            counts = self._safe_counts(outbox)
            if counts and (_unsent(counts) or counts[OutboxStatus.HELD]):
                logger.info(
                    "Outbox has %d pending and %d held events from earlier runs",
                    _unsent(counts),
                    counts[OutboxStatus.HELD],
                    extra={"outbox_counts": counts},
                )

    def stop(self) -> None:
        """Drain pending events for up to SHUTDOWN_GRACE_SECONDS, stop the relay, close."""
        with self._lock:
            if not self._started:
                return
            self._started = False
            relay, self._relay = self._relay, None
            outbox, self._outbox = self._outbox, None
        if relay is not None:
            relay.stop(self.settings.shutdown_grace_seconds)
        if outbox is not None:
            outbox.close()

    @property
    def outbox(self) -> Outbox | None:
        """The open outbox, or None when it could not be opened."""
        return self._outbox

    @property
    def relay(self) -> OutboxRelay | None:
        return self._relay

    def _ensure_outbox(self) -> Outbox | None:
        """The outbox, opening it (and starting the relay) if that has not succeeded yet."""
        if self._outbox is not None:
            return self._outbox
        with self._lock:
            if self._outbox is not None:
                return self._outbox
            try:
                outbox = Outbox(self.settings.outbox_path)
            except OutboxError as exc:
                self._outbox_error = str(exc)
                logger.exception("The event outbox cannot be opened; events are not stored")
                return None
            self._outbox, self._outbox_error = outbox, None
            metrics.bind_outbox(lambda: self._pending_of(outbox), outbox.oldest_unsent_created_at)
            if self._started:
                relay = OutboxRelay(
                    outbox,
                    self.publisher,
                    lease_seconds=self.settings.relay_lease_seconds,
                    max_backoff_seconds=self.settings.relay_max_backoff_seconds,
                    retention_seconds=self.settings.outbox_retention_days * 86400,
                    owner=self.owner,
                )
                relay.start()
                self._relay = relay
            logger.info("Event outbox open at %s", outbox.path)
            return outbox

    @staticmethod
    def _pending_of(outbox: Outbox) -> int:
        return _unsent(outbox.counts())

    @staticmethod
    def _safe_counts(outbox: Outbox) -> dict[OutboxStatus, int] | None:
        try:
            return outbox.counts()
        except OutboxError:
            return None

    # -- the request path --------------------------------------------------------------------

    def record(
        self, context: RequestContext, raw_transcript: str, cleaned_transcript: str
    ) -> dict[str, Any]:
        """Store this request's event for delivery; return the response's `event` field.

        Never raises: a failure is logged at ERROR, counted, and reported as `not_stored`.
        """
        try:
            return self._record(context, raw_transcript, cleaned_transcript)
        except Exception:
            logger.exception(
                "Storing the event failed unexpectedly",
                extra={"interaction_id": getattr(context, "interaction_id", None)},
            )
            metrics.OUTBOX_WRITE_FAILURES.inc()
            metrics.EVENTS_RECORDED.labels(status=DeliveryStatus.NOT_STORED).inc()
            return {"status": DeliveryStatus.NOT_STORED, "reason": "internal_error"}

    def _record(
        self, context: RequestContext, raw_transcript: str, cleaned_transcript: str
    ) -> dict[str, Any]:
        iid = context.interaction_id
        lengths = {"raw_len": len(raw_transcript), "cleaned_len": len(cleaned_transcript)}
        log_extra: dict[str, Any] = {"interaction_id": iid, **lengths}
        try:
            built = self.publisher.entry_for(context, raw_transcript, cleaned_transcript)
        except EventValidationError as exc:
            logger.error("Event not stored: it does not match the model: %s", exc, extra=log_extra)
            metrics.EVENTS_RECORDED.labels(status=DeliveryStatus.NOT_STORED).inc()
            return {"status": DeliveryStatus.NOT_STORED, "reason": "invalid_event"}
        entry, size = built.entry, built.size_bytes
        limit = self.publisher.max_bytes
        result: dict[str, Any]
        if size > limit:
            status = OutboxStatus.TOO_LARGE
            result = {"status": DeliveryStatus.TOO_LARGE, "size_bytes": size, "limit_bytes": limit}
        elif not self.publisher.enabled:
            status = OutboxStatus.HELD
            result = {"status": DeliveryStatus.HELD, "reason": "publishing_disabled"}
        else:
            status, result = OutboxStatus.PENDING, {"status": DeliveryStatus.QUEUED}

        outbox = self._ensure_outbox()
        try:
            if outbox is None:
                raise OutboxError(self._outbox_error or "the outbox is not open")
            outbox.insert(
                interaction_id=iid,
                tenant_id=context.tenant_id,
                entry=entry,
                size_bytes=size,
                status=status,
                error_code="TooLarge" if status == OutboxStatus.TOO_LARGE else None,
                raw_len=len(raw_transcript),
                cleaned_len=len(cleaned_transcript),
            )
        except OutboxError:
            logger.exception(
                "Event not stored: the outbox cannot be written; the response is unaffected",
                extra=log_extra,
            )
            metrics.OUTBOX_WRITE_FAILURES.inc()
            metrics.EVENTS_RECORDED.labels(status=DeliveryStatus.NOT_STORED).inc()
            return {"status": DeliveryStatus.NOT_STORED, "reason": "outbox_unavailable"}

        metrics.EVENTS_RECORDED.labels(status=result["status"]).inc()
        if status == OutboxStatus.PENDING:
            if self._relay is not None:
                self._relay.wake()
            logger.info("Event queued for delivery", extra={**log_extra, "event_status": "queued"})
        elif status == OutboxStatus.HELD:
            logger.warning(
                "Event held: publishing is disabled (%s); run `batchscribe outbox replay` once "
                "AWS is configured",
                self.publisher.disabled_reason,
                extra={**log_extra, "event_status": "held"},
            )
        else:
            logger.error(
                "Event too large to publish (%d bytes, limit %d); recorded as too_large",
                size,
                limit,
                extra={**log_extra, "event_status": "too_large"},
            )
        return result

    # -- queries -----------------------------------------------------------------------------

    def readiness(self) -> dict[str, Any]:
        """State for /readyz: `ok` is true when the outbox is writable (publishing may be off)."""
        outbox = self._ensure_outbox()
        writable, error = False, self._outbox_error
        counts: dict[OutboxStatus, int] | None = None
        oldest_age: float | None = None
        if outbox is not None:
            try:
                outbox.check_writable()
                writable, error = True, None
                counts = outbox.counts()
                oldest = outbox.oldest_unsent_created_at()
                oldest_age = round(time.time() - oldest, 3) if oldest is not None else None
            except OutboxError as exc:
                error = str(exc)
        info = self.publisher.describe()
        return {
            "ok": writable,
            "outbox": {
                "path": str(self.settings.outbox_path),
                "writable": writable,
                "error": error,
            },
            "publisher": info["state"],
            "publisher_reason": info["reason"],
            "relay_running": self._relay is not None and self._relay.running,
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
        outbox = self._ensure_outbox()
        if outbox is None:
            raise OutboxError(self._outbox_error or "the outbox is not open")
        row = outbox.get(interaction_id)
        if row is None or row.tenant_id != tenant_id:
            raise EventNotFoundError(interaction_id)
        return status_view(row)


def _unsent(counts: dict[OutboxStatus, int]) -> int:
    return sum(counts[status] for status in UNSENT)


def status_view(row: OutboxRow) -> dict[str, Any]:
    """What `GET /events/{interaction_id}` shows: state and timing, never the transcripts."""
    return {
        "interaction_id": row.interaction_id,
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
