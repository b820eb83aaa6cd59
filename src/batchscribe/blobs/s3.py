"""The blob store in an S3 bucket (`BLOB_STORE=s3://bucket/prefix`), for several machines.

Puts and downloads are boto3's managed transfers: multipart above 8 MiB, several parts in
flight, each part streamed. The source of a put is read once, front to back, through a hashing
reader, so memory stays at a few parts whatever the blob's size. `S3_ENDPOINT_URL` (or
`AWS_ENDPOINT_URL`) points the client at an S3-compatible store or the local emulator.

Retries are botocore's `standard` mode (3 attempts with jittered backoff); what still fails
leaves as a `blobs.exceptions` error whose message names the bucket, the endpoint and the fix.
"""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path
from typing import Any, BinaryIO, cast

from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    NoCredentialsError,
    PartialCredentialsError,
)
from s3transfer.exceptions import RetriesExceededError  # type: ignore[import-untyped]

from batchscribe.aws.clients import make_session
from batchscribe.blobs.base import (
    CHUNK_SIZE,
    BlobStore,
    HashingReader,
    StoredBlob,
    atomic_file,
    validate_key,
)
from batchscribe.blobs.exceptions import (
    BlobNotFoundError,
    BlobStoreError,
    BlobStoreUnavailableError,
)
from batchscribe.config import Settings, get_settings

# S3's smallest part: a put holds about four parts in memory (two read ahead, and copies).
PART_SIZE = 5 * 1024 * 1024
TRANSFER_CONCURRENCY = 4

_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED_CODES = frozenset({"AccessDenied", "403", "AllAccessDisabled", "Forbidden"})
_CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
    }
)
_CREDENTIAL_ERRORS = (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)
_BUSY_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling"}
)


def make_s3_client(settings: Settings) -> Any:
    """The S3 client the blob store uses when none is injected: the default credential chain
    (or the keys in Settings), `AWS_REGION`, and `S3_ENDPOINT_URL` (else `AWS_ENDPOINT_URL`)."""
    endpoint = settings.s3_endpoint_url or settings.aws_endpoint_url
    session = make_session(settings, settings.aws_region)
    region = settings.aws_region
    return session.client("s3", region_name=region, endpoint_url=endpoint, config=_config(endpoint))


