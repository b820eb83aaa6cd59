"""Errors of the job system, each mapped to an HTTP status by the HTTP layer.

JobError
├── JobNotFoundError            no such job for this tenant (HTTP 404, like an unknown id)
├── JobFinishedError            DELETE on a job that already ended (HTTP 409)
├── IdempotencyConflictError    the Idempotency-Key was used with other audio (HTTP 409)
├── InvalidCursorError          a list cursor we did not hand out (HTTP 400)
└── JobLeaseLostError           the worker no longer holds the job (cancelled, or its lease
                                expired and another worker took it): stop working on it
"""

from __future__ import annotations


class JobError(Exception):
    """Base class of the job system's errors."""


class JobNotFoundError(JobError):
    """No job with this id for this tenant; other tenants' jobs look exactly the same."""

    def __init__(self, job_id: str) -> None:
        super().__init__(
            "No job with this id for your tenant. Check the id returned by POST /batch/jobs."
        )
        self.job_id = job_id


class JobFinishedError(JobError):
    """The job already ended, so it cannot be cancelled."""

    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(f"The job already ended ({status}); there is nothing to cancel.")
        self.job_id = job_id
        self.status = status


class IdempotencyConflictError(JobError):
    """The same Idempotency-Key came with different audio within 24 hours."""

    def __init__(self, job_id: str) -> None:
        super().__init__(
            "This Idempotency-Key was already used with different audio in the last 24 hours "
            f"(job {job_id}). Use a new key for a new recording."
        )
        self.job_id = job_id


class ActiveJobsLimitError(JobError):
    """The tenant already has `limit` queued or running jobs (TENANT_MAX_ACTIVE_JOBS)."""

    def __init__(self, active: int, limit: int) -> None:
        super().__init__(f"{active} active jobs, the limit is {limit}")
        self.active = active
        self.limit = limit


class JobLeaseLostError(JobError):
    """The worker's claim on the job is gone; its result must not be recorded."""


class InvalidCursorError(JobError):
    """A `cursor` that this service did not hand out (HTTP 400)."""

    def __init__(self) -> None:
        super().__init__(
            "The cursor is not valid. Use the next_cursor value of the previous page, or omit it."
        )
