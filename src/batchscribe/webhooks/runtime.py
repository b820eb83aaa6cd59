"""`WebhooksRuntime`: the deliveries, the tenants' secrets and the sender of one process.

Deliveries are not written here: a job's delivery is written by the worker in the transaction
that ends the job (`batchscribe.webhooks.hook.WebhookJobEvents`). This runtime sends them: its
sender thread wakes on the "job finished" signal and polls for the rest. It also answers what
the HTTP layer asks: may this tenant have callbacks (is there a secret to sign with), and what
became of a job's callback.

`start()` and `stop()` block (`stop()` for up to one attempt's time limit): call them from a
thread in async code.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from batchscribe.config import Settings
from batchscribe.db.engine import Database
from batchscribe.signals import Signals, Topic
from batchscribe.webhooks import metrics
from batchscribe.webhooks.deliveries import UNFINISHED, Delivery, DeliveryStore
from batchscribe.webhooks.dispatcher import WebhookDispatcher
from batchscribe.webhooks.exceptions import DeliveryStoreError
from batchscribe.webhooks.schedule import RetrySchedule
from batchscribe.webhooks.tenant_secrets import TenantSecrets

logger = logging.getLogger(__name__)

#: Attempts a job's `callback` view lists (the latest).
VIEW_ATTEMPTS = 10


def schedule_from(settings: Settings) -> RetrySchedule:
    return RetrySchedule(
        delays=tuple(settings.callback_retry_delays),
        window_seconds=settings.callback_retry_window_seconds,
    )


class WebhooksRuntime:
    """Store + secrets + sender, started and stopped with the process. Thread-safe."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        signals: Signals,
        *,
        dispatcher_options: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.store = DeliveryStore(db)
        self.secrets = TenantSecrets.from_settings(db, settings)
        self.signals = signals
        self.dispatcher = WebhookDispatcher(
            self.store,
            self.secrets,
            schedule=schedule_from(settings),
            timeout_seconds=settings.callback_timeout_seconds,
            allow_private=settings.callback_allow_private_networks,
            **(dispatcher_options or {}),
        )
        self._unsubscribe: Callable[[], None] | None = None
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the sender. Never raises."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self._log_startup()
        metrics.bind_pending(self._unfinished_count)
        self._unsubscribe = self.signals.subscribe(
            Topic.JOB_FINISHED, lambda _payload: self.dispatcher.wake()
        )
        self.dispatcher.start()

    def stop(self) -> None:
        with self._lock:
            if not self._started:
                return
            self._started = False
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.dispatcher.stop()

    def _unfinished_count(self) -> int:
        counts = self.store.counts()
        return sum(counts[status] for status in UNFINISHED)

    def _log_startup(self) -> None:
        settings = self.settings
        if settings.callback_allow_private_networks:
            logger.warning(
                "CALLBACK_ALLOW_PRIVATE_NETWORKS=true: job callbacks may go to http URLs and to "
                "private, loopback and link-local addresses; use it only where every tenant is "
                "trusted"
            )
        try:
            counts = self.store.counts()
            formats = self.secrets.stored_formats()
        except DeliveryStoreError as exc:
            logger.warning("could not read the webhook deliveries at startup: %s", exc)
            return
        unfinished = sum(counts[status] for status in UNFINISHED)
        if unfinished:
            logger.info("%d webhook deliveries from earlier runs are due or scheduled", unfinished)
        if formats["plain"] and self.secrets.box.encrypts:
            logger.warning(
                "%d tenants' webhook signing secrets are stored unencrypted; run "
                "`batchscribe webhooks reencrypt` to encrypt them with WEBHOOK_ENCRYPTION_KEY",
                formats["plain"],
            )
        elif formats["encrypted"] and not self.secrets.box.encrypts:
            logger.error(
                "%d tenants' webhook signing secrets are encrypted but WEBHOOK_ENCRYPTION_KEY is "
                "not set: their callbacks cannot be signed until it is",
                formats["encrypted"],
            )

    # -- what the HTTP layer asks ----------------------------------------------------------------

    def require_secret(self, tenant_id: str) -> None:
        """`CallbackSecretMissing` unless the tenant's webhooks can be signed."""
        self.secrets.require(tenant_id)

    def delivery(self, job_id: str) -> tuple[Delivery, list[Any]] | None:
        """A job's delivery and its latest attempts, or None (not ended yet, no callback)."""
        delivery = self.store.for_job(job_id)
        if delivery is None:
            return None
        return delivery, self.store.attempts(delivery.id, VIEW_ATTEMPTS)

    def deliveries(self, job_ids: list[str]) -> dict[str, Delivery]:
        return self.store.for_jobs(job_ids)
