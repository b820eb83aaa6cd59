"""`response_format` and the query parameters of the transcript routes, checked and answered in
one place.

A route names the query parameters it takes; any other is refused with 400 `unknown_parameter`
naming the accepted ones, so a misspelt `?fromat=srt` is never silently answered in JSON. The
transcript itself is rendered by `pipeline/render.py`; this module only picks the format and
wraps the text in a response with its media type.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from batchscribe.http.exceptions import ParameterError
from batchscribe.jobs.results import JobResult
from batchscribe.pipeline import render
from batchscribe.pipeline.render import MEDIA_TYPES, ResponseFormat

FORMAT_NAMES = ", ".join(f.value for f in ResponseFormat)


def _listed(names: Collection[str]) -> str:
    return ", ".join(f"`{name}`" for name in sorted(names)) if names else "none"


def refuse_unknown_query(request: Request, accepted: Collection[str]) -> None:
    """`ParameterError` (400 `unknown_parameter`) for a query parameter not in `accepted`, or
    one given twice."""
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name not in accepted:
            raise ParameterError(
                f"The query parameter {name[:40]!r} is not accepted here. Accepted: "
                f"{_listed(accepted)}.",
                "unknown_parameter",
                param=name[:40],
            )
        if name in seen:
            raise ParameterError(
                f"The query parameter {name!r} was given more than once. Give it once.",
                "duplicate_parameter",
                param=name,
            )
        seen.add(name)


def parse_format(value: str | None, param: str = "response_format") -> ResponseFormat:
    """A `response_format` value (json when absent or empty), or `ParameterError` listing the
    formats."""
    if value is None or not value.strip():
        return ResponseFormat.JSON
    try:
        return ResponseFormat(value.strip().lower())
    except ValueError:
        raise ParameterError(
            f"{param} {value[:40]!r} is not a format this service writes. Use one of: "
            f"{FORMAT_NAMES}.",
            "invalid_response_format",
            param=param,
        ) from None


def requested_format(
    request: Request, form: Mapping[str, str] | None = None, names: Sequence[str] = ()
) -> ResponseFormat:
    """The format asked for under any of `names`, in the query or the form (json when none);
    two places naming different formats is a 400 rather than a guess."""
    given: list[tuple[str, str]] = []
    for name in names:
        for where, source in (("query", request.query_params), ("form", form or {})):
            value = (source.get(name) or "").strip().lower()
            if value:
                given.append((f"{name} ({where})", value))
    values = {value for _, value in given}
    if len(values) > 1:
        shown = ", ".join(f"{where}={value!r}" for where, value in given)
        raise ParameterError(
            f"The request asks for two formats ({shown[:160]}). Ask for one.",
            "conflicting_response_format",
            param=names[0] if names else None,
        )
    return parse_format(values.pop() if values else None, names[0] if names else "response_format")


def transcript_response(
    fmt: ResponseFormat,
    result: JobResult,
    headers: Mapping[str, str],
    json_body: Any = None,
) -> Response:
    """The transcript in `fmt`: `json_body` for json, else the rendered text or verbose JSON."""
    if fmt is ResponseFormat.JSON:
        return JSONResponse(json_body, headers=dict(headers))
    if fmt is ResponseFormat.VERBOSE_JSON:
        return JSONResponse(
            render.to_verbose_json(result.transcript, result.cleaning), headers=dict(headers)
        )
    if fmt is ResponseFormat.TEXT:
        text = render.to_text(result.cleaning)
    elif fmt is ResponseFormat.SRT:
        text = render.to_srt(result.transcript, result.cleaning)
    else:
        text = render.to_vtt(result.transcript, result.cleaning)
    return PlainTextResponse(text, media_type=MEDIA_TYPES[fmt], headers=dict(headers))
