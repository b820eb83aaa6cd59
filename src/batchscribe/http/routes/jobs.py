"""The jobs API (SPEC 13): submit a recording, follow it, list, cancel.

    POST   /batch/jobs            202 {job_id, status, status_url} + Location
                                  (200 + Idempotent-Replayed: true for a replayed key)
    GET    /batch/jobs/{job_id}   the job: status, progress, times, error, result once completed;
                                  ?format=text|srt|vtt|verbose_json: the transcript in that format
    GET    /batch/jobs            the tenant's jobs, newest first, cursor-paginated
    DELETE /batch/jobs/{job_id}   cancel a queued or running job (409 once it ended)

Tenant-scoped: another tenant's job answers 404, exactly like an unknown id. Every route refuses
query parameters it does not take (400 naming the ones it does). A job submitted with a
`callback_url` gets a signed webhook when it ends (batchscribe.webhooks); its delivery state is the
job's `callback`.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from batchscribe.config import Settings
from batchscribe.events.schema import METADATA_MAX_BYTES
from batchscribe.http.deps import ContextDep, EventsDep, JobsDep, SettingsDep, WebhooksDep
from batchscribe.http.exceptions import ResultGoneError, ResultNotReadyError, UploadError
from batchscribe.http.formats import (
    FORMAT_NAMES,
    refuse_unknown_query,
    requested_format,
    transcript_response,
)
from batchscribe.http.identity import context_headers, warn_if_tenant_generated
from batchscribe.http.schemas import (
    ERROR_RESPONSES,
    TRANSCRIPT_CONTENT,
    ErrorResponse,
    JobAccepted,
    JobList,
    JobView,
)
from batchscribe.http.upload import ReceivedUpload, UploadLimits, receive_upload
from batchscribe.http.views import callback_view, job_view
from batchscribe.identity import RequestContext
from batchscribe.jobs.models import Job, JobStatus
from batchscribe.pipeline.formats import ACCEPTED_SENTENCE
from batchscribe.pipeline.render import ResponseFormat
from batchscribe.services.jobs import JobService
from batchscribe.webhooks.exceptions import CallbackSecretMissing, InvalidCallbackUrl
from batchscribe.webhooks.runtime import WebhooksRuntime
from batchscribe.webhooks.urls import MAX_URL_LENGTH, validate_callback_url

router = APIRouter(tags=["jobs"])

JOB_FIELDS = frozenset({"file", "language", "metadata", "callback_url"})
#: The query parameters each route takes; any other is refused (400 `unknown_parameter`).
#: A job's transcript format is `format` (the name of SPEC 13) or `response_format` (the form
#: field's name on the other routes), so either spelling works.
GET_JOB_QUERY = frozenset({"format", "response_format"})
LIST_QUERY = frozenset({"status", "limit", "cursor"})
MAX_IDEMPOTENCY_KEY = 255
_KEY_CHARS = re.compile(r"^[\x21-\x7e]+$")

_SUBMIT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": f"{ACCEPTED_SENTENCE} audio.",
                        },
                        "language": {
                            "type": "string",
                            "description": "BCP-47 language of the recording, e.g. en; 400 "
                            "unsupported_language when the engine cannot do it.",
                        },
                        "metadata": {
                            "type": "string",
                            "description": "A JSON object (at most 4 KB), returned with the job "
                            "and carried in its events.",
                        },
                        "callback_url": {
                            "type": "string",
                            "maxLength": MAX_URL_LENGTH,
                            "description": "An https URL with a public host: it gets a POST "
                            "signed per Standard Webhooks when the job completes or fails.",
                        },
                    },
                }
            }
        },
    }
}
_SUBMIT_400 = {
    "model": ErrorResponse,
    "description": ERROR_RESPONSES[400]["description"]
    + " A bad language, metadata or callback_url (`invalid_callback_url`), or a callback_url "
    "for a tenant without a webhook signing secret (`callback_secret_missing`).",
}
_JOB_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "A bad identity header."},
    404: {"model": ErrorResponse, "description": "No such job for this tenant."},
    503: ERROR_RESPONSES[503],
}


def _no_query(accepted: frozenset[str]) -> Any:
    """A dependency refusing query parameters outside `accepted`."""

    def check(request: Request) -> None:
        refuse_unknown_query(request, accepted)

    return Depends(check)


def _metadata(upload: ReceivedUpload) -> dict[str, Any] | None:
    raw = upload.fields.get("metadata")
    if raw is None or not raw.strip():
        return None
    problem = None
    try:
        value = json.loads(raw)
    except ValueError:
        problem = "is not valid JSON"
    else:
        if not isinstance(value, dict):
            problem = "must be a JSON object"
        elif len(json.dumps(value, separators=(",", ":")).encode()) > METADATA_MAX_BYTES:
            problem = f"is larger than {METADATA_MAX_BYTES} bytes"
    if problem is not None:
        upload.cleanup()
        raise UploadError(
            f"The metadata field {problem}. Send a JSON object of at most "
            f'{METADATA_MAX_BYTES} bytes, e.g. {{"meeting": "weekly"}}.',
            code="invalid_metadata",
        )
    return dict(value)


async def _callback_url(
    upload: ReceivedUpload,
    settings: Settings,
    webhooks: WebhooksRuntime,
    context: RequestContext,
) -> str | None:
    """The normalised callback_url, after checking its form and that something can sign the
    tenant's webhooks; None without one."""
    value = upload.fields.get("callback_url", "").strip()
    if not value:
        return None
    try:
        url = validate_callback_url(
            value, allow_private=settings.callback_allow_private_networks
        ).url
        await anyio.to_thread.run_sync(webhooks.require_secret, context.tenant_id)
    except InvalidCallbackUrl as exc:
        upload.cleanup()
        raise UploadError(str(exc), code="invalid_callback_url") from None
    except CallbackSecretMissing as exc:
        upload.cleanup()
        raise UploadError(str(exc), code="callback_secret_missing") from None
    except BaseException:
        upload.cleanup()
        raise
    return url


