"""The job store as every process builds it: the outbox and the webhook deliveries as its hooks,
and the claim check for oversize events when the blob store is S3. One definition for the API
and the workers."""

from __future__ import annotations

import io

from batchscribe.blobs.base import BlobStore
from batchscribe.config import Settings
from batchscribe.db.engine import Database
from batchscribe.events.outbox import ClaimCheck, OutboxJobEvents
from batchscribe.events.schema import DataRef
from batchscribe.jobs.store import JobEventHooks, JobStore
from batchscribe.webhooks.hook import WebhookJobEvents


def claim_check_key(job_id: str) -> str:
    """Where an oversize event's transcripts are stored in the blob store (deleted with the
    job's result after RETENTION_DAYS)."""
    return f"events/{job_id}.json"


def claim_check_for(blobs: BlobStore) -> ClaimCheck | None:
    """With an S3 blob store, oversize events carry a reference to an S3 document instead of
    their transcripts (SPEC 14); with a file store there is nothing a consumer could read."""
    if not blobs.shared:
        return None

    def store(job_id: str, document: bytes) -> DataRef:
        stored = blobs.put_stream(claim_check_key(job_id), io.BytesIO(document))
        return DataRef(uri=stored.uri, bytes=stored.size, sha256=stored.sha256)

    return store


def job_store(settings: Settings, db: Database, blobs: BlobStore) -> JobStore:
    """The job store with the outbox and the webhooks as its hooks (one definition for API and
    workers)."""
    outbox_events = OutboxJobEvents(
        source=settings.event_source,
        bus_name=settings.eventbridge_bus_name,
        max_bytes=settings.event_max_bytes,
        claim_check=claim_check_for(blobs),
    )
    webhook_events = WebhookJobEvents(
        inline_max_bytes=settings.callback_inline_max_bytes,
        window_seconds=settings.callback_retry_window_seconds,
    )
    return JobStore(
        db,
        JobEventHooks(outbox_events, webhook_events),
        max_attempts=settings.job_max_attempts,
        timeout_factor=settings.job_timeout_factor,
        deadline_grace_seconds=settings.job_deadline_grace_seconds,
    )
