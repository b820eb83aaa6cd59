"""Errors of the blob store.

    BlobStoreError
    ├── BlobStoreConfigError       BLOB_STORE is not a form we understand
    ├── InvalidBlobKeyError        a key that could escape the store or is not in the safe set
    ├── BlobNotFoundError          no blob under that key (it was never written, or was deleted)
    └── BlobStoreUnavailableError  the store cannot serve now: network, 5xx, throttling, missing
                                   bucket, denied permission, full or read-only disk

Backend errors (OSError, botocore's ClientError) are translated into these inside the store, so
callers never see a backend type. Messages say what the operator should do and never contain
credentials or blob contents.
"""

from __future__ import annotations


class BlobStoreError(Exception):
    """Base class of every error raised by the blob store."""


class BlobStoreConfigError(BlobStoreError, ValueError):
    """BLOB_STORE is neither `file://PATH` nor `s3://BUCKET[/PREFIX]`."""


class InvalidBlobKeyError(BlobStoreError, ValueError):
    """The key is absolute, contains `..` or `.`-segments, or characters outside the safe set."""


class BlobNotFoundError(BlobStoreError):
    """No blob is stored under the key."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


class BlobStoreUnavailableError(BlobStoreError):
    """The store could not be reached or refused to work; the message says what to fix."""
