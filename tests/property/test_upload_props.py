"""Upload validation over random names, sizes and chunkings: the streamed file is exactly what
was sent, or the right error is raised, and nothing is left on disk after an error."""

from __future__ import annotations

import asyncio
from pathlib import Path, PurePath

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from batchscribe.http.exceptions import UploadError, UploadTooLargeError
from batchscribe.http.upload import ACCEPTED_EXTENSIONS, receive_upload
from tests.strategies import file_stems, upload_extensions

BOUNDARY = "----batchscribe-test-boundary"
LIMIT = 4096


def multipart(filename: str, data: bytes, field: str = "file") -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


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


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    stem=file_stems(),
    ext=upload_extensions(),
    size=st.one_of(st.integers(0, 64), st.integers(LIMIT - 64, LIMIT + 64)),
    chunk=st.integers(1, 5000),
)
def test_upload_outcome(tmp_path: Path, stem: str, ext: str, size: int, chunk: int) -> None:
    data = bytes((i * 7) % 256 for i in range(size))
    filename = stem + ext
    request = make_request(multipart(filename, data), chunk)
    suffix = PurePath(filename).suffix.lower()
    bad_ext = suffix != "" and suffix not in ACCEPTED_EXTENSIONS

    async def run() -> object:
        return await receive_upload(request, LIMIT, tmp_path)

    if bad_ext:
        with pytest.raises(UploadError) as info:
            asyncio.run(run())
        assert info.value.code == "unsupported_extension"
    elif size > LIMIT:
        with pytest.raises(UploadTooLargeError):
            asyncio.run(run())
    elif size == 0:
        with pytest.raises(UploadError) as info:
            asyncio.run(run())
        assert info.value.code == "empty_file"
    else:
        upload = asyncio.run(run())
        assert upload.path.read_bytes() == data  # type: ignore[attr-defined]
        assert upload.size == size  # type: ignore[attr-defined]
        upload.cleanup()  # type: ignore[attr-defined]
    assert list(tmp_path.iterdir()) == [], "no temporary file may be left behind"


def test_client_path_in_filename_is_dropped(tmp_path: Path) -> None:
    request = make_request(multipart("../../etc/passwd.wav", b"abc"), 10)
    upload = asyncio.run(receive_upload(request, LIMIT, tmp_path))
    assert upload.filename == "passwd.wav"
    assert upload.path.parent == tmp_path
    upload.cleanup()
