"""What a job is: its states, its record, the errors it can end with.

A job's life (SPEC 13, 14):

    queued ──claim──> running ──ok──> completed
      ^  │              │ │ ├──error / deadline / lease lost too often──> failed
      │  │              │ │ └──DELETE──> cancelled (the worker is stopped within seconds)
      │  └──DELETE──> cancelled
      └──worker lost (lease expired, process crashed), attempts left──┘

The final state and the job's event (completed or failed) are written in one transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
FINISHED_STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobMode(StrEnum):
    """`sync` jobs back a waiting `POST /batch/process`; they are claimed first."""

    SYNC = "sync"
    ASYNC = "async"


class JobErrorCode(StrEnum):
    """Why a job failed: the `error.code` users see and failed events carry."""

    INVALID_AUDIO = "invalid_audio"
    AUDIO_TOO_LONG = "audio_too_long"
    ENGINE_TIMEOUT = "engine_timeout"
    ENGINE_UNAVAILABLE = "engine_unavailable"
    TRANSCRIPTION_FAILED = "transcription_failed"
    WORKER_LOST = "worker_lost"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    AUDIO_MISSING = "audio_missing"


#: Messages for failures the worker machinery decides (the pipeline's own errors carry theirs).
ERROR_MESSAGES = {
    JobErrorCode.ENGINE_TIMEOUT: (
        "Transcription took longer than its deadline ({factor} x the audio duration + {grace} s) "
        "and was stopped. Try again; if it happens again, split the recording."
    ),
    JobErrorCode.WORKER_LOST: (
        "The worker processing this job stopped {attempts} times before finishing. Try again "
        "later; if it happens again, report the job id to the operator."
    ),
    JobErrorCode.AUDIO_MISSING: (
        "The uploaded audio is no longer in storage, so the job cannot run. Upload it again."
    ),
}


@dataclass(frozen=True, slots=True)
class Job:
    """One row of the `jobs` table, typed."""

    id: str
    tenant_id: str
    user_id: str
    account_id: str | None
    status: JobStatus
    mode: JobMode
    priority: int
    engine: str
    language: str | None
    metadata: dict[str, Any] | None
    filename: str | None
    content_type: str | None
    audio_key: str | None
    audio_bytes: int | None
    audio_sha256: str | None
    duration_seconds: float | None
    progress: float
    attempts: int
    lease_owner: str | None
    lease_expires_at: float | None
    next_attempt_at: float
    deadline_at: float | None
    cancel_requested: bool
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    error_code: str | None
    error_message: str | None
    result_json: str | None
    result_key: str | None
    idempotency_key: str | None
    #: The webhook's URL and the job's own URL (what a large result's webhook points to).
    callback_url: str | None = None
    status_url: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> Job:
        data = dict(row._mapping)
        raw_metadata = data.pop("metadata_json")
        return cls(
            **{
                **data,
                "status": JobStatus(data["status"]),
                "mode": JobMode(data["mode"]),
                "cancel_requested": bool(data["cancel_requested"]),
                "metadata": json.loads(raw_metadata) if raw_metadata else None,
            }
        )

    @property
    def finished(self) -> bool:
        return self.status.finished


@dataclass(frozen=True, slots=True)
class NewJob:
    """What the API knows when it accepts an upload."""

    id: str
    tenant_id: str
    user_id: str
    account_id: str | None
    mode: JobMode
    engine: str
    language: str | None
    metadata: dict[str, Any] | None
    filename: str | None
    content_type: str | None
    audio_key: str
    audio_bytes: int
    audio_sha256: str
    duration_seconds: float | None
    idempotency_key: str | None = None
    callback_url: str | None = None
    status_url: str | None = None


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a tenant's jobs, newest first; `next_cursor` is None on the last page."""

    jobs: list[Job]
    next_cursor: str | None
