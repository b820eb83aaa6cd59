"""`WebhookJobEvents`: writes a job's webhook delivery in the transaction that ends the job.

The job store calls it beside the outbox's hook (`batchscribe.jobs.store.JobEventHooks`) when a
job completes or fails; a job without a `callback_url` is left alone, and so is a cancelled job
(no webhook for a job its owner stopped). The body is built here, once, so every attempt sends
the same bytes; the message id is made here too, so it stays the same across retries.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.engine import Connection

from batchscribe.webhooks.deliveries import insert_delivery
from batchscribe.webhooks.payload import EventType, completed_body, failed_body

logger = logging.getLogger(__name__)


class WebhookJobEvents:
    """The job store's hook for webhooks (see the module docstring)."""

    def __init__(self, *, inline_max_bytes: int, window_seconds: float) -> None:
        self.inline_max_bytes = inline_max_bytes
        self.window_seconds = window_seconds

    def completed(self, conn: Connection, job: Any, result: Any) -> None:
        if not job.callback_url:
            return
        body = completed_body(job, result, inline_max_bytes=self.inline_max_bytes)
        self._store(conn, job, EventType.COMPLETED, body)

    def failed(self, conn: Connection, job: Any, code: str, message: str) -> None:
        if not job.callback_url:
            return
        self._store(conn, job, EventType.FAILED, failed_body(job, code, message))

    def _store(self, conn: Connection, job: Any, event_type: EventType, body: bytes) -> None:
        insert_delivery(
            conn,
            job_id=job.id,
            tenant_id=job.tenant_id,
            url=job.callback_url,
            event_type=str(event_type),
            body=body,
            window_seconds=self.window_seconds,
        )
        logger.info(
            "webhook delivery stored",
            extra={"interaction_id": job.id, "webhook_type": str(event_type), "bytes": len(body)},
        )
