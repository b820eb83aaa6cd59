"""The one factory of boto3 sessions and clients, and the thin call the tools make through it.

Every client of the project is built here: `make_session` (the keys Settings read, or boto3's
default chain, with a shared botocore loader), `client_config` (timeouts and attempts chosen by
the caller), `make_client`. Retrying is botocore's `standard` mode wherever a caller wants it:

- the AWS tools (provision, verify, tail) use 4 attempts (3 retries) with botocore's exponential
  backoff and jitter, which covers throttling, 5xx answers and network errors;
- the event publisher makes one attempt with short timeouts: its relay owns retrying, with a
  schedule stored per event in the outbox.

`AWSCaller.call` runs one API call and translates any botocore error through
`batchscribe.aws.errors.translate`, naming the IAM actions the tool needs on AccessDenied.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from batchscribe.aws.errors import NO_CREDENTIALS_MESSAGE, translate
from batchscribe.aws.exceptions import AWSCredentialsError
from batchscribe.config import Settings

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _shared_loader() -> Any:
    """botocore's service-model loader, shared: each new session would otherwise re-parse
    megabytes of JSON (about half a second per client)."""
    return botocore.loaders.create_loader()


def make_session(settings: Settings, region: str | None = None) -> boto3.session.Session:
    """A boto3 session with the keys Settings read (a `.env` file), else boto3's default chain
    (environment, shared files, IAM role). `region` defaults to `AWS_REGION`."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _shared_loader())
    region = region or settings.aws_region
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
    """Fail fast, before any API call, when the session resolves no credentials."""
    try:
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise translate(exc, "loading credentials") from exc
    if credentials is None:
        raise AWSCredentialsError(NO_CREDENTIALS_MESSAGE, code="NoCredentials")


def client_config(
    *,
    connect_timeout: float,
    read_timeout: float,
    max_attempts: int,
    retry_mode: str = "standard",
    user_agent_extra: str | None = None,
) -> Config:
    """botocore's configuration of one client: its timeouts and its retries.

    `max_attempts` counts the first attempt too (botocore's `total_max_attempts`): 1 means no
    retry, 4 means three retries.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts counts the first attempt: it is at least 1")
    return Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"total_max_attempts": max_attempts, "mode": retry_mode},
        user_agent_extra=user_agent_extra,
    )


def make_client(
    service: str,
    settings: Settings,
    *,
    config: Config,
    region: str | None = None,
    endpoint_url: str | None = None,
    session: boto3.session.Session | None = None,
) -> Any:
    """A boto3 client for `service` ("events", "sqs").

    `region` and `endpoint_url` default to `AWS_REGION` and `AWS_ENDPOINT_URL`; `session` to a
    new one from `make_session`.
    """
    region = region or settings.aws_region
    session = session or make_session(settings, region)
    return session.client(
        service,
        region_name=region,
        endpoint_url=endpoint_url or settings.aws_endpoint_url,
        config=config,
    )


def max_attempts(client: Any) -> int | None:
    """The attempts a client makes per call, as configured (None when unknown)."""
    retries = getattr(client.meta.config, "retries", None) or {}
    value = retries.get("total_max_attempts")
    return int(value) if value is not None else None


# botocore service names to IAM prefixes, for AccessDenied messages.
_SERVICE_PREFIX = {"sqs": "sqs", "eventbridge": "events", "events": "events"}


def iam_action(client: Any, operation: str) -> str:
    """`sqs:CreateQueue` for the sqs client's `create_queue`."""
    model = client.meta.service_model
    prefix = _SERVICE_PREFIX.get(model.service_name, model.endpoint_prefix)
    name = client.meta.method_to_api_mapping.get(operation, operation)
    return f"{prefix}:{name}"


class AWSCaller:
    """Runs one AWS call and translates its errors; the client does the retrying.

    `required_actions` is the full list of IAM actions the calling tool needs, quoted in
    AccessDenied messages with `policy_hint` (where a ready-made policy is) so the operator can
    fix the policy in one go.
    """

    def __init__(self, required_actions: Sequence[str] = (), *, policy_hint: str = "") -> None:
        self.required_actions = tuple(required_actions)
        self.policy_hint = policy_hint

    def call(self, client: Any, operation: str, **kwargs: Any) -> dict[str, Any]:
        """`client.<operation>(**kwargs)`'s response, or an `AWSError` saying what to do."""
        action = iam_action(client, operation)
        try:
            response: dict[str, Any] = getattr(client, operation)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(
                exc,
                action,
                self.required_actions,
                policy_hint=self.policy_hint,
                endpoint=client.meta.endpoint_url,
                attempts=max_attempts(client),
            ) from exc
        retried = int(response.get("ResponseMetadata", {}).get("RetryAttempts") or 0)
        if retried:
            logger.warning("%s succeeded after %d retries", action, retried)
        return response
