"""`POST /batch/process`: upload audio, wait for its job, get raw and cleaned transcripts."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from batchscribe.http.deps import ContextDep, EventsDep, JobsDep, SettingsDep
from batchscribe.http.identity import context_headers
from batchscribe.http.schemas import ERROR_RESPONSES, BatchProcessResponse
from batchscribe.http.upload import PROCESS_FIELDS, UploadLimits, receive_upload
from batchscribe.http.views import result_view
from batchscribe.pipeline.formats import ACCEPTED_SENTENCE

router = APIRouter(tags=["batch"])

_MULTIPART_BODY: dict[str, Any] = {
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
                        }
                    },
                }
            }
        },
    }
}


@router.post(
    "/batch/process",
    response_model=BatchProcessResponse,
    responses=ERROR_RESPONSES,
    openapi_extra=_MULTIPART_BODY,
    summary="Transcribe an uploaded recording and wait for the result",
)
async def process_batch_audio(
    request: Request,
    context: ContextDep,
    settings: SettingsDep,
    jobs: JobsDep,
    events: EventsDep,
) -> JSONResponse:
    """Transcribe the uploaded file into speaker turns, clean it, and queue the
    `BatchProcessingCompleted` event: a job the request waits for (at most
    MAX_SYNC_AUDIO_SECONDS of audio; longer recordings go to `POST /batch/jobs`). Identity comes
    from `X-Tenant-ID`, `X-User-ID` and `X-Account-ID` (optional)."""
    upload = await receive_upload(
        request, UploadLimits.from_settings(settings), accepted=PROCESS_FIELDS
    )
    job, result = await jobs.process(context, upload, request.is_disconnected)
    event = await anyio.to_thread.run_sync(events.delivery, job.id)
    body = result_view(job, result, event)
    return JSONResponse(body.model_dump(mode="json"), headers=context_headers(request))
