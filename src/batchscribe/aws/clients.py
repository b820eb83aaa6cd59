"""boto3 clients for the AWS tooling, and the one place botocore errors are translated.

`AWSCaller.call` runs one AWS API call: network errors and throttling are retried three times with
exponential backoff (botocore's own retries are switched off so the count is exact), and every
botocore error leaves as an `AWSToolingError` that says what to do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from batchscribe.aws.exceptions import (
    AWSAccessDeniedError,
    AWSCredentialsError,
    AWSToolingError,
    AWSUnavailableError,
    QueueNotFoundError,
)
from batchscribe.config import Settings

logger = logging.getLogger(__name__)

NETWORK_RETRIES = 3
DEFAULT_BACKOFF_BASE = 0.5

# Error codes that mean "the credentials are wrong", as opposed to "not allowed".
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
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
QUEUE_MISSING_CODES = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}
)

NO_CREDENTIALS_MESSAGE = (
    "No AWS credentials found. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, "
    "or run where an IAM role is available), or pass --endpoint-url for a local emulator with "
    "dummy credentials."
)


@dataclass(frozen=True)
class AWSTarget:
    """Where the tools talk to: region, optional endpoint (emulator) and resource names."""

    region: str
    endpoint_url: str | None
    bus_name: str
    source: str
    queue_name: str
    dlq_name: str
    rule_name: str

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: str | None) -> AWSTarget:
        """The target from settings, with CLI flags (None means "not given") taking precedence."""
        values: dict[str, Any] = {
            "region": settings.aws_region,
            "endpoint_url": settings.aws_endpoint_url,
            "bus_name": settings.eventbridge_bus_name,
            "source": settings.event_source,
            "queue_name": settings.sqs_queue_name,
            "dlq_name": settings.sqs_dlq_name,
            "rule_name": settings.eventbridge_rule_name,
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


@lru_cache(maxsize=1)
def _shared_loader() -> Any:
    """botocore's service-model loader, shared: each new session would otherwise re-parse
    megabytes of JSON (about half a second per client)."""
    return botocore.loaders.create_loader()


def make_session(settings: Settings, region: str) -> boto3.session.Session:
    """A boto3 session using the default credential chain, or the keys Settings read (`.env`)."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _shared_loader())
    secret = settings.aws_secret_access_key
    token = settings.aws_session_token
    if settings.aws_access_key_id and secret is not None:
        return boto3.session.Session(
            aws_access_key_id=settings.aws_access_key_id,
            aws_secret_access_key=secret.get_secret_value(),
            aws_session_token=token.get_secret_value() if token is not None else None,
            region_name=region,
            botocore_session=core,
        )
    return boto3.session.Session(region_name=region, botocore_session=core)


def require_credentials(session: boto3.session.Session) -> None:
    """Fail fast, before any API call, when the default chain finds no credentials."""
    try:
        credentials = session.get_credentials()
    except (CredentialRetrievalError, PartialCredentialsError) as exc:
        raise AWSCredentialsError(f"AWS credentials could not be loaded: {exc}") from exc
    if credentials is None:
        raise AWSCredentialsError(NO_CREDENTIALS_MESSAGE)


def client_config() -> Config:
    """No botocore retries (ours count exactly), short connect timeout, room for long polls."""
    return Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
        user_agent_extra="batchscribe-aws-tools",
    )


def make_client(session: boto3.session.Session, service: str, target: AWSTarget) -> Any:
    """A client for `service` ("sqs" or "events") at the target's region and endpoint."""
    return session.client(
        service,
        region_name=target.region,
        endpoint_url=target.endpoint_url,
        config=client_config(),
    )


# botocore operation names to IAM action names, for AccessDenied messages.
_SERVICE_PREFIX = {"sqs": "sqs", "eventbridge": "events", "events": "events"}


def iam_action(client: Any, operation: str) -> str:
    """`sqs:CreateQueue` for the sqs client's `create_queue`."""
    model = client.meta.service_model
    prefix = _SERVICE_PREFIX.get(model.service_name, model.endpoint_prefix)
    name = client.meta.method_to_api_mapping.get(operation, operation)
    return f"{prefix}:{name}"


