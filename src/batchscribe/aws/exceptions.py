"""Errors of the AWS tooling (provision, verify, tail, local mode).

    AWSToolingError
    ├── AWSCredentialsError       no usable credentials, or AWS rejected them (exit code 2)
    ├── AWSAccessDeniedError      the credentials lack an IAM permission; names the actions needed
    ├── AWSUnavailableError       network errors or throttling outlasted the retries
    ├── QueueNotFoundError        the SQS queue does not exist (verify exit code 3)
    ├── ProvisioningError         AWS refused a provisioning step for another reason
    ├── EventStructureError       a queue message is not a valid BatchProcessingCompleted event
    └── LocalStackError           `make run` could not start the emulator or the service

botocore exceptions are translated into these at the boundary (`batchscribe.aws.clients`), so
callers and the CLI never see a botocore type. Messages are sentences a user can act on and never
contain credential values or transcript text.
"""

from __future__ import annotations

from collections.abc import Sequence


class AWSToolingError(Exception):
    """Base class of every error raised by the AWS tooling."""


class AWSCredentialsError(AWSToolingError):
    """No credentials were found, or AWS said they are invalid or expired."""


class AWSAccessDeniedError(AWSToolingError):
    """AWS denied an action: `denied_action` failed; `required_actions` is all the tool needs."""

    def __init__(
        self, message: str, denied_action: str, required_actions: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.denied_action = denied_action
        self.required_actions = tuple(required_actions)


class AWSUnavailableError(AWSToolingError):
    """AWS could not be reached, or kept throttling, after every retry."""


class QueueNotFoundError(AWSToolingError):
    """The SQS queue the tool needs does not exist (run the provisioner first)."""


class ProvisioningError(AWSToolingError):
    """AWS refused to create or update a resource for a reason other than the ones above."""


class EventStructureError(AWSToolingError):
    """A message in the queue is not a valid EventBridge envelope around our event detail."""


class LocalStackError(AWSToolingError):
    """Local mode could not start (port busy, emulator failed, service missing)."""
