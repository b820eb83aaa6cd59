"""`POST /batch/process`: upload audio, get raw and cleaned transcripts, queue the event."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from batchscribe.http.deps import BatchDep, ContextDep, SettingsDep
from batchscribe.http.identity import context_headers
from batchscribe.http.schemas import (
    ERROR_RESPONSES,
    BatchProcessResponse,
    CleaningInfo,
    EventDelivery,
)
from batchscribe.http.upload import PROCESS_FIELDS, UploadLimits, receive_upload
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
    summary="Transcribe an uploaded recording",
)
async def process_batch_audio(
    request: Request, context: ContextDep, settings: SettingsDep, batch: BatchDep
) -> JSONResponse:
    """Transcribe the uploaded file into speaker turns, clean it, and queue the
    `BatchProcessingCompleted` event. Identity comes from `X-Tenant-ID`, `X-User-ID` and
    `X-Account-ID` (optional)."""

    receive = partial(
        receive_upload, request, UploadLimits.from_settings(settings), accepted=PROCESS_FIELDS
    )
    result = await batch.process(context, receive)
    body = BatchProcessResponse(
        raw_transcript=result.transcript.raw_text,
        cleaned_transcript=result.cleaning.text,
        interaction_id=context.interaction_id,
        tenant_id=context.tenant_id,
        user_id=context.user_id,
        account_id=context.account_id,
        duration_seconds=round(result.transcript.duration_seconds, 3),
        event=EventDelivery.model_validate(result.event),
        cleaning=CleaningInfo.model_validate(result.cleaning.as_response()),
    )
    return JSONResponse(body.model_dump(mode="json"), headers=context_headers(request))