def _config(endpoint: str | None) -> Config:
    return Config(
        retries={"total_max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        # S3-compatible stores and the emulator are addressed by path, not by bucket hostname.
        s3={"addressing_style": "path"} if endpoint else None,
        max_pool_connections=TRANSFER_CONCURRENCY * 2,
        user_agent_extra="batchscribe-blobs",
    )


def transfer_config() -> TransferConfig:
    """Managed-transfer settings that bound memory: at most two parts of a put are read ahead
    (the reader is not seekable, so s3transfer buffers parts it has read), a few in flight."""
    config = TransferConfig(
        multipart_threshold=PART_SIZE,
        multipart_chunksize=PART_SIZE,
        max_concurrency=TRANSFER_CONCURRENCY,
        max_io_queue=16,
        io_chunksize=256 * 1024,
        use_threads=True,
        preferred_transfer_client="classic",
    )
    config.max_in_memory_upload_chunks = 2
    return config


class S3BlobStore(BlobStore):
    """Blobs as objects `prefix + key` in `bucket` (the bucket must exist)."""

    shared = True

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any = None,
        settings: Settings | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self._client = client if client is not None else make_s3_client(settings or get_settings())
        self._transfer = transfer_config()

    def __repr__(self) -> str:
        return f"S3BlobStore('s3://{self.bucket}/{self.prefix}')"

    @property
    def endpoint_url(self) -> str:
        return str(getattr(self._client.meta, "endpoint_url", "AWS S3"))

    def uri_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._object_key(key)}"

    def put_stream(self, key: str, stream: BinaryIO) -> StoredBlob:
        name = self._object_key(key)
        reader = HashingReader(stream)
        try:
            self._client.upload_fileobj(reader, self.bucket, name, Config=self._transfer)
        except (ClientError, BotoCoreError, RetriesExceededError) as exc:
            raise self._translate(exc, "s3:PutObject", key) from exc
        return StoredBlob(key=key, uri=self.uri_for(key), size=reader.size, sha256=reader.sha256)

    def download(self, key: str, path: str | os.PathLike[str]) -> int:
        name = self._object_key(key)
        destination = Path(path)
        with atomic_file(destination, durable=False) as out:
            try:
                self._client.download_fileobj(self.bucket, name, out, Config=self._transfer)
            except (ClientError, BotoCoreError, RetriesExceededError) as exc:
                raise self._translate(exc, "s3:GetObject", key) from exc
            out.flush()
            return os.fstat(out.fileno()).st_size

    def open(self, key: str) -> BinaryIO:
        name = self._object_key(key)
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=name)
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "s3:GetObject", key) from exc
        raw = _ObjectReader(response["Body"], self, key)
        return cast(BinaryIO, io.BufferedReader(raw, buffer_size=CHUNK_SIZE))

    def delete(self, key: str) -> None:
        # S3 answers 204 for a missing key too, so this is idempotent as it stands.
        name = self._object_key(key)
        try:
            self._client.delete_object(Bucket=self.bucket, Key=name)
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "s3:DeleteObject", key) from exc

    def exists(self, key: str) -> bool:
        name = self._object_key(key)
        try:
            self._client.head_object(Bucket=self.bucket, Key=name)
        except (ClientError, BotoCoreError) as exc:
            error = self._translate(exc, "s3:GetObject", key)
            if isinstance(error, BlobNotFoundError):
                return False
            raise error from exc
        return True

    def check_writable(self) -> None:
        name = f"{self.prefix}.probe/{uuid.uuid4().hex}"
        try:
            self._client.put_object(Bucket=self.bucket, Key=name, Body=b"probe")
            self._client.delete_object(Bucket=self.bucket, Key=name)
        except (ClientError, BotoCoreError) as exc:
            error = self._translate(exc, "s3:PutObject", name)
            if isinstance(error, BlobStoreUnavailableError):
                raise error from exc
            raise BlobStoreUnavailableError(f"the blob store cannot take writes: {error}") from exc

    # -- helpers ---------------------------------------------------------------------------

    def _object_key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _translate(self, exc: Exception, action: str, key: str) -> BlobStoreError:
        """The blob-store error for a botocore or s3transfer failure of `action` on `key`."""
        inner: Exception = exc
        if isinstance(exc, RetriesExceededError) and isinstance(exc.last_exception, Exception):
            inner = exc.last_exception
        where = f"s3://{self.bucket}/{self.prefix}"
        if isinstance(inner, ClientError):
            error = inner.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(inner.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if code in _MISSING_CODES:
                return BlobNotFoundError(f"no blob {key!r} in {where}", key=key)
            if code == "NoSuchBucket":
                return BlobStoreUnavailableError(
                    f"the bucket {self.bucket!r} does not exist at {self.endpoint_url}; create "
                    "it (the provisioner's --with-bucket) or fix BLOB_STORE"
                )
            if code in _CREDENTIAL_CODES:
                return BlobStoreUnavailableError(
                    f"S3 at {self.endpoint_url} rejected the credentials ({code}); check "
                    "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN"
                )
            if code in _DENIED_CODES:
                return BlobStoreUnavailableError(
                    f"S3 denied {action} on {where}; grant s3:PutObject, s3:GetObject and "
                    f"s3:DeleteObject on arn:aws:s3:::{self.bucket}/{self.prefix}* to the "
                    "service's credentials"
                )
            if code in _BUSY_CODES or status >= 500:
                return BlobStoreUnavailableError(
                    f"S3 at {self.endpoint_url} kept failing {action} on {where} with "
                    f"{code or status} after retries; it is throttling or unavailable, try again "
                    "shortly"
                )
            message = str(error.get("Message", "")) or code
            return BlobStoreError(f"S3 {action} of {key!r} in {where} failed ({code}): {message}")
        if isinstance(inner, _CREDENTIAL_ERRORS):
            return BlobStoreUnavailableError(
                "no usable AWS credentials for the S3 blob store; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or run with an IAM role), or use a "
                "file:// BLOB_STORE on one machine"
            )
        return BlobStoreUnavailableError(
            f"could not reach S3 at {self.endpoint_url} for {action} on {where} "
            f"({type(inner).__name__}); check the network, AWS_REGION and S3_ENDPOINT_URL"
        )


class _ObjectReader(io.RawIOBase):
    """An object's body read in chunks as it arrives; network errors become blob errors."""

    def __init__(self, body: Any, store: S3BlobStore, key: str) -> None:
        self._body = body
        self._store = store
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._body.read(len(view))
        except (ClientError, BotoCoreError) as exc:
            raise self._store._translate(exc, "s3:GetObject", self._key) from exc
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()
