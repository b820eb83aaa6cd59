"""BLOB_STORE: the forms the service understands, checked at startup, and what each opens."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from batchscribe.blobs import (
    BlobStoreConfigError,
    FileBlobStore,
    open_blob_store,
    parse_blob_store,
)
from batchscribe.blobs.s3 import S3BlobStore
from batchscribe.config import Settings


def test_the_default_is_a_directory_under_the_working_directory(tmp_path: Path) -> None:
    assert Settings().blob_store == "file://var/blobs"
    location = parse_blob_store("file://var/blobs", cwd=tmp_path)
    assert (location.scheme, location.root) == ("file", tmp_path / "var" / "blobs")


def test_an_absolute_directory(tmp_path: Path) -> None:
    store = open_blob_store(Settings(blob_store=f"file://{tmp_path}/blobs"))
    assert isinstance(store, FileBlobStore)
    assert store.root == tmp_path / "blobs"
    assert store.uri_for("a/b") == f"file://{tmp_path}/blobs/a/b"


@pytest.mark.parametrize(
    ("value", "bucket", "prefix"),
    [
        ("s3://media-bucket", "media-bucket", ""),
        ("s3://media-bucket/", "media-bucket", ""),
        ("s3://media.bucket-2/batchscribe/prod", "media.bucket-2", "batchscribe/prod"),
        ("s3://media-bucket/batchscribe/prod/", "media-bucket", "batchscribe/prod"),
    ],
)
def test_a_bucket_with_an_optional_prefix(value: str, bucket: str, prefix: str) -> None:
    location = parse_blob_store(value)
    assert (location.scheme, location.bucket, location.prefix) == ("s3", bucket, prefix)
    store = open_blob_store(Settings(blob_store=value), s3_client=object())
    assert isinstance(store, S3BlobStore)
    assert store.uri_for("uploads/x") == f"s3://{bucket}/{prefix + '/' if prefix else ''}uploads/x"


@pytest.mark.parametrize(
    "value",
    [
        "var/blobs",
        "/srv/blobs",
        "file://",
        "s3://",
        "s3://Upper-Case",
        "s3://ab",
        "s3://bucket_with_underscore/p",
        "gs://bucket/prefix",
        "https://bucket.s3.amazonaws.com/prefix",
    ],
)
def test_anything_else_fails_at_startup_naming_the_forms(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BLOB_STORE", value)
    with pytest.raises(ValidationError, match=r"file://PATH.*s3://BUCKET"):
        Settings()
    with pytest.raises(BlobStoreConfigError):
        parse_blob_store(value)


@pytest.mark.parametrize("prefix", ["../other-tenant", "a/./b", "a//b", "sp ace"])
def test_a_prefix_that_could_escape_is_refused(prefix: str) -> None:
    with pytest.raises(BlobStoreConfigError, match="bad prefix"):
        parse_blob_store(f"s3://media-bucket/{prefix}")


def test_s3_endpoint_url_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_ENDPOINT_URL", "http://127.0.0.1:4566")
    assert Settings().s3_endpoint_url == "http://127.0.0.1:4566"
