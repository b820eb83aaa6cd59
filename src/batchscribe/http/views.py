"""Jobs and results as the API shows them (the response models of `http/schemas.py`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from batchscribe.events.schema import format_timestamp
from batchscribe.http.schemas import BatchProcessResponse, EventDelivery, JobError, JobView
from batchscribe.jobs.models import Job
from batchscribe.jobs.results import JobResult


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


def job_view(
    job: Job, result: JobResult | None = None, event: dict[str, Any] | None = None
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
        result=result_view(job, result, event or {"status": "not_stored"})
        if result is not None
        else None,
    )
