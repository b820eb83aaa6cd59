"""Where the AWS tools talk to (`AWSTarget`) and the clients they talk with (`tool_clients`).

The tools' clients come from the AWS boundary's one factory with botocore's `standard` retry
mode: 4 attempts per call (3 retries, exponential backoff with jitter) for throttling, 5xx
answers and network errors; a read timeout above SQS's longest long poll (20 s).

S3 is reached where the service's blob store reaches it: `S3_ENDPOINT_URL` when set, else the
tools' endpoint (`--endpoint-url`, `AWS_ENDPOINT_URL`), else AWS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.config import Config

from batchscribe.aws.clients import client_config, make_client, make_session, require_credentials
from batchscribe.config import Settings

TOOL_MAX_ATTEMPTS = 4  # the first attempt and 3 retries (SPEC section 6)
TOOL_CONNECT_TIMEOUT_SECONDS = 5.0
TOOL_READ_TIMEOUT_SECONDS = 30.0  # a receive may long-poll for 20 s


def tool_client_config(*, path_style: bool = False) -> Config:
    """The botocore configuration of every client the tools build. `path_style` addresses S3
    buckets in the path (S3-compatible stores and the emulator have no bucket hostnames)."""
    config = client_config(
        connect_timeout=TOOL_CONNECT_TIMEOUT_SECONDS,
        read_timeout=TOOL_READ_TIMEOUT_SECONDS,
        max_attempts=TOOL_MAX_ATTEMPTS,
        retry_mode="standard",
        user_agent_extra="batchscribe-aws-tools",
    )
    return config.merge(Config(s3={"addressing_style": "path"})) if path_style else config


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


def s3_endpoint(settings: Settings, target: AWSTarget) -> str | None:
    """Where the tools reach S3: `S3_ENDPOINT_URL`, else the target's endpoint, else AWS."""
    return settings.s3_endpoint_url or target.endpoint_url


def tool_clients(
    settings: Settings, target: AWSTarget, clients: Mapping[str, Any]
) -> dict[str, Any]:
    """The given clients by service name ("sqs", "events", "s3"), each missing (None) one built.

    Injected clients (emulator or Stubber ones in tests) are kept as they are; when any is
    missing, one session is made and its credentials checked, so missing credentials fail here,
    before any API call.
    """
    if all(client is not None for client in clients.values()):
        return dict(clients)
    session = make_session(settings, target.region)
    require_credentials(session)
    built = {}
    for service, client in clients.items():
        endpoint = s3_endpoint(settings, target) if service == "s3" else target.endpoint_url
        built[service] = (
            client
            if client is not None
            else make_client(
                service,
                settings,
                config=tool_client_config(path_style=service == "s3" and endpoint is not None),
                region=target.region,
                endpoint_url=endpoint,
                session=session,
            )
        )
    return built
