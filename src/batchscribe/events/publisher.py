"""Publishes `BatchProcessingCompleted` events to AWS EventBridge (PutEvents).

`AWSEventPublisher` is the only place that talks to EventBridge. It validates the detail against
the event model, applies the AWS entry-size rule, sends entries, and maps the AWS boundary's
errors (`batchscribe.aws.errors.translate`) onto the project's `PublishError` tree by their
`retryable` flag.

Retries: the client comes from the boundary's factory with one attempt per call
(`max_attempts=1`). botocore's retries (3 to 4 silent attempts with their own backoff) would block
the relay for up to a minute on a dead endpoint and hide throttling from our metrics; the relay
owns retrying instead, with a redelivery schedule stored per event in the outbox. Timeouts are
short (2 s connect, 5 s read) for the same reason: a slow EventBridge must not pin a lease.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from batchscribe.aws.clients import client_config, make_client, make_session
from batchscribe.aws.errors import is_retryable_code, translate
from batchscribe.config import Settings, get_settings
from batchscribe.events.entry import EventEntry, build_completed_entry
from batchscribe.events.exceptions import (
    EventTooLargeError,
    PublishError,
    PublishingDisabledError,
    PublishRejectedError,
    PublishTransientError,
)
from batchscribe.events.schema import DETAIL_TYPE, format_timestamp
from batchscribe.identity import RequestContext

logger = logging.getLogger(__name__)

MAX_ENTRIES_PER_CALL = 10  # PutEvents accepts at most 10 entries per call
CONNECT_TIMEOUT_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 5.0
PUT_EVENTS_ACTION = "events:PutEvents"


def publisher_client_config() -> Config:
    """The `events` client's configuration: one attempt, short timeouts."""
    return client_config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        max_attempts=1,
    )


