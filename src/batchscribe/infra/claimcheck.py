"""Following a claim check (SPEC 14): the transcripts of an event too large for EventBridge.

Such an event carries `data_ref: {uri, bytes, sha256}` instead of `data`; the document at `uri`
is the JSON `{"data": {"cleaned_transcript", "raw_transcript"}}`. A reader trusts it only once
its size and SHA-256 match the reference, so a replaced or truncated document is never taken for
the event's transcripts. Errors name the document, never its content.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from botocore.exceptions import BotoCoreError
from pydantic import ValidationError

from batchscribe.aws.clients import AWSCaller
from batchscribe.aws.exceptions import AWSAccessDeniedError, AWSError, AWSRequestError
from batchscribe.events.schema import DataRef, EventData
from batchscribe.infra import iam
from batchscribe.infra.exceptions import ClaimCheckError

#: The largest document a reader accepts: far above any transcript (ten hours of speech is
#: about 1 MB of text), low enough that a bad reference cannot make a consumer read gigabytes.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "404", "NotFound"})


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` as (bucket, key); ClaimCheckError for anything else."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise ClaimCheckError(f"data_ref.uri {uri!r} is not an s3://BUCKET/KEY URI")
    return bucket, key


def check_document(ref: DataRef, document: bytes) -> EventData:
    """The transcripts in `document`, once it matches `ref`'s size and SHA-256 and the shape."""
    if len(document) != ref.bytes:
        raise ClaimCheckError(
            f"the claim-check document {ref.uri} has {len(document)} bytes, the event says "
            f"{ref.bytes}: it is not the document this event refers to"
        )
    if hashlib.sha256(document).hexdigest() != ref.sha256:
        raise ClaimCheckError(
            f"the SHA-256 of the claim-check document {ref.uri} differs from the event's: it is "
            "not the document this event refers to"
        )
    try:
        parsed: Any = json.loads(document)
        if not isinstance(parsed, dict) or "data" not in parsed:
            raise ClaimCheckError(
                f'the claim-check document {ref.uri} is not a JSON object with "data"'
            )
        return EventData.model_validate(parsed["data"])
    except ValueError as exc:  # not JSON, or (ValidationError) not the transcripts' shape
        if isinstance(exc, ValidationError):
            fields = ", ".join(
                ".".join(str(part) for part in error["loc"]) or "data" for error in exc.errors()
            )
            detail = f"its data does not match the event schema ({fields})"
        else:
            detail = "it is not JSON"
        raise ClaimCheckError(f"the claim-check document {ref.uri}: {detail}") from exc


class ClaimCheckReader:
    """Reads claim-check documents with an S3 client (from `tool_clients`, or injected)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.caller = AWSCaller(
            iam.CONSUMER_S3_ACTIONS, policy_hint="docs/iam/consumer-policy.json"
        )

    def fetch(self, ref: DataRef) -> EventData:
        """The transcripts `ref` points at, checked; ClaimCheckError saying what is wrong."""
        bucket, key = split_s3_uri(ref.uri)
        if ref.bytes > MAX_DOCUMENT_BYTES:
            raise ClaimCheckError(
                f"data_ref says {ref.bytes} bytes, more than a transcript document can be "
                f"({MAX_DOCUMENT_BYTES}); not read"
            )
        try:
            response = self.caller.call(self.client, "get_object", Bucket=bucket, Key=key)
        except AWSAccessDeniedError as exc:
            raise ClaimCheckError(
                f"the claim-check document {ref.uri} could not be read: {exc} (S3 also answers "
                "AccessDenied for a missing document when the reader may not list the bucket)"
            ) from exc
        except AWSRequestError as exc:
            if exc.code in _MISSING_CODES:
                raise ClaimCheckError(
                    f"the claim-check document {ref.uri} does not exist (deleted after the "
                    "retention period, or never written)"
                ) from exc
            raise ClaimCheckError(f"the claim-check document {ref.uri}: {exc}") from exc
        except AWSError as exc:
            raise ClaimCheckError(
                f"the claim-check document {ref.uri} could not be read: {exc}"
            ) from exc
        body = response["Body"]
        try:
            # One byte more than announced: enough to tell a longer document from the right one.
            document = bytes(body.read(ref.bytes + 1))
        except (BotoCoreError, OSError) as exc:  # a connection lost half-way, a read timeout
            raise ClaimCheckError(
                f"reading the claim-check document {ref.uri} failed ({type(exc).__name__}); "
                "it is read again next time"
            ) from exc
        finally:
            body.close()
        return check_document(ref, document)
