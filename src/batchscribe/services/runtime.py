"""`ServiceRuntime`: everything a batchscribe process runs besides HTTP.

    database (migrated or checked) ── blob store ── signals (+ PostgreSQL listener)
    job store ── job service ── worker supervisor (N local worker processes)
    events runtime (relay) ── webhooks runtime (sender) ── janitor (leases, retention)

`batchscribe serve` builds one with the API on top (`with_relay=True`: the relay and the
webhook sender; `WORKERS` local workers, 0 for an API-only instance); `batchscribe worker`
builds one without them and HTTP. `start()` and `stop()` block: call them from a thread in
async code.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from batchscribe.blobs import open_blob_store
from batchscribe.blobs.base import BlobStore
from batchscribe.blobs.exceptions import BlobStoreError
from batchscribe.config import Settings
from batchscribe.db.engine import Database
from batchscribe.db.exceptions import DatabaseError
from batchscribe.db.listen import PostgresListener
from batchscribe.db.setup import open_database, prepare_database
from batchscribe.events.runtime import EventsRuntime
from batchscribe.jobs.factory import claim_check_key, job_store
from batchscribe.jobs.store import JobStore
from batchscribe.jobs.supervisor import WorkerSupervisor
from batchscribe.metrics import STORAGE_FAILURES
from batchscribe.services.jobs import JobService
from batchscribe.signals import Signals
from batchscribe.webhooks.exceptions import DeliveryStoreError
from batchscribe.webhooks.runtime import WebhooksRuntime

logger = logging.getLogger(__name__)

JANITOR_INTERVAL_SECONDS = 5.0
RETENTION_INTERVAL_SECONDS = 3600.0


class HealthLog:
    """Logs a component's failure once when it starts failing (with its detail) and once when
    it recovers, not on every probe; counts failures for the metrics."""

    def __init__(self) -> None:
        self._failing: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def failing(self) -> frozenset[str]:
        """The components whose last probe failed."""
        with self._lock:
            return frozenset(self._failing)

    def ok(self, component: str) -> None:
        with self._lock:
            was = self._failing.pop(component, None)
        if was is not None:
            logger.warning("%s works again", component, extra={"component": component})

    def failed(self, component: str, detail: str) -> None:
        STORAGE_FAILURES.labels(component).inc()
        with self._lock:
            first = component not in self._failing
            self._failing[component] = detail
        if first:
            logger.error("%s is failing: %s", component, detail, extra={"component": component})


class ServiceRuntime:
    """The non-HTTP machinery of one process."""

    def __init__(self, settings: Settings, *, workers: int, with_relay: bool) -> None:
        self.settings = settings
        self.workers = workers
        self.with_relay = with_relay
        self.signals = Signals()
        self.db: Database | None = None
        self.blobs: BlobStore | None = None
        self.store: JobStore | None = None
        self.jobs: JobService | None = None
        self.events: EventsRuntime | None = None
        self.webhooks: WebhooksRuntime | None = None
        self.supervisor: WorkerSupervisor | None = None
        self.listener: PostgresListener | None = None
        self.health_log = HealthLog()
        self._stop = threading.Event()
        self._janitor: threading.Thread | None = None
        self._next_retention = 0.0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Open storage (migrating when AUTO_MIGRATE), start listener, relay, workers, janitor.

        Raises `DatabaseError` when the database cannot be used at all (the process cannot
        serve then); a blob store that is down only makes readiness fail.
        """
        settings = self.settings
        self.db = open_database(settings)
        prepare_database(self.db, settings)
        self.blobs = open_blob_store(settings)
        self.store = job_store(settings, self.db, self.blobs)
        if not self.db.is_sqlite:
            self.listener = PostgresListener(self.db, self.signals)
            self.listener.start()
        if self.workers > 0:
            self.supervisor = WorkerSupervisor(settings, self.store, self.signals, self.workers)
            self.supervisor.start()
            self.supervisor.run_in_thread()
        self.jobs = JobService(
            settings,
            self.store,
            self.blobs,
            self.signals,
            engine=self.supervisor,
            storage_failing=lambda: bool(self.health_log.failing),
        )
        if self.with_relay:
            self.events = EventsRuntime(settings, self.db, self.signals)
            self.events.start()
            self.webhooks = WebhooksRuntime(settings, self.db, self.signals)
            self.webhooks.start()
        self._janitor = threading.Thread(target=self._janitor_loop, name="janitor", daemon=True)
        self._janitor.start()
        logger.info(
            "storage ready",
            extra={
                "database": self.db.describe(),
                "blob_store": repr(self.blobs),
                "local_workers": self.workers,
            },
        )

    def stop(self) -> None:
        """Stop workers (running jobs go back to the queue), drain the relay, close storage."""
        self._stop.set()
        grace = self.settings.shutdown_grace_seconds
        if self.supervisor is not None:
            self.supervisor.stop(grace)
        if self.events is not None:
            self.events.stop()
        if self.webhooks is not None:
            self.webhooks.stop()
        if self.jobs is not None:
            self.jobs.close()
        if self.listener is not None:
            self.listener.stop()
        if self._janitor is not None:
            self._janitor.join(5.0)
        if self.db is not None:
            self.db.dispose()

    # -- health ----------------------------------------------------------------------------------

    def failing_components(self) -> list[str]:
        """The storage components and engine that fail now (real writes, logged once)."""
        failing = []
        for name, probe in (("database", self._probe_db), ("blob_store", self._probe_blobs)):
            try:
                probe()
            except (DatabaseError, BlobStoreError, OSError) as exc:
                self.health_log.failed(name, str(exc))
                failing.append(name)
            else:
                self.health_log.ok(name)
        if self.supervisor is not None and not self.supervisor.ready:
            failing.append("engine")
        return failing

    def _probe_db(self) -> None:
        assert self.db is not None
        self.db.check_writable()

    def _probe_blobs(self) -> None:
        assert self.blobs is not None
        self.blobs.check_writable()

    def engine_state(self) -> dict[str, Any]:
        supervisor = self.supervisor
        return {
            "ready": supervisor.ready if supervisor is not None else True,
            "workers": self.workers,
            "busy": supervisor.busy if supervisor is not None else 0,
            "waiting_requests": self.jobs.sync_in_flight if self.jobs is not None else 0,
        }

    # -- housekeeping ------------------------------------------------------------------------------

    def _janitor_loop(self) -> None:
        while not self._stop.wait(JANITOR_INTERVAL_SECONDS):
            try:
                self._janitor_step()
            except Exception:  # housekeeping must never take the process down
                logger.exception("housekeeping failed; trying again later")

    def _janitor_step(self) -> None:
        assert self.store is not None
        assert self.blobs is not None
        # Probe storage now and then even when nobody asks /readyz: uploads are refused (503)
        # while a probe fails, instead of being accepted into storage that cannot keep them.
        self.failing_components()
        try:
            self.store.reclaim_expired()
        except DatabaseError as exc:
            logger.warning("could not reclaim expired job leases: %s", exc)
            return
        if time.monotonic() < self._next_retention:
            return
        self._next_retention = time.monotonic() + RETENTION_INTERVAL_SECONDS
        redacted = self.store.redact_finished(self.settings.retention_days * 86400)
        for job in redacted:
            keys = (
                job.result_key,
                job.audio_key if not self.settings.keep_audio else None,
                claim_check_key(job.id),  # an oversize event's transcripts, if it had one
            )
            for key in keys:
                if key:
                    try:
                        self.blobs.delete(key)
                    except BlobStoreError as exc:
                        logger.warning("could not delete an expired blob: %s", exc)
        if redacted:
            logger.info("deleted the results of %d jobs past the retention period", len(redacted))
        self._redact_webhook_bodies()

    def _redact_webhook_bodies(self) -> None:
        """Webhook bodies hold transcripts too: dropped after RETENTION_DAYS (state stays)."""
        if self.webhooks is None:
            return
        try:
            dropped = self.webhooks.store.redact(self.settings.retention_days * 86400)
        except DeliveryStoreError as exc:
            logger.warning("could not drop expired webhook bodies: %s", exc)
            return
        if dropped:
            logger.info("dropped the bodies of %d webhooks past the retention period", dropped)
