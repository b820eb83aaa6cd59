"""Reads a multipart upload to a temporary file, bounding every cost while the body arrives.

Content-Length is never trusted and the body is never held in memory: bytes go from the socket
through python-multipart's streaming parser straight to disk. While reading, the reader enforces
the request limits of `UploadLimits` (SPEC section 11):

- every byte of the body counts against MAX_UPLOAD_MB (preamble, all parts, epilogue); reading
  stops at the limit (413, connection closed);
- at most MAX_FORM_PARTS parts, only the fields the endpoint accepts, each once (400 naming the
  accepted fields) unless the endpoint lets it repeat (OpenAI's `timestamp_granularities[]`);
  the small non-file fields come back as text of at most `MAX_FIELD_BYTES`;
- UPLOAD_IDLE_TIMEOUT_SECONDS between two pieces of the body and UPLOAD_TIMEOUT_SECONDS for all
  of it (408, connection closed);
- at most MAX_CONCURRENT_UPLOADS uploads read at once in this process (`UploadGate`; 503 +
  Retry-After), counted apart from transcription capacity;
- a file that cannot be written (disk full, directory gone) is 503 `storage_unavailable`.

Temporary files are named `batchscribe-<pid>-<random>.upload`, so the next start of a server that
was killed mid-upload recognises and removes what it left behind (`sweep_leftover_uploads`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import time
from collections.abc import AsyncGenerator, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import BinaryIO

import anyio
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from batchscribe.config import Settings
from batchscribe.http.exceptions import (
    TooManyUploadsError,
    UploadError,
    UploadStorageError,
    UploadTimeoutError,
    UploadTooLargeError,
)
from batchscribe.pipeline.formats import ACCEPTED_EXTENSIONS, ACCEPTED_SENTENCE

logger = logging.getLogger(__name__)

FILE_FIELD = "file"
#: A form of the audio file alone (each route names the fields it accepts).
FILE_ONLY: frozenset[str] = frozenset({FILE_FIELD})
#: Largest value of a non-file form field (`language`, `callback_url`, `metadata`...).
MAX_FIELD_BYTES = 8192

TEMP_PREFIX = "batchscribe-"
TEMP_SUFFIX = ".upload"
# `batchscribe-<pid>-<random>.upload`; files of older versions had no pid.
_TEMP_NAME = re.compile(r"batchscribe-(?:(\d+)-)?[A-Za-z0-9_]+\.upload")


@dataclass(frozen=True, slots=True)
class UploadLimits:
    """The bounds one upload is read under (see the module docstring)."""

    max_bytes: int
    max_parts: int = 16
    idle_timeout: float = 30.0
    total_timeout: float = 900.0
    directory: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> UploadLimits:
        return cls(
            max_bytes=settings.max_upload_bytes,
            max_parts=settings.max_form_parts,
            idle_timeout=settings.upload_idle_timeout_seconds,
            total_timeout=settings.upload_timeout_seconds,
            directory=settings.upload_dir,
        )


class UploadGate:
    """Counts the uploads this process is reading and refuses one past `capacity`.

    Separate from transcription capacity: a slow upload holds a place here, never an engine.
    The app factory puts one on `app.state.upload_gate`; `receive_upload` finds it there.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_progress = 0

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        if self.in_progress >= self.capacity:
            raise TooManyUploadsError(
                f"The server is already receiving {self.capacity} uploads. "
                "Send the file again in a few seconds."
            )
        self.in_progress += 1
        try:
            yield
        finally:
            self.in_progress -= 1


@dataclass
class ReceivedUpload:
    """An upload safely on disk, with the form's other fields. `cleanup()` deletes the file;
    call it in `finally`."""

    path: Path
    filename: str
    content_type: str | None
    size: int
    fields: dict[str, str] = field(default_factory=dict)
    #: Every value of a field the endpoint lets repeat, in order.
    lists: dict[str, list[str]] = field(default_factory=dict)

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


def _accepted_sentence(accepted: Collection[str]) -> str:
    return ", ".join(f"`{name}`" for name in sorted(accepted))


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    name: str = ""
    is_file: bool = False
    value: bytearray = field(default_factory=bytearray)


