"""Blob storage: uploaded audio until its job ends, and results too large to keep inline.

`open_blob_store(settings)` gives the store `BLOB_STORE` names: a local directory on one machine
(`FileBlobStore`), or an S3 bucket shared by several (`blobs.s3.S3BlobStore`, imported only
when `BLOB_STORE` is `s3://`, since boto3 costs every process about 25 MB). Both stream every
transfer and report the size and SHA-256 of what they stored. No web framework and no database
here.
"""

from batchscribe.blobs.base import BlobStore, StoredBlob, validate_key
from batchscribe.blobs.exceptions import (
    BlobNotFoundError,
    BlobStoreConfigError,
    BlobStoreError,
    BlobStoreUnavailableError,
    InvalidBlobKeyError,
)
from batchscribe.blobs.file import FileBlobStore
from batchscribe.blobs.location import BlobLocation, open_blob_store, parse_blob_store

__all__ = [
    "BlobLocation",
    "BlobNotFoundError",
    "BlobStore",
    "BlobStoreConfigError",
    "BlobStoreError",
    "BlobStoreUnavailableError",
    "FileBlobStore",
    "InvalidBlobKeyError",
    "StoredBlob",
    "open_blob_store",
    "parse_blob_store",
    "validate_key",
]
