"""The one translation of botocore's errors, by error code and HTTP status (never message text).

`translate(exc, action, required_actions)` turns a `ClientError` or another `BotoCoreError` into
the `AWSError` tree of `batchscribe.aws.exceptions`. The code tables below are the only place
that knows AWS's error codes; `RETRYABLE_CODES` also classifies the per-entry `ErrorCode`s of a
PutEvents answer, so the publisher, the relay and the tools agree on what "try again" means.

Some SQS codes have two spellings: the query protocol's `AWS.SimpleQueueService.*` and the JSON
protocol's short name; botocore reports whichever the endpoint (AWS or an emulator) sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
)

from batchscribe.aws.exceptions import (
    AWSAccessDeniedError,
    AWSCredentialsError,
    AWSError,
    AWSRequestError,
    AWSResourceNotFoundError,
    AWSUnavailableError,
    QueueNotFoundError,
)

#: Throttling and internal failures: the same request may succeed later. Per-call errors with a
#: 5xx status are retryable whatever their code.
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalFailure",
        "InternalError",
        "InternalException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
#: The credentials are wrong or expired, as opposed to "not allowed".
CREDENTIAL_ERROR_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "IncompleteSignature",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "MissingAuthenticationToken",
        "AuthFailure",
        "InvalidSecurity",
    }
)
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "AuthorizationError", "UnauthorizedOperation"}
)
QUEUE_MISSING_CODES = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}
)
RESOURCE_MISSING_CODES = frozenset({"ResourceNotFoundException"})
#: SQS refuses to create a queue within 60 s of deleting one of the same name.
QUEUE_DELETED_RECENTLY_CODES = frozenset(
    {"AWS.SimpleQueueService.QueueDeletedRecently", "QueueDeletedRecently"}
)

NO_CREDENTIALS_MESSAGE = (
    "No AWS credentials found. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, "
    "or run where an IAM role is available), or pass --endpoint-url for a local emulator with "
    "dummy credentials."
)
#: Our code for a failure with no AWS answer at all.
NETWORK_ERROR = "NetworkError"
NO_CREDENTIALS = "NoCredentials"


def is_retryable_code(code: str | None) -> bool:
    """True when an AWS error code means "send the same request again later"."""
    return code in RETRYABLE_CODES


def error_code(exc: ClientError) -> str:
    """AWS's error code of a `ClientError` ("" when the answer had none)."""
    return str(exc.response.get("Error", {}).get("Code") or "")


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _attempts(exc: ClientError) -> int:
    """How many times the client sent the request (botocore counts the retries)."""
    return int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts") or 0) + 1


def translate(
    exc: Exception,
    action: str,
    required_actions: Sequence[str] = (),
    *,
    policy_hint: str = "",
    endpoint: str | None = None,
    attempts: int | None = None,
) -> AWSError:
    """The `AWSError` for a botocore failure of `action` (an IAM action, `sqs:GetQueueUrl`).

    `required_actions` (everything the caller needs) and `policy_hint` (where a ready policy is)
    go into AccessDenied messages so the operator fixes the policy in one go. `endpoint` and
    `attempts` (the client's configured attempts) make network messages concrete.
    """
    if isinstance(exc, ClientError):
        return _translate_client_error(exc, action, required_actions, policy_hint)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return AWSCredentialsError(NO_CREDENTIALS_MESSAGE, code=NO_CREDENTIALS, retryable=True)
    if isinstance(exc, ProfileNotFound):
        return AWSCredentialsError(
            f"{exc}: set AWS_PROFILE to a profile in ~/.aws/config or ~/.aws/credentials, or "
            "unset it",
            code="ProfileNotFound",
        )
    if isinstance(exc, CredentialRetrievalError):
        return AWSCredentialsError(
            f"AWS credentials could not be loaded: {exc}", code=NO_CREDENTIALS, retryable=True
        )
    if isinstance(exc, (ConnectionError, HTTPClientError)):
        where = f" at {endpoint}" if endpoint else ""
        tries = f" after {attempts} attempts" if attempts and attempts > 1 else ""
        return AWSUnavailableError(
            f"AWS is unavailable: could not reach AWS{where} for {action}{tries} "
            f"({type(exc).__name__}); check the network, the region and the endpoint URL",
            code=NETWORK_ERROR,
        )
    if isinstance(exc, BotoCoreError):
        return AWSRequestError(f"{action} failed: {exc}", code=type(exc).__name__)
    raise TypeError(f"not a botocore error: {type(exc).__name__}")


def _translate_client_error(
    exc: ClientError, action: str, required_actions: Sequence[str], policy_hint: str
) -> AWSError:
    code = error_code(exc)
    status = _status(exc)
    message = str(exc.response.get("Error", {}).get("Message") or "") or code
    if code in CREDENTIAL_ERROR_CODES:
        return AWSCredentialsError(
            f"AWS rejected the credentials ({code}): {message}. Check AWS_ACCESS_KEY_ID, "
            "AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, or refresh your session.",
            code=code,
        )
    if code in ACCESS_DENIED_CODES:
        needed = ", ".join(required_actions) or action
        hint = f" ({policy_hint})" if policy_hint else ""
        return AWSAccessDeniedError(
            f"AWS denied {action}. Grant these IAM actions to the caller: {needed}{hint}.",
            code=code,
            denied_action=action,
            required_actions=tuple(required_actions) or (action,),
        )
    if code in QUEUE_MISSING_CODES:
        return QueueNotFoundError(f"{action}: the queue does not exist ({message})", code=code)
    if code in RESOURCE_MISSING_CODES:
        return AWSResourceNotFoundError(f"{action}: {message}", code=code)
    if is_retryable_code(code) or status >= 500:
        answer = code or f"HTTP {status}"
        attempts = _attempts(exc)
        failed = (
            f"kept failing with {answer} after {attempts} attempts"
            if attempts > 1
            else f"failed with {answer}"
        )
        return AWSUnavailableError(
            f"AWS is unavailable: {action} {failed} (throttling or a service failure); "
            "try again in a minute",
            code=code or f"HTTP{status}",
        )
    return AWSRequestError(f"{action} failed with {code or f'HTTP {status}'}: {message}", code=code)
