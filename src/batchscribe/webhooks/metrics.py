"""Prometheus metrics of job webhooks (default registry, `batchscribe_` prefix).

The pending gauge is computed when /metrics is scraped, from the deliveries of the runtime that
started last in this process, so it counts deliveries other processes will send too.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge

WEBHOOK_ATTEMPTS = Counter(
    "batchscribe_webhook_attempts_total",
    "Webhook delivery attempts made by this process, by outcome (delivered, gone, retry, "
    "refused_address, invalid_url, no_secret).",
    ["outcome"],
)
WEBHOOK_FINISHED = Counter(
    "batchscribe_webhook_deliveries_finished_total",
    "Webhook deliveries that reached a final state in this process (delivered, gone, failed).",
    ["status"],
)
WEBHOOK_PENDING = Gauge(
    "batchscribe_webhook_deliveries_pending",
    "Webhook deliveries waiting for an attempt or being attempted now.",
)


def bind_pending(count: Callable[[], int]) -> None:
    """Make the pending gauge read `count` at scrape time (a failing read shows -1)."""

    def read() -> float:
        try:
            return float(count())
        except Exception:
            return -1.0

    WEBHOOK_PENDING.set_function(read)