class AWSCaller:
    """Runs AWS calls with retries and error translation.

    `required_actions` is the full list of IAM actions the calling tool needs, quoted in
    AccessDenied messages so the operator can fix the policy in one go. `backoff_base` is the first
    delay in seconds (then doubled); tests set it near zero.
    """

    def __init__(
        self,
        required_actions: Sequence[str] = (),
        *,
        retries: int = NETWORK_RETRIES,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        sleep: Callable[[float], None] = time.sleep,
        policy_hint: str = "",
    ) -> None:
        self.required_actions = tuple(required_actions)
        self.retries = retries
        self.backoff_base = backoff_base
        self._sleep = sleep
        self._policy_hint = policy_hint

    def call(self, client: Any, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Call `client.<operation>(**kwargs)`; return the response or raise AWSToolingError."""
        action = iam_action(client, operation)
        attempt = 0
        while True:
            try:
                response: dict[str, Any] = getattr(client, operation)(**kwargs)
                return response
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
                if code in RETRYABLE_CODES or status >= 500:
                    if attempt < self.retries:
                        attempt = self._backoff(attempt, action, code or str(status))
                        continue
                    raise AWSUnavailableError(
                        f"{action} kept failing with {code or status} after {self.retries} "
                        "retries; AWS is throttling or unavailable, try again in a minute"
                    ) from exc
                raise self._translate(exc, code, action) from exc
            except (ConnectionError, HTTPClientError) as exc:
                if attempt < self.retries:
                    attempt = self._backoff(attempt, action, type(exc).__name__)
                    continue
                endpoint = getattr(client.meta, "endpoint_url", "?")
                raise AWSUnavailableError(
                    f"could not reach AWS at {endpoint} for {action} after {self.retries} "
                    f"retries ({type(exc).__name__}); check the network, the region and "
                    "--endpoint-url"
                ) from exc
            except (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError) as exc:
                raise AWSCredentialsError(NO_CREDENTIALS_MESSAGE) from exc
            except BotoCoreError as exc:
                raise AWSToolingError(f"{action} failed: {exc}") from exc

    def _backoff(self, attempt: int, action: str, reason: str) -> int:
        delay = self.backoff_base * (2**attempt)
        logger.warning(
            "%s failed (%s); retry %d of %d in %.2f s",
            action,
            reason,
            attempt + 1,
            self.retries,
            delay,
        )
        self._sleep(delay)
        return attempt + 1

    def _translate(self, exc: ClientError, code: str, action: str) -> AWSToolingError:
        message = str(exc.response.get("Error", {}).get("Message", "")) or code
        if code in CREDENTIAL_ERROR_CODES:
            return AWSCredentialsError(
                f"AWS rejected the credentials ({code}): {message}. Check AWS_ACCESS_KEY_ID, "
                "AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, or refresh your session."
            )
        if code in ACCESS_DENIED_CODES:
            needed = ", ".join(self.required_actions) or action
            hint = f" ({self._policy_hint})" if self._policy_hint else ""
            return AWSAccessDeniedError(
                f"AWS denied {action}. Grant these IAM actions to the caller: {needed}{hint}.",
                denied_action=action,
                required_actions=self.required_actions or (action,),
            )
        if code in QUEUE_MISSING_CODES:
            return QueueNotFoundError(f"{action}: the queue does not exist ({message})")
        return AWSToolingError(f"{action} failed with {code}: {message}")


def error_code(exc: BaseException) -> str | None:
    """The AWS error code behind a translated error, when there is one."""
    cause = exc.__cause__
    if isinstance(cause, ClientError):
        return str(cause.response.get("Error", {}).get("Code", "")) or None
    return None


def call_optional(
    caller: AWSCaller, client: Any, operation: str, missing_codes: frozenset[str], **kwargs: Any
) -> dict[str, Any] | None:
    """Like `caller.call`, but None when AWS answers that the resource does not exist."""
    try:
        return caller.call(client, operation, **kwargs)
    except AWSToolingError as exc:
        if isinstance(exc, QueueNotFoundError) or error_code(exc) in missing_codes:
            return None
        raise
