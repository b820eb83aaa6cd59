"""`POST /batch/process`: upload audio, wait for its job, get raw and cleaned transcripts (JSON),
or the transcript as text, SRT, WebVTT or verbose JSON (`response_format`)."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from batchscribe.http.deps import ContextDep, EventsDep, JobsDep, SettingsDep
from batchscribe.http.formats import (
    FORMAT_NAMES,
    refuse_unknown_query,
    requested_format,
    transcript_response,
)
from batchscribe.http.identity import context_headers
from batchscribe.http.schemas import ERROR_RESPONSES, TRANSCRIPT_CONTENT, BatchProcessResponse
from batchscribe.http.upload import FILE_FIELD, UploadLimits, receive_upload
from batchscribe.http.views import result_view
from batchscribe.pipeline.formats import ACCEPTED_SENTENCE

#: The form fields of `POST /batch/process`, and its query parameters.
PROCESS_FIELDS = frozenset({FILE_FIELD, "language", "response_format"})
PROCESS_QUERY = frozenset({"response_format"})

router = APIRouter(tags=["batch"])

_MULTIPART_BODY: dict[str, Any] = {
    "parameters": [
        {
            "name": "response_format",
            "in": "query",
            "required": False,
            "description": "The same as the form field (give one or the other).",
            "schema": {"type": "string", "enum": FORMAT_NAMES.split(", ")},
        }
    ],
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
                            "description": "BCP-47 language of the recording (e.g. en); 400 "
                            "unsupported_language when the engine cannot do it.",
                        },
                        "response_format": {
                            "type": "string",
                            "enum": FORMAT_NAMES.split(", "),
                            "default": "json",
                            "description": "json (the result below), text (the cleaned "
                            "transcript), srt, vtt or verbose_json. Also accepted as a query "
                            "parameter.",
                        },
                    },
                }
            }
        },
    },
}


@router.post(
    "/batch/process",
    response_model=BatchProcessResponse,
    responses={200: TRANSCRIPT_CONTENT, **ERROR_RESPONSES},
    openapi_extra=_MULTIPART_BODY,
    summary="Transcribe an uploaded recording and wait for the result",
)
async def process_batch_audio(
    request: Request,
    context: ContextDep,
    settings: SettingsDep,
    jobs: JobsDep,
    events: EventsDep,
) -> Response:
    """Transcribe the uploaded file into speaker turns, clean it, and queue the
    `BatchProcessingCompleted` event: a job the request waits for (at most
    MAX_SYNC_AUDIO_SECONDS of audio; longer recordings go to `POST /batch/jobs`). Identity comes
    from `X-Tenant-ID`, `X-User-ID` and `X-Account-ID` (optional). `response_format` (form field
    or query) picks the answer: the JSON below, or the transcript as text, srt, vtt or
    verbose_json."""
    refuse_unknown_query(request, PROCESS_QUERY)
    upload = await receive_upload(
        request, UploadLimits.from_settings(settings), accepted=PROCESS_FIELDS
    )
    try:
        fmt = requested_format(request, upload.fields, ("response_format",))
    except BaseException:
        upload.cleanup()
        raise
    job, result = await jobs.process(
        context, upload, request.is_disconnected, language=upload.fields.get("language")
    )
    event = await anyio.to_thread.run_sync(events.delivery, job.id)
    body = result_view(job, result, event)
    return transcript_response(
        fmt, result, context_headers(request), json_body=body.model_dump(mode="json")
    )
