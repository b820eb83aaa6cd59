"""Jobs and results as the API shows them (the response models of `http/schemas.py`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from batchscribe.events.schema import format_timestamp
from batchscribe.http.schemas import (
    BatchProcessResponse,
    CallbackAttemptView,
    CallbackState,
    CallbackView,
    EventDelivery,
    JobError,
    JobView,
)
from batchscribe.jobs.models import Job
from batchscribe.jobs.results import JobResult
from batchscribe.webhooks.deliveries import Attempt, Delivery, DeliveryStatus


def iso(epoch: float | None) -> str | None:
    """ISO 8601 UTC with milliseconds, as events show times."""
    return format_timestamp(datetime.fromtimestamp(epoch, UTC)) if epoch is not None else None


def result_view(job: Job, result: JobResult, event: dict[str, Any]) -> BatchProcessResponse:
    """The synchronous response (and a completed job's `result`): transcripts, identity, the
    event's delivery state."""
    return BatchProcessResponse.model_validate(
        {
            **result.view(),
            "interaction_id": job.id,
            "tenant_id": job.tenant_id,
            "user_id": job.user_id,
            "account_id": job.account_id,
            "event": EventDelivery.model_validate(event),
        }
    )


def callback_view(
    job: Job, delivery: Delivery | None, attempts: list[Attempt] | None = None
) -> CallbackView | None:
    """A job's callback as `GET /batch/jobs/{id}` shows it; None without a callback_url."""
    if not job.callback_url:
        return None
    if delivery is None:
        state = CallbackState.NOT_SENT if job.finished else CallbackState.WAITING
        return CallbackView(
            url=job.callback_url,
            status=state,
            type=None,
            webhook_id=None,
            attempts=0,
            last_attempt_at=None,
            last_status_code=None,
            last_error=None,
            next_attempt_at=None,
            give_up_at=None,
            delivered_at=None,
        )
    pending = delivery.status is DeliveryStatus.PENDING
    return CallbackView(
        url=delivery.url,
        status=CallbackState(delivery.status.value),
        type=delivery.event_type,
        webhook_id=delivery.message_id,
        attempts=delivery.attempts,
        last_attempt_at=iso(delivery.last_attempt_at),
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        next_attempt_at=iso(delivery.next_attempt_at) if pending else None,
        give_up_at=iso(delivery.give_up_at) if pending else None,
        delivered_at=iso(delivery.delivered_at),
        recent_attempts=[
            CallbackAttemptView(
                attempt=attempt.attempt,
                at=iso(attempt.started_at) or "",
                outcome=attempt.outcome,
                status_code=attempt.status_code,
                error=attempt.error,
                duration_ms=attempt.duration_ms,
            )
            for attempt in attempts or []
        ],
    )


def job_view(
    job: Job,
    result: JobResult | None = None,
    event: dict[str, Any] | None = None,
    callback: CallbackView | None = None,
) -> JobView:
    """One job as `GET /batch/jobs/{id}` shows it; `result` only once completed."""
    error = (
        JobError(code=job.error_code, message=job.error_message or "") if job.error_code else None
    )
    return JobView(
        job_id=job.id,
        status=job.status,
        progress=round(job.progress, 3),
        created_at=iso(job.created_at) or "",
        started_at=iso(job.started_at),
        finished_at=iso(job.finished_at),
        duration_seconds=(
            round(job.duration_seconds, 3) if job.duration_seconds is not None else None
        ),
        engine=job.engine,
        language=job.language,
        metadata=job.metadata,
        error=error,
        callback=callback,
        result=result_view(job, result, event or {"status": "not_stored"})
        if result is not None
        else None,
    )
