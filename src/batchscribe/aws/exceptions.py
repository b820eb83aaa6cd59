"""Errors of the AWS boundary: what a botocore failure means, whoever made the call.

    AWSError                      base; `.code` (AWS error code or our short name), `.retryable`
    ├── AWSCredentialsError       no usable credentials, or AWS rejected them
    ├── AWSAccessDeniedError      the credentials lack an IAM permission; names the actions needed
    ├── AWSUnavailableError       throttling, a 5xx or a network error outlasted the client's
    │                             attempts (retryable)
    ├── AWSResourceNotFoundError  the named resource does not exist
    │   └── QueueNotFoundError    ... and it is an SQS queue
    └── AWSRequestError           AWS refused the request for another reason (`.code` says which)

`batchscribe.aws.errors.translate` turns botocore's exceptions into these, by error code and
HTTP status, never by message text. The publisher maps them onto its own `PublishError` tree by
`.retryable`; the tools map them to exit codes. Messages are sentences a user can act on and
never contain credential values or transcript text.
"""

from __future__ import annotations

from collections.abc import Sequence


class AWSError(Exception):
    """Base class of every translated AWS failure.

    `code` is AWS's error code (`ThrottlingException`, `AccessDenied`...) or a short name of
    our own when AWS sent none (`NetworkError`, `NoCredentials`). `retryable` says whether the
    same request may succeed later without anyone changing anything.
    """

    retryable = False

    def __init__(self, message: str, *, code: str = "", retryable: bool | None = None) -> None:
        super().__init__(message)
        self.code = code
        if retryable is not None:
            self.retryable = retryable


class AWSCredentialsError(AWSError):
    """No credentials were found, or AWS said they are invalid or expired.

    Credentials that cannot be resolved right now (`NoCredentials`) are retryable: an IAM role or
    a refreshed file may provide them later. Credentials AWS rejected are not.
    """


class AWSAccessDeniedError(AWSError):
    """AWS denied an action: `denied_action` failed; `required_actions` is all the caller needs."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        denied_action: str,
        required_actions: Sequence[str] = (),
    ) -> None:
        super().__init__(message, code=code)
        self.denied_action = denied_action
        self.required_actions = tuple(required_actions)


class AWSUnavailableError(AWSError):
    """AWS could not be reached, kept throttling or kept failing after every attempt."""

    retryable = True


class AWSResourceNotFoundError(AWSError):
    """The queue, rule or bus the request names does not exist."""


class QueueNotFoundError(AWSResourceNotFoundError):
    """The SQS queue does not exist (run the provisioner first)."""


class AWSRequestError(AWSError):
    """AWS refused the request with a code that retrying will not change."""
