"""Prometheus metrics of the event machinery (default registry, `batchscribe_` prefix).

The outbox gauges are computed when /metrics is scraped, from the outbox of the runtime that
started last in this process (`bind_outbox`), so they are true even for rows written or sent
by other processes sharing the file.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge

EVENTS_RECORDED = Counter(
    "batchscribe_events_recorded_total",
    "Events written by the request path, by initial status (queued, held, too_large...).",
    ["status"],
)
PUBLISHES_OK = Counter("batchscribe_event_publishes_ok_total", "Events EventBridge accepted.")
PUBLISHES_FAILED = Counter(
    "batchscribe_event_publishes_failed_total",
    "Events that failed terminally (status failed), by AWS error code.",
    ["code"],
)
RELAY_RETRIES = Counter(
    "batchscribe_relay_retries_total",
    "Entries put back for a later retry (throttling, internal failure, network), by code.",
    ["code"],
)
OUTBOX_WRITE_FAILURES = Counter(
    "batchscribe_outbox_write_failures_total",
    "Events that could not be stored in the outbox (the request still succeeded).",
)
OUTBOX_PENDING = Gauge(
    "batchscribe_outbox_pending", "Events waiting to be sent (pending or being sent)."
)
OUTBOX_OLDEST_AGE = Gauge(
    "batchscribe_outbox_oldest_pending_age_seconds",
    "Age of the oldest event waiting to be sent; 0 when none waits.",
)


def bind_outbox(
    pending_count: Callable[[], int], oldest_created_at: Callable[[], float | None]
) -> None:
    """Make the outbox gauges read these callbacks at scrape time (errors read as -1)."""

    def pending() -> float:
        try:
            return float(pending_count())
        except Exception:
            return -1.0

    def oldest_age() -> float:
        try:
            created = oldest_created_at()
        except Exception:
            return -1.0
        return max(0.0, time.time() - created) if created is not None else 0.0

    OUTBOX_PENDING.set_function(pending)
    OUTBOX_OLDEST_AGE.set_function(oldest_age)
