"""In-process wake-up signals: "a job is waiting", "job X finished", "an event is in the outbox".

Polling alone would make every hand-off wait for the next poll. Instead, whoever causes a change
publishes it here, and whoever waits for it (the worker supervisor, the relay, a request waiting
for its job) subscribes. Across processes the signals travel two ways:
- to and from this server's own worker processes, through their supervisor;
- between machines, through PostgreSQL `LISTEN/NOTIFY` (`batchscribe.db.listen`), which
  republishes each notification here.
With SQLite and workers in other process trees there is no bridge: the waiters' polls (a cheap
read every `JOB_POLL_SECONDS`) carry the hand-off.

Subscribers run in the publishing thread: they must be quick and must not raise (they set an
event, wake a thread or resolve a future).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from enum import StrEnum

logger = logging.getLogger(__name__)


class Topic(StrEnum):
    """What changed. The values double as PostgreSQL channel names."""

    JOBS_QUEUED = "batchscribe_jobs_queued"
    JOB_FINISHED = "batchscribe_job_finished"  # payload: the job id
    OUTBOX_WRITTEN = "batchscribe_outbox_written"


Subscriber = Callable[[str], None]


class Signals:
    """A tiny thread-safe publish/subscribe hub, one per process."""

    def __init__(self) -> None:
        self._subscribers: dict[Topic, list[Subscriber]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, topic: Topic, subscriber: Subscriber) -> Callable[[], None]:
        """Call `subscriber(payload)` on each publication of `topic`; returns an unsubscribe."""
        with self._lock:
            self._subscribers[topic].append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers[topic]:
                    self._subscribers[topic].remove(subscriber)

        return unsubscribe

    def publish(self, topic: Topic, payload: str = "") -> None:
        with self._lock:
            subscribers = list(self._subscribers[topic])
        for subscriber in subscribers:
            try:
                subscriber(payload)
            except Exception:  # a broken subscriber must not break the publisher
                logger.exception("signal subscriber failed", extra={"topic": str(topic)})
