"""Upload validation over random names, sizes, chunkings and forms: the streamed file is exactly
what was sent, or the right error is raised, and nothing is left on disk after an error."""

from __future__ import annotations

import asyncio
from pathlib import Path, PurePath

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from batchscribe.http.exceptions import UploadError, UploadTooLargeError
from batchscribe.http.upload import (
    ACCEPTED_EXTENSIONS,
    MAX_FIELD_BYTES,
    ReceivedUpload,
    UploadLimits,
    receive_upload,
)
from tests.strategies import JOB_FORM_FIELDS, FormPart, file_stems, form_parts, upload_extensions

BOUNDARY = "----batchscribe-test-boundary"
LIMIT = 4096
JOB_FIELDS = frozenset({"file", *JOB_FORM_FIELDS})


def encode_form(parts: list[FormPart], epilogue: bytes = b"") -> bytes:
    body = b""
    for part in parts:
        disposition = f'form-data; name="{part.name}"'
        if part.filename is not None:
            disposition += f'; filename="{part.filename}"'
        body += (
            (
                f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + part.data
            + b"\r\n"
        )
    return body + f"--{BOUNDARY}--\r\n".encode() + epilogue


def multipart(filename: str, data: bytes, field: str = "file") -> bytes:
    return encode_form([FormPart(field, data, filename)])


def make_request(body: bytes, chunk: int) -> Request:
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]
    messages = [
        {"type": "http.request", "body": p, "more_body": i < len(pieces) - 1}
        for i, p in enumerate(pieces)
    ]

    async def receive() -> dict[str, object]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/batch/process",
        # A lying Content-Length must not matter.
        "headers": [
            (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
            (b"content-length", b"10"),
        ],
    }
    return Request(scope, receive)  # type: ignore[arg-type]


def parsed_before_limit(body: bytes, chunk: int, limit: int) -> int:
    """How many bytes of `body` the reader hands to the parser before the limit stops it: the
    chunks that arrive while the running total is within `limit`."""
    total = 0
    for start in range(0, len(body), chunk):
        size = len(body[start : start + chunk])
        if total + size > limit:
            break
        total += size
    return total


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    stem=file_stems(),
    ext=upload_extensions(),
    size=st.one_of(st.integers(0, 64), st.integers(LIMIT - 300, LIMIT + 64)),
    chunk=st.integers(1, 5000),
    epilogue=st.sampled_from([b"", b"\r\n", b"x" * 500]),
)
def test_upload_outcome(
    tmp_path: Path, stem: str, ext: str, size: int, chunk: int, epilogue: bytes
) -> None:
    data = bytes((i * 7) % 256 for i in range(size))
    filename = stem + ext
    body = encode_form([FormPart("file", data, filename)], epilogue)
    request = make_request(body, chunk)
    suffix = PurePath(filename).suffix.lower()
    bad_ext = suffix != "" and suffix not in ACCEPTED_EXTENSIONS
    # The extension is judged once the part's headers are parsed; the size of the whole body,
    # epilogue included, as the pieces arrive.
    head_length = body.index(b"\r\n\r\n") + 4

    async def run() -> ReceivedUpload:
        return await receive_upload(request, UploadLimits(max_bytes=LIMIT, directory=tmp_path))

    if bad_ext and head_length <= parsed_before_limit(body, chunk, LIMIT):
        with pytest.raises(UploadError) as info:
            asyncio.run(run())
        assert info.value.code == "unsupported_extension"
    elif len(body) > LIMIT:
        with pytest.raises(UploadTooLargeError):
            asyncio.run(run())
    elif size == 0:
        with pytest.raises(UploadError) as info:
            asyncio.run(run())
        assert info.value.code == "empty_file"
    else:
        upload = asyncio.run(run())
        assert upload.path.read_bytes() == data
        assert upload.size == size
        upload.cleanup()
    assert list(tmp_path.iterdir()) == [], "no temporary file may be left behind"


def expected_form_outcome(parts: list[FormPart], accepted: frozenset[str], max_parts: int) -> str:
    """The error code the reader must raise for `parts`, or "ok": the first offending part
    decides, in the order the parts arrive."""
    seen: set[str] = set()
    for index, part in enumerate(parts, start=1):
        if index > max_parts:
            return "too_many_parts"
        if part.name not in accepted:
            return "unknown_field"
        if part.name in seen:
            return "duplicate_field"
        seen.add(part.name)
        if part.name != "file" and len(part.data) > MAX_FIELD_BYTES:
            return "field_too_large"
    files = [part for part in parts if part.name == "file"]
    if not files:
        return "missing_file"
    return "empty_file" if not files[0].data else "ok"


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    parts=form_parts(),
    accepted=st.sampled_from([frozenset({"file"}), JOB_FIELDS]),
    max_parts=st.sampled_from([1, 4, 16]),
    chunk=st.sampled_from([7, 1000, 65536]),
)
def test_form_fields_parts_and_names_are_bounded(
    tmp_path: Path,
    parts: list[FormPart],
    accepted: frozenset[str],
    max_parts: int,
    chunk: int,
) -> None:
    request = make_request(encode_form(parts), chunk)
    limits = UploadLimits(max_bytes=10 * 1024 * 1024, max_parts=max_parts, directory=tmp_path)
    expected = expected_form_outcome(parts, accepted, max_parts)

    async def run() -> ReceivedUpload:
        return await receive_upload(request, limits, accepted)

    if expected == "ok":
        upload = asyncio.run(run())
        file_part = next(part for part in parts if part.name == "file")
        assert upload.path.read_bytes() == file_part.data
        assert upload.fields == {
            part.name: part.data.decode() for part in parts if part.name != "file"
        }
        upload.cleanup()
    else:
        with pytest.raises(UploadError) as info:
            asyncio.run(run())
        assert info.value.code == expected
        if expected == "unknown_field":
            # The answer names every field the endpoint accepts.
            assert all(f"`{name}`" in str(info.value) for name in accepted)
    assert list(tmp_path.iterdir()) == [], "no temporary file may be left behind"


def test_client_path_in_filename_is_dropped(tmp_path: Path) -> None:
    request = make_request(multipart("../../etc/passwd.wav", b"abc"), 10)
    upload = asyncio.run(receive_upload(request, UploadLimits(LIMIT, directory=tmp_path)))
    assert upload.filename == "passwd.wav"
    assert upload.path.parent == tmp_path
    upload.cleanup()
