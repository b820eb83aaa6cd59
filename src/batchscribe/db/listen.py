"""PostgreSQL `LISTEN/NOTIFY`: the signals of one machine reach the others.

Writers call `notify(conn, topic, payload)` inside their transaction; PostgreSQL delivers the
notification when (and only if) the transaction commits. `PostgresListener` holds one extra
connection per process, listens on every topic and republishes what arrives into the process's
`Signals`. After a lost connection (a database restart) it reconnects with backoff and then
publishes every topic once, since notifications sent meanwhile are lost: waiters re-check the
database instead of missing a hand-off. On SQLite both are no-ops.
"""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from batchscribe.db.engine import Database
from batchscribe.signals import Signals, Topic

logger = logging.getLogger(__name__)

RECONNECT_MAX_SECONDS = 10.0


def notify(conn: Connection, topic: Topic, payload: str = "") -> None:
    """Queue a notification for other processes, sent when this transaction commits."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_notify(str(topic), payload)))


class PostgresListener:
    """A daemon thread relaying PostgreSQL notifications into `signals`."""

    def __init__(self, db: Database, signals: Signals) -> None:
        self._dsn = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._signals = signals
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def _run(self) -> None:
        import psycopg  # only on PostgreSQL (24 MB a process that SQLite deployments never need)

        delay = 0.5
        first = True
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as conn:
                    for topic in Topic:
                        conn.execute(f'LISTEN "{topic.value}"')
                    self.connected.set()
                    if not first:
                        logger.info("listening for database notifications again")
                        for topic in Topic:  # whatever was sent while we were away
                            self._signals.publish(topic)
                    first, delay = False, 0.5
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._signals.publish(Topic(note.channel), note.payload)
            except psycopg.Error as exc:
                self.connected.clear()
                if self._stop.is_set():
                    return
                logger.warning(
                    "database notifications interrupted (%s); reconnecting in %.1f s",
                    type(exc).__name__,
                    delay,
                )
                self._stop.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