def _idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_IDEMPOTENCY_KEY or not _KEY_CHARS.match(value):
        raise UploadError(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters "
            "without spaces (a UUID is a good choice).",
            code="invalid_idempotency_key",
        )
    return value


def _status_url(request: Request, job_id: str) -> str:
    return str(request.url_for("get_job", job_id=job_id))


async def _view(jobs: JobService, events: Any, webhooks: WebhooksRuntime, job: Job) -> JobView:
    callback = None
    if job.callback_url:
        found = await anyio.to_thread.run_sync(webhooks.delivery, job.id)
        callback = callback_view(job, *(found or (None, None)))
    if job.status is not JobStatus.COMPLETED:
        return job_view(job, callback=callback)
    result = await jobs.result(job)
    event = await anyio.to_thread.run_sync(events.delivery, job.id) if result else None
    return job_view(job, result, event, callback)


@router.post(
    "/batch/jobs",
    status_code=202,
    response_model=JobAccepted,
    responses={
        200: {"model": JobAccepted, "description": "Replayed: the key named an existing job."},
        409: {
            "model": ErrorResponse,
            "description": "The Idempotency-Key was used with other audio in the last 24 h.",
        },
        **ERROR_RESPONSES,
        400: _SUBMIT_400,
    },
    openapi_extra=_SUBMIT_BODY,
    summary="Submit a recording as an asynchronous job",
    dependencies=[_no_query(frozenset())],
)
async def submit_job(
    request: Request,
    context: ContextDep,
    settings: SettingsDep,
    jobs: JobsDep,
    webhooks: WebhooksDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Accept a recording (up to MAX_AUDIO_SECONDS) for transcription; poll `status_url` for
    progress and the result, or give a `callback_url` to be told when the job ends. The job id
    is the interaction id of its events. With an `Idempotency-Key`, the same key and audio
    within 24 hours return the existing job."""
    key = _idempotency_key(idempotency_key)
    upload = await receive_upload(
        request, UploadLimits.from_settings(settings), accepted=JOB_FIELDS
    )
    metadata = _metadata(upload)
    callback_url = await _callback_url(upload, settings, webhooks, context)
    # The language is checked against the engine by the service, before anything is stored.
    submitted = await jobs.submit(
        context,
        upload,
        language=upload.fields.get("language"),
        metadata=metadata,
        idempotency_key=key,
        callback_url=callback_url,
        status_url=_status_url(request, context.interaction_id),
    )
    job = submitted.job
    status_url = _status_url(request, job.id)
    body = JobAccepted(
        job_id=job.id, tenant_id=job.tenant_id, status=job.status, status_url=status_url
    )
    warn_if_tenant_generated(request, job.tenant_id)
    headers = {**context_headers(request), "Location": status_url}
    if submitted.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=200 if submitted.replayed else 202,
        headers=headers,
    )


@router.get(
    "/batch/jobs/{job_id}",
    name="get_job",
    response_model=JobView,
    responses={
        200: TRANSCRIPT_CONTENT,
        **_JOB_ERRORS,
        400: {"model": ErrorResponse, "description": "A bad identity header or parameter."},
        409: {"model": ErrorResponse, "description": "A format asked of an unfinished job."},
        410: {"model": ErrorResponse, "description": "The result was deleted (retention)."},
    },
    summary="A job's state, progress and result, or its transcript in a format",
)
async def get_job(
    request: Request,
    job_id: str,
    context: ContextDep,
    jobs: JobsDep,
    events: EventsDep,
    webhooks: WebhooksDep,
    response: Response,
    format: Annotated[
        str | None,
        Query(
            description=f"json (the job, default), {FORMAT_NAMES.split(', ', 1)[1]}.",
            json_schema_extra={"enum": FORMAT_NAMES.split(", ")},
        ),
    ] = None,
    response_format: Annotated[
        str | None,
        Query(
            description="The same as `format`, by the form field's name.",
            json_schema_extra={"enum": FORMAT_NAMES.split(", ")},
        ),
    ] = None,
) -> JobView | Response:
    """The job as JSON; with `format` (or `response_format`) text, srt, vtt or verbose_json,
    a completed job's transcript in that format (409 while it is not completed)."""
    refuse_unknown_query(request, GET_JOB_QUERY)
    fmt = requested_format(request, names=("format", "response_format"))
    job = await jobs.get(job_id, context.tenant_id)
    response.headers["X-Interaction-ID"] = context.interaction_id
    if fmt is ResponseFormat.JSON:
        return await _view(jobs, events, webhooks, job)
    if job.status is not JobStatus.COMPLETED:
        raise ResultNotReadyError(
            f"The job is {job.status}, so it has no transcript to give as {fmt}. "
            + (
                "Poll it without `format` until it is completed."
                if not job.finished
                else "Only a completed job has a transcript; see its `error`."
            )
        )
    result = await jobs.result(job)
    if result is None:
        raise ResultGoneError(
            "This job's transcript was deleted (results are kept RETENTION_DAYS days). "
            "Submit the recording again."
        )
    return transcript_response(fmt, result, {"X-Interaction-ID": context.interaction_id})


@router.get(
    "/batch/jobs",
    response_model=JobList,
    responses={400: {"model": ErrorResponse, "description": "A bad cursor or parameter."}},
    summary="The tenant's jobs, newest first",
    dependencies=[_no_query(LIST_QUERY)],
)
async def list_jobs(
    context: ContextDep,
    jobs: JobsDep,
    webhooks: WebhooksDep,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobList:
    """Without the results and callback attempts (GET a job for those); `next_cursor` leads
    to older jobs."""
    page = await jobs.page(context.tenant_id, status=status, limit=limit, cursor=cursor)
    with_callback = [job.id for job in page.jobs if job.callback_url]
    found = await anyio.to_thread.run_sync(webhooks.deliveries, with_callback)
    return JobList(
        jobs=[job_view(job, callback=callback_view(job, found.get(job.id))) for job in page.jobs],
        next_cursor=page.next_cursor,
    )


@router.delete(
    "/batch/jobs/{job_id}",
    response_model=JobView,
    responses={
        **_JOB_ERRORS,
        409: {"model": ErrorResponse, "description": "The job already ended."},
    },
    summary="Cancel a queued or running job",
    dependencies=[_no_query(frozenset())],
)
async def cancel_job(job_id: str, context: ContextDep, jobs: JobsDep) -> JobView:
    """A running job's worker is stopped within a few seconds; no event is published and no
    callback sent for a cancelled job."""
    job = await jobs.cancel(job_id, context.tenant_id)
    return job_view(job, callback=callback_view(job, None))