class _FormReader:
    """python-multipart callbacks: the `file` part to a temporary file, the others to `fields`.

    python-multipart itself bounds each part's headers (8 headers of about 4 kB).
    """

    def __init__(
        self, limits: UploadLimits, accepted: Collection[str], repeatable: Collection[str] = ()
    ) -> None:
        self.limits = limits
        self.accepted = accepted
        self.repeatable = repeatable
        self.parts = 0
        self.seen: set[str] = set()
        self.part = _Part()
        self.path: Path | None = None
        self.file: BinaryIO | None = None
        self.size = 0
        self.filename = ""
        self.content_type: str | None = None
        self.fields: dict[str, str] = {}
        self.lists: dict[str, list[str]] = {}
        self.complete = False  # set when the closing boundary arrives

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > self.limits.max_parts:
            raise UploadError(
                f"The form has more than {self.limits.max_parts} parts. Send only the fields "
                f"this endpoint accepts: {_accepted_sentence(self.accepted)}.",
                code="too_many_parts",
            )
        self.part = _Part()

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
        if name not in self.accepted:
            shown = repr(name[:40]) if name else "without a name"
            raise UploadError(
                f"The form field {shown} is not accepted here. Send only: "
                f"{_accepted_sentence(self.accepted)}.",
                code="unknown_field",
                param=name[:40] or None,
            )
        if name in self.seen and name not in self.repeatable:
            raise UploadError(
                f"The form field {name!r} was sent more than once. Send it once.",
                code="duplicate_field",
                param=name,
            )
        self.seen.add(name)
        self.part.name = name
        if name == FILE_FIELD:
            self.part.is_file = True
            self.filename = check_filename(options.get(b"filename", b"").decode("utf-8", "replace"))
            ctype = self.part.headers.get(b"content-type")
            self.content_type = ctype.decode("latin-1")[:128] if ctype else None
            self._open_file()

    def _open_file(self) -> None:
        fd, name = tempfile.mkstemp(
            prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=TEMP_SUFFIX, dir=self.limits.directory
        )
        self.path = Path(name)
        self.file = os.fdopen(fd, "wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.is_file:
            assert self.file is not None
            self.size += end - start
            self.file.write(data[start:end])
        else:
            self.part.value += data[start:end]
            if len(self.part.value) > MAX_FIELD_BYTES:
                raise UploadError(
                    f"The form field {self.part.name!r} is longer than {MAX_FIELD_BYTES} bytes. "
                    "Send a shorter value.",
                    code="field_too_large",
                )

    def on_part_end(self) -> None:
        if self.part.is_file:
            return
        try:
            value = self.part.value.decode("utf-8")
        except UnicodeDecodeError:
            raise UploadError(
                f"The form field {self.part.name!r} is not valid UTF-8 text. Send it as UTF-8.",
                code="invalid_form",
            ) from None
        if self.part.name in self.repeatable:
            self.lists.setdefault(self.part.name, []).append(value)
        else:
            self.fields[self.part.name] = value

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

    def close_file(self) -> None:
        if self.file is not None:
            self.file.close()

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.close_file()
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def _too_large(max_bytes: int) -> str:
    limit_mb = max_bytes / (1024 * 1024)
    return (
        f"The upload is larger than the {limit_mb:g} MB limit. Upload a shorter recording, "
        "compress it (for example to MP3 or Opus), or split it into parts."
    )


def _boundary(request: Request) -> bytes:
    ctype, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise UploadError(
            "Send the audio as multipart/form-data with the file in a field named `file`, "
            "for example: curl -F file=@meeting.wav ...",
            code="missing_file",
        )
    return boundary


def _declared_length(request: Request) -> int | None:
    """Content-Length when it is a plain number: only used to refuse early, never trusted."""
    value = request.headers.get("content-length", "")
    return int(value) if value.isascii() and value.isdigit() else None


async def _chunks(request: Request, limits: UploadLimits) -> AsyncGenerator[bytes, None]:
    """The body's pieces, each within the idle timeout and all within the total timeout."""
    deadline = anyio.current_time() + limits.total_timeout
    stream = request.stream()
    try:
        while True:
            remaining = deadline - anyio.current_time()
            wait = min(limits.idle_timeout, remaining)
            try:
                with anyio.fail_after(max(wait, 0.0)):
                    chunk = await anext(stream)
            except StopAsyncIteration:
                return
            except TimeoutError:
                if wait < limits.idle_timeout:
                    raise UploadTimeoutError(
                        f"The upload took longer than {limits.total_timeout:g} s, so it was "
                        "stopped. Send a smaller file (compress it, for example to MP3 or "
                        "Opus) or use a faster connection."
                    ) from None
                raise UploadTimeoutError(
                    f"No data arrived for {limits.idle_timeout:g} s, so the upload was stopped. "
                    "Check the network connection and send the file again."
                ) from None
            yield chunk
    finally:
        await stream.aclose()


def _gate_of(request: Request) -> UploadGate | None:
    app = request.scope.get("app")
    gate = getattr(getattr(app, "state", None), "upload_gate", None)
    return gate if isinstance(gate, UploadGate) else None


async def receive_upload(
    request: Request,
    limits: UploadLimits,
    accepted: Collection[str] = FILE_ONLY,
    repeatable: Collection[str] = (),
) -> ReceivedUpload:
    """Read the multipart body of `request`: its `file` part to a temporary file, its other
    fields (names from `accepted`, which includes `file`) to `ReceivedUpload.fields`, and the
    values of fields named in `repeatable` (which may come several times) to `lists`.

    Raises `UploadError` (400) for a body that is not multipart, has no `file` field or an empty
    one, an unsupported extension, an unknown or repeated field, or too many parts;
    `UploadTooLargeError` (413), `UploadTimeoutError` (408), `TooManyUploadsError` (503) and
    `UploadStorageError` (503) as described in the module docstring.
    """
    form = _FormReader(limits, accepted, repeatable)
    try:
        boundary = _boundary(request)
        declared = _declared_length(request)
        if declared is not None and declared > limits.max_bytes:
            raise UploadTooLargeError(_too_large(limits.max_bytes))
        gate = _gate_of(request)
        with gate.admit() if gate else contextlib.nullcontext():
            await _read_form(request, boundary, form, limits)
    except BaseException:
        form.discard()
        raise
    if form.path is None:
        raise UploadError(
            "No file was sent. Put the audio in a multipart form field named `file`.",
            code="missing_file",
            param=FILE_FIELD,
        )
    if form.size == 0:
        form.discard()
        raise UploadError(
            "The uploaded file is empty. Choose a recording that contains audio.",
            code="empty_file",
        )
    return ReceivedUpload(
        form.path, form.filename, form.content_type, form.size, form.fields, form.lists
    )


async def _read_form(
    request: Request, boundary: bytes, form: _FormReader, limits: UploadLimits
) -> None:
    received = 0
    try:
        parser = MultipartParser(boundary, form.callbacks())  # type: ignore[arg-type]
        async with contextlib.aclosing(_chunks(request, limits)) as chunks:
            async for chunk in chunks:
                received += len(chunk)
                if received > limits.max_bytes:
                    raise UploadTooLargeError(_too_large(limits.max_bytes))
                # After the closing boundary the epilogue is only counted: the parser would
                # log a warning for every piece of it.
                if not form.complete:
                    parser.write(chunk)
        parser.finalize()
        form.close_file()
        if not form.complete:
            raise FormParserError("the body ended before the closing boundary")
    except (FormParserError, ClientDisconnect) as exc:
        raise UploadError(
            "The multipart body could not be read (truncated or malformed). Send the file again "
            "as multipart/form-data in a field named `file`.",
            code="malformed_body",
        ) from exc
    except OSError as exc:
        # Creating or writing the temporary file failed: the disk is full, the directory is
        # gone or not writable. The client can retry; the operator reads the log.
        raise UploadStorageError(
            f"cannot write an upload in {limits.directory or tempfile.gettempdir()}: "
            f"[{exc.errno}] {exc.strerror}"
        ) from exc


def prepare_upload_dir(directory: Path | None) -> None:
    """At startup: create UPLOAD_DIR when it is missing, and remove what servers killed
    mid-upload left in it (`sweep_leftover_uploads`)."""
    if directory is not None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            # Uploads will answer 503 storage_unavailable until the directory can be written.
            logger.warning(
                "cannot create the upload directory",
                extra={"error": f"[{exc.errno}] {exc.strerror}"},
            )
            return
    sweep_leftover_uploads(directory)


def sweep_leftover_uploads(directory: Path | None, started_at: float | None = None) -> int:
    """Delete temporary uploads that servers killed mid-upload left in `directory` (default: the
    system temp directory). Returns how many were removed.

    Only this module's files are touched (`batchscribe-<pid>-...upload`), only those last written
    before `started_at` (default: now), and never those of another server process that is still
    running (one sharing the directory may be receiving them right now).
    """
    folder = Path(directory or tempfile.gettempdir())
    cutoff = time.time() if started_at is None else started_at
    removed = 0
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        logger.warning(
            "cannot list the upload directory", extra={"error": f"[{exc.errno}] {exc.strerror}"}
        )
        return 0
    for path in entries:
        match = _TEMP_NAME.fullmatch(path.name)
        if match is None:
            continue
        pid = int(match.group(1)) if match.group(1) else None
        if pid is not None and pid != os.getpid() and _process_alive(pid):
            continue
        with contextlib.suppress(OSError):
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    if removed:
        logger.info("removed leftover temporary uploads", extra={"files": removed})
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
