"""The blob store's contract, shared by the local-directory and the S3 store.

A blob is a byte string under a key such as `uploads/<job_id>/audio`. Every transfer streams in
chunks: neither side ever holds a whole blob in memory, and the size and SHA-256 of what was
stored are computed while it streams. Keys come from a safe set (see `validate_key`) so that no
key can name something outside the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from batchscribe.blobs.exceptions import InvalidBlobKeyError

#: Bytes moved per read or write when streaming.
CHUNK_SIZE = 1024 * 1024
#: S3's limit on a key, kept for every store so a key valid on one is valid on all.
MAX_KEY_BYTES = 1024
# A segment starts with a letter, digit, `_` or `-`: never `.`, so neither `..` nor hidden
# names (the file store's temporary files start with a dot and can never collide with a key).
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def validate_key(key: str) -> str:
    """`key` unchanged when it is safe: `/`-separated segments of letters, digits, `.`, `_`
    and `-`, none empty or starting with `.`, at most 1024 bytes. Otherwise
    InvalidBlobKeyError, so `/etc/passwd`, `a/../../b` or `a\\b` never reach a backend."""
    if not isinstance(key, str) or not key:
        raise InvalidBlobKeyError("a blob key must be a non-empty string")
    shown = key if len(key) <= 80 else key[:77] + "..."
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidBlobKeyError(f"blob key {shown!r} is longer than {MAX_KEY_BYTES} bytes")
    for segment in key.split("/"):
        if not _SEGMENT.fullmatch(segment):
            raise InvalidBlobKeyError(
                f"blob key {shown!r} is not allowed: use relative '/'-separated names of "
                "letters, digits, '.', '_' and '-', with no empty, '.' or '..' segments"
            )
    return key


@dataclass(frozen=True)
class StoredBlob:
    """What a put stored: where (`key`, `uri`), how many bytes, and their SHA-256 (hex)."""

    key: str
    uri: str
    size: int
    sha256: str


class HashingReader:
    """A read-only, forward-only view of a binary stream that counts and hashes what is read.

    It says it is not seekable, so boto3's managed upload reads it once, front to back, in
    parts: the digest is then exactly the digest of what was uploaded.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if data:
            self._hash.update(data)
            self.size += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


@contextlib.contextmanager
def atomic_file(path: Path, *, durable: bool) -> Iterator[BinaryIO]:
    """A file opened for writing in `path`'s directory that becomes `path` only when the block
    ends without error; a failed or interrupted write leaves nothing at `path`.

    `durable` also fsyncs the file and its directory, so a blob that was reported stored
    survives a power cut (the store's own files); a scratch download does not need it.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            if durable:
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Persist a rename or unlink in `directory` (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore(ABC):
    """Where uploaded audio waits for its job, and where results too large to keep inline go.

    Implementations translate every backend error into the `blobs.exceptions` tree; errors of
    the caller's own local files (the source of a put, the destination of a download) are left
    as the OSError they are.
    """

    #: What it stores can be read by other services through `uri_for` (an S3 URI), so an
    #: event may point at a document here instead of carrying it.
    shared: bool = False

    @abstractmethod
    def put_stream(self, key: str, stream: BinaryIO) -> StoredBlob:
        """Store everything `stream` yields under `key` (replacing any blob there), streaming.
        A reader never sees a partly written blob."""

    def put_file(self, key: str, path: str | os.PathLike[str]) -> StoredBlob:
        """Store the local file at `path` under `key`, streaming it from disk."""
        validate_key(key)
        with open(path, "rb") as source:
            return self.put_stream(key, source)

    @abstractmethod
    def download(self, key: str, path: str | os.PathLike[str]) -> int:
        """Write the blob to the local file `path` (complete or not at all); its size."""

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """The blob as a binary stream to read in chunks; close it (use `with`)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the blob; deleting a missing blob is not an error."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether a blob is stored under `key`."""

    def local_path(self, key: str) -> Path | None:
        """The blob's own file when the store is a local directory (read it in place; never
        write to it), else None. Raises `BlobNotFoundError` when a local blob is missing."""
        validate_key(key)
        return None

    @abstractmethod
    def uri_for(self, key: str) -> str:
        """A stable URI naming the blob: `file:///abs/path/key` or `s3://bucket/prefix/key`."""

    @abstractmethod
    def check_writable(self) -> None:
        """Write, read back and delete a probe blob (for readiness); BlobStoreUnavailableError
        saying what to fix when the store cannot take writes."""
