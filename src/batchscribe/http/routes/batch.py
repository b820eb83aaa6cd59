"""`POST /batch/process`: upload audio, get raw and cleaned transcripts, queue the event."""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from batchscribe.http.deps import EventsDep, PoolDep, SettingsDep, TranscriptionDep
from batchscribe.http.identity import get_request_context
from batchscribe.http.schemas import ERROR_RESPONSES, BatchProcessResponse, CleaningInfo
from batchscribe.http.upload import receive_upload

logger = logging.getLogger(__name__)
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
                            "description": "WAV, MP3, FLAC, M4A, OGG, Opus or WebM audio.",
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
    request: Request,
    settings: SettingsDep,
    pool: PoolDep,
    transcription: TranscriptionDep,
    events: EventsDep,
) -> JSONResponse:
    """Transcribe the uploaded file into speaker turns, clean it, and queue the
    `BatchProcessingCompleted` event. Identity comes from `X-Tenant-ID`, `X-User-ID` and
    `X-Account-ID` (optional)."""
    context = get_request_context(request)
    started = time.perf_counter()
    async with pool.slot():
        upload = await receive_upload(request, settings.max_upload_bytes, settings.upload_dir)
        logger.info(
            "upload received",
            extra={"bytes": upload.size, "content_type": upload.content_type},
        )
        try:
            result = await transcription.process(
                upload.path, context.interaction_id, settings.transcriber
            )
        finally:
            upload.cleanup()
    raw, cleaned = result.transcript.raw_text, result.cleaning.text
    # The outbox write is a short SQLite transaction; keep it off the event loop anyway.
    event = await anyio.to_thread.run_sync(events.record, context, raw, cleaned)
    body = BatchProcessResponse(
        raw_transcript=raw,
        cleaned_transcript=cleaned,
        interaction_id=context.interaction_id,
        tenant_id=context.tenant_id,
        user_id=context.user_id,
        account_id=context.account_id,
        duration_seconds=round(result.transcript.duration_seconds, 3),
        event=event,
        cleaning=CleaningInfo.model_validate(result.cleaning.as_response()),
    )
    headers = {"X-Interaction-ID": context.interaction_id}
    if request.state.context_warnings:
        headers["X-Warning"] = "; ".join(request.state.context_warnings)
    logger.info(
        "batch processed",
        extra={
            "audio_seconds": body.duration_seconds,
            "elapsed_seconds": round(time.perf_counter() - started, 3),
            "event_status": event.get("status"),
        },
    )
    return JSONResponse(body.model_dump(mode="json"), headers=headers)