class AWSEventPublisher:
    """Sends `BatchProcessingCompleted` events to EventBridge.

    `client` may be injected (tests pass a Stubber-wrapped or emulator client); otherwise one is
    built from `settings` with credentials from boto3's default chain (environment, shared
    files, IAM role), or the explicit keys in Settings when they came from a `.env` file.
    """

    def __init__(self, client: Any | None = None, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.region = self.settings.aws_region
        self.bus_name = self.settings.eventbridge_bus_name
        self.source = self.settings.event_source
        self.detail_type = DETAIL_TYPE
        self.max_bytes = self.settings.event_max_bytes
        self._session: boto3.session.Session | None = None
        if client is None:
            self._session = make_session(self.settings)
            client = make_client(
                "events", self.settings, config=publisher_client_config(), session=self._session
            )
        self.client = client
        self.disabled_reason: str | None = None
        if not self.credentials_available():
            self.disabled_reason = (
                "no AWS credentials found (environment, shared credentials file or IAM role)"
            )

    # -- state -------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether events are sent; False means they are kept `held` for a later replay."""
        return self.disabled_reason is None

    def credentials_available(self) -> bool:
        """True when boto3's default chain (or the injected client) resolves credentials."""
        try:
            if self._session is not None:
                return self._session.get_credentials() is not None
            get_credentials = getattr(self.client, "_get_credentials", None)
            return get_credentials is None or get_credentials() is not None
        except (BotoCoreError, OSError):
            logger.warning("Resolving AWS credentials failed", exc_info=True)
            return False

    def describe(self) -> dict[str, Any]:
        """Region, bus, source and state: what startup logs and /readyz show (no credentials)."""
        return {
            "region": self.region,
            "bus_name": self.bus_name,
            "source": self.source,
            "detail_type": self.detail_type,
            "endpoint_url": self.settings.aws_endpoint_url,
            "state": "enabled" if self.enabled else "disabled",
            "reason": self.disabled_reason,
        }

    def log_startup(self) -> None:
        """One INFO line with the configuration, and a WARNING when publishing is disabled."""
        info = self.describe()
        logger.info(
            "Event publisher configured: region=%s bus=%s source=%s state=%s",
            info["region"],
            info["bus_name"],
            info["source"],
            info["state"],
            extra={"publisher": info},
        )
        if not self.enabled:
            logger.warning(
                "Event publishing is disabled: %s. Events are kept as held; configure AWS "
                "credentials and run `batchscribe outbox replay`.",
                self.disabled_reason,
            )

    def entry_for(
        self, context: RequestContext, raw_transcript: str, cleaned_transcript: str
    ) -> EventEntry:
        """The validated PutEvents entry for this publisher's source and bus, with its size."""
        return build_completed_entry(
            context,
            raw_transcript,
            cleaned_transcript,
            source=self.source,
            bus_name=self.bus_name,
        )

    # -- sending -----------------------------------------------------------------------------

    def put_entries(self, entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send up to 10 prepared entries in one PutEvents call.

        Returns one result per entry, in order: `{"EventId": ...}` or
        `{"ErrorCode": ..., "ErrorMessage": ...}`. A failure of the whole call raises
        `PublishTransientError` (throttling, 5xx, network, missing credentials) or
        `PublishRejectedError` (any other code).
        """
        if not entries:
            return []
        if len(entries) > MAX_ENTRIES_PER_CALL:
            raise ValueError(f"PutEvents takes at most {MAX_ENTRIES_PER_CALL} entries")
        try:
            response = self.client.put_events(Entries=list(entries))
        except (ClientError, BotoCoreError) as exc:
            endpoint = getattr(self.client.meta, "endpoint_url", None)
            error = translate(exc, PUT_EVENTS_ACTION, endpoint=endpoint, attempts=1)
            cls = PublishTransientError if error.retryable else PublishRejectedError
            raise cls(str(error), code=error.code) from exc
        results = list(response.get("Entries") or [])
        if len(results) != len(entries):
            raise PublishTransientError(
                f"PutEvents answered {len(results)} results for {len(entries)} entries",
                code="MalformedResponse",
            )
        return results

    def publish_batch_completed_event(
        self,
        interaction_id: str,
        tenant_id: str,
        user_id: str,
        account_id: str | None,
        raw_transcript: str,
        cleaned_transcript: str,
    ) -> str:
        """Validate, size-check and send one event now; return its EventBridge event id.

        Raises a `PublishError` (with the interaction id and the AWS code) on any failure,
        including a per-entry failure reported through `FailedEntryCount`. The service's
        request path does not call this: it writes the outbox and the relay publishes.
        """
        lengths = {"raw_len": len(raw_transcript), "cleaned_len": len(cleaned_transcript)}
        try:
            if not self.enabled:
                raise PublishingDisabledError(
                    f"Event publishing is disabled: {self.disabled_reason}",
                    interaction_id=interaction_id,
                    code="NoCredentials",
                )
            context = RequestContext(tenant_id, user_id, account_id, interaction_id)
            built = self.entry_for(context, raw_transcript, cleaned_transcript)
            if not built.fits(self.max_bytes):
                raise EventTooLargeError(
                    built.size_bytes, self.max_bytes, interaction_id=interaction_id
                )
            try:
                (result,) = self.put_entries([built.entry])
            except PublishError as exc:
                raise type(exc)(str(exc), interaction_id=interaction_id, code=exc.code) from exc
            if "ErrorCode" in result or not result.get("EventId"):
                code = str(result.get("ErrorCode") or "Unknown")
                cls = PublishTransientError if is_retryable_code(code) else PublishRejectedError
                raise cls(
                    f"EventBridge refused the entry with {code}: {result.get('ErrorMessage', '')}",
                    interaction_id=interaction_id,
                    code=code,
                )
        except PublishError as exc:
            logger.exception(
                "Publishing BatchProcessingCompleted failed: %s: %s",
                type(exc).__name__,
                exc,
                extra={"interaction_id": interaction_id, "error_code": exc.code, **lengths},
            )
            raise
        event_id = str(result["EventId"])
        logger.info(
            "Published BatchProcessingCompleted event %s",
            event_id,
            extra={
                "event_id": event_id,
                "interaction_id": interaction_id,
                "source": self.source,
                "detail_type": self.detail_type,
                "timestamp": format_timestamp(built.event.timestamp),
                **lengths,
            },
        )
        return event_id
