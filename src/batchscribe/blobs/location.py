"""`BLOB_STORE` parsed, and the store it names opened.

file://var/blobs             a directory relative to the working directory (the default)
file:///srv/batchscribe      an absolute directory
s3://bucket                  a whole bucket
s3://bucket/some/prefix      objects under `some/prefix/` in the bucket
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchscribe.blobs.base import BlobStore, validate_key
from batchscribe.blobs.exceptions import BlobStoreConfigError, InvalidBlobKeyError
from batchscribe.blobs.file import FileBlobStore
from batchscribe.config import Settings, get_settings

# S3's bucket naming rules (lowercase letters, digits, dots and hyphens; 3 to 63 characters).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_FORMS = "file://PATH (file://var/blobs, file:///srv/blobs) or s3://BUCKET[/PREFIX]"


@dataclass(frozen=True)
class BlobLocation:
    """Where BLOB_STORE points: a directory (`root`) or a bucket and key prefix."""

    scheme: str
    root: Path | None = None
    bucket: str | None = None
    prefix: str = ""


def parse_blob_store(value: str, *, cwd: Path | None = None) -> BlobLocation:
    """The location `value` names; a relative `file://` path is taken from `cwd` (default: the
    working directory). BlobStoreConfigError for anything else."""
    text = value.strip()
    if text.startswith("file://"):
        path = text.removeprefix("file://")
        if not path:
            raise BlobStoreConfigError(f"BLOB_STORE={value!r} names no directory; use {_FORMS}")
        root = Path(path)
        if not root.is_absolute():
            root = (cwd or Path.cwd()) / root
        return BlobLocation(scheme="file", root=root)
    if text.startswith("s3://"):
        bucket, _, prefix = text.removeprefix("s3://").partition("/")
        if not _BUCKET.fullmatch(bucket):
            raise BlobStoreConfigError(
                f"BLOB_STORE={value!r}: {bucket!r} is not a valid S3 bucket name (3 to 63 "
                "lowercase letters, digits, dots and hyphens); use s3://BUCKET[/PREFIX]"
            )
        prefix = prefix.strip("/")
        if prefix:
            try:
                validate_key(prefix)
            except InvalidBlobKeyError as exc:
                raise BlobStoreConfigError(f"BLOB_STORE={value!r}: bad prefix: {exc}") from exc
        return BlobLocation(scheme="s3", bucket=bucket, prefix=prefix)
    raise BlobStoreConfigError(f"BLOB_STORE={value!r} is not understood; use {_FORMS}")


def open_blob_store(settings: Settings | None = None, *, s3_client: Any = None) -> BlobStore:
    """The store BLOB_STORE names. `s3_client` is used instead of building one (tests inject an
    emulator client); nothing is contacted until the first operation."""
    settings = settings or get_settings()
    location = parse_blob_store(settings.blob_store)
    if location.root is not None:
        return FileBlobStore(location.root)
    assert location.bucket is not None
    # boto3 is imported only by deployments that store in S3.
    from batchscribe.blobs.s3 import S3BlobStore

    return S3BlobStore(location.bucket, location.prefix, client=s3_client, settings=settings)
