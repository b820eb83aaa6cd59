"""The body of a job's webhook: what a receiver gets when the job ends.

The Standard Webhooks payload structure, `type`, `timestamp` (when the job ended) and `data`:

    {"type": "batch.completed", "timestamp": "2026-11-29T10:30:00.000Z",
     "data": {"job_id", "interaction_id", "tenant_id", "user_id", "account_id", "status",
              "error", "metadata", "created_at", "finished_at", "duration_seconds", "engine",
              "language", "result", "result_url"}}

`batch.completed` carries the result inline (`result`: the same object `GET /batch/jobs/{id}`
shows under `result`, without its event state) when the whole body stays within
CALLBACK_INLINE_MAX_BYTES; otherwise `result` is null and `result_url` is the job's URL, where
the receiver fetches it with its own key. `batch.failed` has `error: {code, message}` and
neither. The body is built once, in the job's final transaction, and sent byte for byte at
every attempt (only the signature headers change).

Built from duck-typed job and result objects (`batchscribe.jobs` imports this package, not the
other way round).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    """The webhook's `type`."""

    COMPLETED = "batch.completed"
    FAILED = "batch.failed"


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _envelope(event_type: EventType, job: Any, data: dict[str, Any]) -> dict[str, Any]:
    duration = job.duration_seconds
    return {
        "type": str(event_type),
        "timestamp": _iso(job.finished_at),
        "data": {
            "job_id": job.id,
            "interaction_id": job.id,
            "tenant_id": job.tenant_id,
            "user_id": job.user_id,
            "account_id": job.account_id,
            "status": str(job.status),
            "error": None,
            "metadata": job.metadata,
            "created_at": _iso(job.created_at),
            "finished_at": _iso(job.finished_at),
            "duration_seconds": round(duration, 3) if duration is not None else None,
            "engine": job.engine,
            "language": job.language,
            "result": None,
            "result_url": None,
            **data,
        },
    }


def completed_body(job: Any, result: Any, *, inline_max_bytes: int) -> bytes:
    """The `batch.completed` body: the result inline when the body fits `inline_max_bytes`,
    else a `result_url` (the job's own URL)."""
    view = result.view()
    body = _encode(
        _envelope(EventType.COMPLETED, job, {"result": view, "language": view.get("language")})
    )
    if len(body) <= inline_max_bytes:
        return body
    return _encode(
        _envelope(
            EventType.COMPLETED,
            job,
            {"result_url": job.status_url, "language": view.get("language")},
        )
    )


def failed_body(job: Any, code: str, message: str) -> bytes:
    """The `batch.failed` body: the error, no transcripts."""
    return _encode(_envelope(EventType.FAILED, job, {"error": {"code": code, "message": message}}))
