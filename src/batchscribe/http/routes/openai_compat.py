"""OpenAI's transcription API, served by batchscribe (SPEC 15), so the official OpenAI SDKs work
with `base_url=<batchscribe>/v1` and a batchscribe key as their API key:

    POST /v1/audio/transcriptions   multipart `file`, `model`, `language`, `prompt`,
                                    `response_format` (json|text|srt|vtt|verbose_json),
                                    `temperature`, `timestamp_granularities[]`
    GET  /v1/models                 the engine this server transcribes with, as OpenAI lists models
    GET  /v1/models/{model}         one of them

A transcription is a synchronous job, exactly like `POST /batch/process`: the same upload and
audio limits (MAX_SYNC_AUDIO_SECONDS), authentication, per-tenant limits, language check and
`BatchProcessingCompleted` event. Only the shapes are OpenAI's: `json` answers
`{"text": <cleaned transcript>}`, `verbose_json` OpenAI's verbose object (segments by default,
words with `timestamp_granularities[]=word`), errors `{"error": {"message", "type", "param",
"code"}}` (`http/errors.py` answers so for every path under `/v1/`).

`model` is required, as OpenAI requires it, and any name is accepted: the server's engine
(`TRANSCRIBER`) transcribes whatever the client names, so code written for `whisper-1` works
unchanged. `prompt` and `temperature` are validated as OpenAI does and otherwise not used: none
of the engines here takes a prompt, and the cleaner's temperature is the operator's
(`OPENAI_TEMPERATURE`).
"""

from __future__ import annotations

import math
import time
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from batchscribe.http.deps import ContextDep, EventsDep, JobsDep, SettingsDep
from batchscribe.http.exceptions import ModelNotFoundError, ParameterError
from batchscribe.http.formats import (
    FORMAT_NAMES,
    parse_format,
    refuse_unknown_query,
    transcript_response,
)
from batchscribe.http.identity import context_headers
from batchscribe.http.schemas import (
    TRANSCRIPT_CONTENT,
    OpenAIModel,
    OpenAIModelList,
    OpenAITranscription,
    openai_errors,
)
from batchscribe.http.upload import FILE_FIELD, ReceivedUpload, UploadLimits, receive_upload
from batchscribe.pipeline import render
from batchscribe.pipeline.formats import ACCEPTED_SENTENCE
from batchscribe.pipeline.render import ResponseFormat

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

GRANULARITIES_FIELD = "timestamp_granularities[]"
TRANSCRIPTION_FIELDS = frozenset(
    {FILE_FIELD, "model", "language", "prompt", "response_format", "temperature",
     GRANULARITIES_FIELD}
)  # fmt: skip
GRANULARITIES = ("segment", "word")
MAX_MODEL_NAME = 256
#: `created` of the listed models: when this server process started (Unix seconds).
STARTED = int(time.time())

_TRANSCRIPTION_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "model"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": f"{ACCEPTED_SENTENCE} audio.",
                        },
                        "model": {
                            "type": "string",
                            "description": "Any name (whisper-1 works): this server's engine "
                            "transcribes; GET /v1/models lists it.",
                        },
                        "language": {
                            "type": "string",
                            "description": "BCP-47 / ISO 639-1 language, e.g. en.",
                        },
                        "prompt": {"type": "string", "description": "Accepted, not used."},
                        "response_format": {
                            "type": "string",
                            "enum": FORMAT_NAMES.split(", "),
                            "default": "json",
                        },
                        "temperature": {
                            "type": "number",
                            "minimum": 0,
                            "maximum": 1,
                            "description": "Accepted (0 to 1), not used.",
                        },
                        GRANULARITIES_FIELD: {
                            "type": "array",
                            "items": {"type": "string", "enum": list(GRANULARITIES)},
                            "description": "With verbose_json: segment (default) and/or word.",
                        },
                    },
                }
            }
        },
    }
}


def _model(upload: ReceivedUpload) -> str:
    name = upload.fields.get("model", "").strip()
    if not name:
        raise ParameterError(
            "You must provide a model parameter (any name works, e.g. whisper-1: this server "
            "transcribes with its own engine; GET /v1/models lists it).",
            "missing_required_parameter",
            param="model",
        )
    if len(name) > MAX_MODEL_NAME:
        raise ParameterError(
            f"The model name is longer than {MAX_MODEL_NAME} characters. Send a shorter one.",
            "invalid_value",
            param="model",
        )
    return name


def _temperature(upload: ReceivedUpload) -> None:
    raw = upload.fields.get("temperature")
    if raw is None or not raw.strip():
        return
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:  # NaN fails too
        raise ParameterError(
            f"temperature {raw[:20]!r} is not a number from 0 to 1. Send one, or leave it out.",
            "invalid_value",
            param="temperature",
        )


