"""The blob store's S3 bucket (SPEC 14): `batchscribe provision --with-bucket NAME`.

Like the other resources: an existing bucket is kept (and logged), a missing one is created in
the target's region, and its settings are checked against the contract (default encryption
SSE-S3, every public-access block on): differences are drift, corrected only with `reconcile`.
A dry run only reads.

botocore names S3's operations (HeadBucket, GetBucketEncryption...), while IAM authorises them
under other names (s3:ListBucket, s3:GetEncryptionConfiguration...); AccessDenied messages here
name the IAM action, which is what an operator has to grant.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from batchscribe.aws.clients import AWSCaller
from batchscribe.aws.exceptions import AWSAccessDeniedError, AWSRequestError
from batchscribe.blobs.exceptions import BlobStoreConfigError
from batchscribe.blobs.location import parse_blob_store
from batchscribe.config import Settings
from batchscribe.infra.contract import (
    BUCKET_ENCRYPTION,
    PUBLIC_ACCESS_BLOCK,
    Drift,
    ResourceOutcome,
    bucket_drift,
    create_bucket_arguments,
)
from batchscribe.infra.exceptions import ProvisioningError

logger = logging.getLogger(__name__)

#: botocore operation -> the IAM action S3 authorises it as.
S3_IAM_ACTIONS = {
    "head_bucket": "s3:ListBucket",
    "create_bucket": "s3:CreateBucket",
    "get_bucket_encryption": "s3:GetEncryptionConfiguration",
    "put_bucket_encryption": "s3:PutEncryptionConfiguration",
    "get_public_access_block": "s3:GetBucketPublicAccessBlock",
    "put_public_access_block": "s3:PutBucketPublicAccessBlock",
}
# HeadBucket has no body, so its errors carry the bare HTTP status as their code.
_BUCKET_MISSING_CODES = frozenset({"404", "NoSuchBucket", "NotFound"})
_NOT_CONFIGURED_CODES = frozenset(
    {"ServerSideEncryptionConfigurationNotFoundError", "NoSuchPublicAccessBlockConfiguration"}
)
# S3's naming rules: 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending
# with a letter or digit, no two dots in a row, not shaped like an IP address.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_LIKE = re.compile(r"\d+\.\d+\.\d+\.\d+")


def bucket_name_problem(name: str) -> str | None:
    """Why `name` cannot be an S3 bucket name, or None when it can."""
    if not _BUCKET_NAME.fullmatch(name) or ".." in name:
        return (
            f"{name!r} is not a valid S3 bucket name: use 3 to 63 lowercase letters, digits, "
            "dots and hyphens, starting and ending with a letter or digit"
        )
    if _IP_LIKE.fullmatch(name):
        return f"{name!r} is not a valid S3 bucket name: it must not look like an IP address"
    return None


def blob_store_for(settings: Settings, bucket: str | None) -> tuple[str | None, str]:
    """(bucket, key prefix) of the S3 blob store the service uses, for the IAM policies.

    `bucket` is `--with-bucket`'s; the prefix comes from BLOB_STORE when it names that bucket.
    Without `bucket`, an `s3://` BLOB_STORE still gives the policies their S3 statements.
    """
    try:
        location = parse_blob_store(settings.blob_store)
    except BlobStoreConfigError:
        location = None
    configured = location if location is not None and location.scheme == "s3" else None
    if bucket is None:
        return (configured.bucket, configured.prefix) if configured is not None else (None, "")
    if configured is not None and configured.bucket == bucket:
        return bucket, configured.prefix
    logger.info(
        "BLOB_STORE does not name bucket %s; point the service at it with "
        "BLOB_STORE=s3://%s[/PREFIX] (the policies printed assume no prefix)",
        bucket,
        bucket,
    )
    return bucket, ""


class BlobBucket:
    """Creates, checks and (with `reconcile`) repairs one bucket through `caller`."""

    def __init__(
        self,
        client: Any,
        name: str,
        region: str,
        *,
        caller: AWSCaller,
        reconcile: bool = False,
        dry_run: bool = False,
    ) -> None:
        self.client = client
        self.name = name
        self.region = region
        self.caller = caller
        self.reconcile = reconcile
        self.dry_run = dry_run

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return self.caller.call(self.client, operation, Bucket=self.name, **kwargs)
        except AWSAccessDeniedError as exc:
            raise self._denied(operation, exc.code) from exc
        except AWSRequestError as exc:
            if exc.code == "403":  # HeadBucket: no body, no error code
                raise self._denied(operation, exc.code) from exc
            raise

    def _denied(self, operation: str, code: str) -> AWSAccessDeniedError:
        action = S3_IAM_ACTIONS.get(operation, operation)
        needed = ", ".join(self.caller.required_actions) or action
        hint = f" ({self.caller.policy_hint})" if self.caller.policy_hint else ""
        message = f"AWS denied {action} on bucket {self.name!r}. "
        if operation == "head_bucket":
            message += (
                "Either the name belongs to another AWS account (bucket names are global: "
                "choose another with --with-bucket), or the caller lacks permissions. "
            )
        message += f"Grant these IAM actions to the caller: {needed}{hint}."
        return AWSAccessDeniedError(
            message,
            code=code,
            denied_action=action,
            required_actions=self.caller.required_actions or (action,),
        )

    def _optional(self, operation: str) -> dict[str, Any] | None:
        """The answer of a Get* call, or None when that setting is not configured at all."""
        try:
            return self._call(operation)
        except AWSRequestError as exc:
            if exc.code in _NOT_CONFIGURED_CODES:
                return None
            raise

    def exists(self) -> bool:
        """Whether the bucket exists and is ours to use."""
        try:
            answer = self._call("head_bucket")
        except AWSRequestError as exc:
            if exc.code in _BUCKET_MISSING_CODES:
                return False
            raise
        region = answer.get("BucketRegion")
        if region and region != self.region:
            logger.warning(
                "bucket %s is in %s, not %s; it works, but set AWS_REGION=%s on the service to "
                "avoid a redirect on every call",
                self.name,
                region,
                self.region,
                region,
            )
        return True

    def drift(self) -> list[Drift]:
        """The bucket's settings that differ from the contract."""
        encryption = self._optional("get_bucket_encryption")
        block = self._optional("get_public_access_block")
        return bucket_drift(
            None if encryption is None else encryption.get("ServerSideEncryptionConfiguration"),
            None if block is None else block.get("PublicAccessBlockConfiguration"),
        )

    def _apply(self, drifts: list[Drift]) -> None:
        settings = {drift.setting for drift in drifts}
        if "DefaultEncryption" in settings:
            self._call("put_bucket_encryption", ServerSideEncryptionConfiguration=BUCKET_ENCRYPTION)
        if "PublicAccessBlock" in settings:
            self._call(
                "put_public_access_block", PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK
            )

    def _create(self) -> bool:
        """Create the bucket; False when it turned out to exist already (created meanwhile)."""
        arguments = create_bucket_arguments(self.name, self.region)
        del arguments["Bucket"]  # `_call` names the bucket
        try:
            self._call("create_bucket", **arguments)
        except AWSRequestError as exc:
            if exc.code == "BucketAlreadyOwnedByYou":
                return False
            if exc.code == "BucketAlreadyExists":
                raise ProvisioningError(
                    f"the bucket name {self.name!r} belongs to another AWS account (bucket names "
                    "are global); choose another with --with-bucket"
                ) from exc
            if exc.code in ("IllegalLocationConstraintException", "InvalidLocationConstraint"):
                raise ProvisioningError(
                    f"S3 refused to create {self.name!r} in region {self.region!r} ({exc.code}); "
                    "check --region / AWS_REGION and the endpoint URL"
                ) from exc
            raise
        return True

    def ensure(self) -> ResourceOutcome:
        """The bucket step of a provisioning run."""
        if not self.exists():
            if self.dry_run:
                logger.info("would create bucket %s in %s", self.name, self.region)
                return ResourceOutcome("bucket", self.name, "would-create")
            if self._create():
                self._apply(bucket_drift(None, None))  # every setting, on the new bucket
                logger.info("created bucket %s in %s", self.name, self.region)
                return ResourceOutcome("bucket", self.name, "created")
        logger.warning("bucket %s already exists; keeping it", self.name)
        drifts = self.drift()
        for drift in drifts:
            logger.warning(
                "bucket %s drifted: %s is %r, expected %r",
                self.name,
                drift.setting,
                drift.actual,
                drift.expected,
            )
        if not drifts:
            return ResourceOutcome("bucket", self.name, "exists")
        if not self.reconcile:
            return ResourceOutcome("bucket", self.name, "drift", drifts)
        if self.dry_run:
            return ResourceOutcome("bucket", self.name, "would-update", drifts)
        self._apply(drifts)
        logger.warning("bucket %s reconciled: %s", self.name, ", ".join(d.setting for d in drifts))
        return ResourceOutcome("bucket", self.name, "updated", drifts)

    def problems(self) -> list[str]:
        """What the final verification finds wrong with the bucket (empty when all is right)."""
        if not self.exists():
            return [f"bucket {self.name} is missing"]
        return [
            f"bucket {d.setting} is {d.actual!r}, expected {d.expected!r}" for d in self.drift()
        ]
