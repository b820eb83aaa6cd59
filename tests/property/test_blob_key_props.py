"""No key, however it is built, names a file outside the blob store's directory, and every key
the store accepts maps to exactly one file and one S3 object."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given

from batchscribe.blobs import FileBlobStore, InvalidBlobKeyError, validate_key
from batchscribe.blobs.s3 import S3BlobStore
from tests.strategies import hostile_keys, safe_keys

ROOT = Path("/srv/batchscribe/blobs")
FILE_STORE = FileBlobStore(ROOT)
S3_STORE = S3BlobStore("bucket", "prefix", client=object())


@given(hostile_keys())
def test_an_accepted_key_never_leaves_the_store(key: str) -> None:
    try:
        validate_key(key)
    except InvalidBlobKeyError:
        return
    path = Path(FILE_STORE.uri_for(key).removeprefix("file://"))
    assert os.path.normpath(path) == str(path), "the path would be rewritten by the OS"
    assert ROOT in path.parents
    assert S3_STORE.uri_for(key) == f"s3://bucket/prefix/{key}"


@given(safe_keys())
def test_the_application_s_keys_are_accepted_unchanged(key: str) -> None:
    assert validate_key(key) == key
    assert FILE_STORE.uri_for(key) == (ROOT / key).as_uri()