def _granularities(upload: ReceivedUpload, fmt: ResponseFormat) -> set[str]:
    values = [v.strip() for v in upload.lists.get(GRANULARITIES_FIELD, []) if v.strip()]
    unknown = [v for v in values if v not in GRANULARITIES]
    if unknown:
        raise ParameterError(
            f"timestamp_granularities[] {unknown[0][:20]!r} is not one of: segment, word.",
            "invalid_value",
            param=GRANULARITIES_FIELD,
        )
    if values and fmt is not ResponseFormat.VERBOSE_JSON:
        raise ParameterError(
            "timestamp_granularities[] needs response_format verbose_json. Ask for "
            "verbose_json, or leave the granularities out.",
            "invalid_value",
            param=GRANULARITIES_FIELD,
        )
    return set(values) or {"segment"}


@router.post(
    "/audio/transcriptions",
    response_model=OpenAITranscription,
    responses={
        200: {
            **TRANSCRIPT_CONTENT,
            "content": {
                **TRANSCRIPT_CONTENT["content"],
                "application/json": {
                    "schema": {
                        "anyOf": [
                            {"$ref": "#/components/schemas/OpenAITranscription"},
                            {"$ref": "#/components/schemas/OpenAIVerboseTranscription"},
                        ]
                    }
                },
            },
        },
        **openai_errors(400, 401, 403, 408, 413, 422, 429, 503),
    },
    openapi_extra=_TRANSCRIPTION_BODY,
    summary="Transcribe audio, as OpenAI's transcription API does",
)
async def create_transcription(
    request: Request,
    context: ContextDep,
    settings: SettingsDep,
    jobs: JobsDep,
    events: EventsDep,
) -> Response:
    """OpenAI's `POST /v1/audio/transcriptions`, answered by this server's engine and cleaner:
    the text is the cleaned transcript. Runs as a synchronous job (MAX_SYNC_AUDIO_SECONDS) and
    publishes the same event as `POST /batch/process`."""
    refuse_unknown_query(request, frozenset())
    upload = await receive_upload(
        request,
        UploadLimits.from_settings(settings),
        accepted=TRANSCRIPTION_FIELDS,
        repeatable={GRANULARITIES_FIELD},
    )
    try:
        _model(upload)
        _temperature(upload)
        fmt = parse_format(upload.fields.get("response_format"))
        granularities = _granularities(upload, fmt)
    except BaseException:
        upload.cleanup()
        raise
    job, result = await jobs.process(
        context, upload, request.is_disconnected, language=upload.fields.get("language")
    )
    # The event's state is not part of OpenAI's answer, but reading it keeps the same
    # "delivery is known before the answer" order as the other routes.
    await anyio.to_thread.run_sync(events.delivery, job.id)
    headers = context_headers(request)
    if fmt is ResponseFormat.VERBOSE_JSON:
        body = render.to_verbose_json(result.transcript, result.cleaning)
        if "segment" not in granularities:
            body.pop("segments", None)
        if "word" not in granularities:
            body.pop("words", None)
        elif "words" not in body:
            body["words"] = []  # asked for, but the engine gave no word times
        return JSONResponse(body, headers=headers)
    return transcript_response(fmt, result, headers, json_body={"text": result.cleaned_transcript})


def _models(settings: Any) -> list[OpenAIModel]:
    return [OpenAIModel(id=settings.transcriber, created=STARTED)]


@router.get(
    "/models",
    response_model=OpenAIModelList,
    responses=openai_errors(400, 401, 429),
    summary="The engine this server transcribes with, as OpenAI lists models",
)
async def list_models(
    request: Request, context: ContextDep, settings: SettingsDep
) -> OpenAIModelList:
    """One model: the configured engine (sphinx, deepgram or openai). Any `model` name works
    for a transcription; this says which engine will do it."""
    refuse_unknown_query(request, frozenset())
    return OpenAIModelList(data=_models(settings))


@router.get(
    "/models/{model}",
    response_model=OpenAIModel,
    responses=openai_errors(400, 401, 404, 429),
    summary="One model of GET /v1/models",
)
async def retrieve_model(
    request: Request, model: str, context: ContextDep, settings: SettingsDep
) -> OpenAIModel:
    refuse_unknown_query(request, frozenset())
    for entry in _models(settings):
        if entry.id == model:
            return entry
    raise ModelNotFoundError(
        f"The model {model[:60]!r} does not exist here. This server transcribes with "
        f"{settings.transcriber!r}; GET /v1/models lists it."
    )
