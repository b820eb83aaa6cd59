"""Streams a multipart upload to a temporary file, enforcing the size limit while reading.

Content-Length is never trusted and the body is never held in memory: bytes go from the socket
through python-multipart's streaming parser straight to disk, and reading stops as soon as the
count passes the limit.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from batchscribe.http.exceptions import UploadError, UploadTooLargeError
from batchscribe.pipeline.formats import ACCEPTED_EXTENSIONS, ACCEPTED_SENTENCE

FILE_FIELD = "file"
# Non-file form fields are tiny; anything bigger is abuse.
_MAX_OTHER_FIELD_BYTES = 64 * 1024


@dataclass
class ReceivedUpload:
    """An upload safely on disk. `cleanup()` deletes it; call it in `finally`."""

    path: Path
    filename: str
    content_type: str | None
    size: int
    #: The small form fields sent beside the file (name -> text), for the route to validate.
    fields: dict[str, str] = field(default_factory=dict)

    def cleanup(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def check_filename(filename: str) -> str:
    """Validate the client's file name: an accepted extension, or none at all (we decode anyway).

    Returns the base name (any path the client sent is dropped).
    """
    name = PurePath(filename.replace("\\", "/")).name
    suffix = PurePath(name).suffix.lower()
    if suffix and suffix not in ACCEPTED_EXTENSIONS:
        raise UploadError(
            f"Files ending in {suffix[:16]!r} are not supported. Upload {ACCEPTED_SENTENCE} audio.",
            code="unsupported_extension",
        )
    return name


@dataclass
class _PartState:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    is_file: bool = False
    filename: str = ""
    content_type: str | None = None
    name: str = ""
    value: bytearray = field(default_factory=bytearray)


class _UploadSink:
    """python-multipart callbacks writing the `file` part to disk."""

    def __init__(self, max_bytes: int, directory: Path | None) -> None:
        self.max_bytes = max_bytes
        fd, name = tempfile.mkstemp(prefix="batchscribe-", suffix=".upload", dir=directory)
        self.path = Path(name)
        self.file = os.fdopen(fd, "wb")
        self.size = 0
        self.found = False
        self.filename = ""
        self.content_type: str | None = None
        self.part = _PartState()
        self.fields: dict[str, str] = {}
        self.complete = False  # set when the closing boundary arrives

    def on_part_begin(self) -> None:
        self.part = _PartState()

    def on_part_end(self) -> None:
        if not self.part.is_file and self.part.name:
            self.fields[self.part.name] = bytes(self.part.value).decode("utf-8", "replace")

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.part.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.part.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers[bytes(self.part.header_field).lower()] = bytes(self.part.header_value)
        self.part.header_field.clear()
        self.part.header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.part.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self.part.name = name[:64]
        if name == FILE_FIELD and b"filename" in options and not self.found:
            self.found = True
            self.part.is_file = True
            self.filename = check_filename(options[b"filename"].decode("utf-8", "replace"))
            ctype = self.part.headers.get(b"content-type")
            self.content_type = ctype.decode("latin-1")[:128] if ctype else None

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.is_file:
            self.size += end - start
            if self.size > self.max_bytes:
                raise UploadTooLargeError(_too_large(self.max_bytes))
            self.file.write(data[start:end])
        else:
            self.part.value += data[start:end]
            if len(self.part.value) > _MAX_OTHER_FIELD_BYTES:
                raise UploadError(
                    "A form field other than `file` is too large. Send only the `file` field.",
                    code="invalid_form",
                )

    def on_end(self) -> None:
        self.complete = True

    def callbacks(self) -> dict[str, object]:
        return {
            "on_end": self.on_end,
            "on_part_begin": self.on_part_begin,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
        }

    def discard(self) -> None:
        self.file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _too_large(max_bytes: int) -> str:
    limit_mb = max_bytes / (1024 * 1024)
    return (
        f"The file is larger than the {limit_mb:g} MB limit. Upload a shorter recording, "
        "compress it (for example to MP3 or Opus), or split it into parts."
    )


async def receive_upload(
    request: Request, max_bytes: int, directory: Path | None = None
) -> ReceivedUpload:
    """Read the multipart body of `request` and store its `file` part in a temporary file.

    Raises `UploadError` (400) for a body that is not multipart, has no `file` field or an empty
    one, or names an unsupported extension; `UploadTooLargeError` (413) past `max_bytes`.
    """
    ctype, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise UploadError(
            "Send the audio as multipart/form-data with the file in a field named `file`, "
            "for example: curl -F file=@meeting.wav ...",
            code="missing_file",
        )
    sink = _UploadSink(max_bytes, directory)
    try:
        parser = MultipartParser(boundary, sink.callbacks())  # type: ignore[arg-type]
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
        sink.file.close()
        if not sink.complete:
            raise MultipartParseError("the body ended before the closing boundary")
    except (MultipartParseError, ClientDisconnect) as exc:
        sink.discard()
        raise UploadError(
            "The multipart body could not be read (truncated or malformed). Send the file again "
            "as multipart/form-data in a field named `file`.",
            code="malformed_body",
        ) from exc
    except BaseException:
        sink.discard()
        raise
    if not sink.found:
        sink.discard()
        raise UploadError(
            "No file was sent. Put the audio in a multipart form field named `file`.",
            code="missing_file",
        )
    if sink.size == 0:
        sink.discard()
        raise UploadError(
            "The uploaded file is empty. Choose a recording that contains audio.",
            code="empty_file",
        )
    return ReceivedUpload(sink.path, sink.filename, sink.content_type, sink.size, sink.fields)


def reject_unknown_fields(upload: ReceivedUpload, accepted: frozenset[str]) -> None:
    """400 for a form field the endpoint does not know (the upload's file is deleted)."""
    unknown = sorted(set(upload.fields) - accepted)
    if unknown:
        upload.cleanup()
        raise UploadError(
            f"Unknown form field {unknown[0][:64]!r}. This endpoint accepts: "
            f"{', '.join(sorted(accepted))}.",
            code="unknown_field",
        )
