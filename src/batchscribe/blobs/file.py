"""The blob store in a local directory (`BLOB_STORE=file://...`), the one-machine default.

Each key is a file under the root, its `/` segments directories. A put streams into a hidden
temporary file beside the target, fsyncs it, renames it over the target and fsyncs the
directory: a blob is either wholly there or not at all, even across a crash. Deleting a blob
also removes the directories it leaves empty, so finished jobs leave no trace.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from batchscribe.blobs.base import (
    CHUNK_SIZE,
    BlobStore,
    HashingReader,
    StoredBlob,
    atomic_file,
    fsync_directory,
    validate_key,
)
from batchscribe.blobs.exceptions import (
    BlobNotFoundError,
    BlobStoreError,
    BlobStoreUnavailableError,
    InvalidBlobKeyError,
)

# A concurrent delete may remove a directory between our mkdir and our temporary file.
_MKDIR_ATTEMPTS = 3


class FileBlobStore(BlobStore):
    """Blobs as files under `root` (created on first write)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()

    def __repr__(self) -> str:
        return f"FileBlobStore({str(self.root)!r})"

    def uri_for(self, key: str) -> str:
        return self._path(key).as_uri()

    def put_stream(self, key: str, stream: BinaryIO) -> StoredBlob:
        target = self._path(key)
        reader = HashingReader(stream)
        with self._translated("write", key):
            self._make_parent(target, key)
            with atomic_file(target, durable=True) as out:
                # Reading the caller's stream is outside the translation: its errors are its own.
                while chunk := _read_outside(reader):
                    out.write(chunk)
        return StoredBlob(key=key, uri=target.as_uri(), size=reader.size, sha256=reader.sha256)

    def download(self, key: str, path: str | os.PathLike[str]) -> int:
        destination = Path(path)
        size = 0
        with self.open(key) as source, atomic_file(destination, durable=False) as out:
            while chunk := self._read(source, key):
                out.write(chunk)
                size += len(chunk)
        return size

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        with self._translated("read", key):
            return path.open("rb")

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._translated("delete", key):
            try:
                path.unlink()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return  # nothing stored under this key: deleting is idempotent
            fsync_directory(path.parent)
        self._prune(path.parent)

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        if not path.is_file():
            raise BlobNotFoundError(f"no blob {key!r} in {self.root}", key)
        return path

    def exists(self, key: str) -> bool:
        path = self._path(key)
        with self._translated("check", key):
            return path.is_file()

    def check_writable(self) -> None:
        probe = self.root / f".probe-{uuid.uuid4().hex}"
        payload = b"batchscribe blob store probe"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with atomic_file(probe, durable=True) as out:
                out.write(payload)
            if probe.read_bytes() != payload:
                raise OSError(errno.EIO, "the probe read back different bytes")
        except OSError as exc:
            raise BlobStoreUnavailableError(
                f"the blob store directory {self.root} is not writable ({_reason(exc)}); check "
                "free space, permissions and the mount, or point BLOB_STORE elsewhere"
            ) from exc
        finally:
            with contextlib.suppress(OSError):  # the root may not even be a directory
                probe.unlink(missing_ok=True)

    # -- helpers ---------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def _make_parent(self, target: Path, key: str) -> None:
        for attempt in range(_MKDIR_ATTEMPTS):
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                return
            except (FileExistsError, NotADirectoryError) as exc:
                if self.root.is_dir():  # a blob is in the way inside the store
                    raise _conflict(key) from exc
                raise  # the store's own directory is blocked: translated as unavailable
            except FileNotFoundError:
                if attempt == _MKDIR_ATTEMPTS - 1:
                    raise

    def _prune(self, directory: Path) -> None:
        """Remove `directory` and its parents up to the root while they are empty."""
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return  # not empty (or already gone): either way, nothing more to prune
            directory = directory.parent

    def _read(self, source: BinaryIO, key: str) -> bytes:
        with self._translated("read", key):
            return source.read(CHUNK_SIZE)

    @contextlib.contextmanager
    def _translated(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except _CallerStreamError as exc:
            raise exc.original from exc.original.__cause__
        except BlobStoreError:
            raise
        except (FileNotFoundError, IsADirectoryError) as exc:
            if action == "write":
                raise BlobStoreUnavailableError(
                    f"the blob store directory {self.root} vanished while writing {key!r}; "
                    "check that BLOB_STORE points at a mounted, stable directory"
                ) from exc
            raise BlobNotFoundError(f"no blob {key!r} in {self.root}", key=key) from exc
        except NotADirectoryError as exc:
            if action != "write":  # a blob stands where this key's folder would be
                raise BlobNotFoundError(f"no blob {key!r} in {self.root}", key=key) from exc
            raise self._unavailable(action, key, exc) from exc
        except OSError as exc:
            raise self._unavailable(action, key, exc) from exc

    def _unavailable(self, action: str, key: str, exc: OSError) -> BlobStoreUnavailableError:
        return BlobStoreUnavailableError(
            f"the blob store directory {self.root} could not {action} {key!r} "
            f"({_reason(exc)}); check free space, permissions and the mount"
        )


class _CallerStreamError(Exception):
    """Carries an error of the caller's source stream through the store's translation."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


def _read_outside(reader: HashingReader) -> bytes:
    try:
        return reader.read(CHUNK_SIZE)
    except Exception as exc:
        raise _CallerStreamError(exc) from exc


def _conflict(key: str) -> InvalidBlobKeyError:
    return InvalidBlobKeyError(
        f"blob key {key!r} collides with another key: in a file store a key cannot be both a "
        "blob and the folder of other blobs"
    )


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
