"""The application database: one SQLAlchemy engine over SQLite (one machine) or PostgreSQL (many).

Everything durable lives here: jobs, the event outbox, idempotency keys (and, as they arrive,
API keys and webhook deliveries). Two dialects, one code path; where they must differ, this
module is the only place that knows:

- SQLite: WAL mode (readers never wait for the writer), `synchronous=FULL` (a committed row
  survives a power cut), a busy timeout, and every write transaction opened with
  `BEGIN IMMEDIATE`, so the write lock is taken at the start and two claimers serialise instead
  of both reading the same free row. pysqlite's own transaction handling is switched off for
  that (SQLAlchemy's documented recipe).
- PostgreSQL (psycopg 3): connections are checked before use (`pool_pre_ping`), so a database
  restart costs one failed call, not a pool of dead connections; claims use
  `FOR UPDATE SKIP LOCKED`; `NOTIFY` wakes listeners when a transaction commits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from batchscribe.db.exceptions import DatabaseUnavailableError

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str) -> URL:
    """The SQLAlchemy URL for `DATABASE_URL`, with the driver we ship for each dialect.

    `postgresql://` and `postgres://` (what hosting platforms hand out) become
    `postgresql+psycopg://`; `sqlite:///relative/path` stays relative to the working directory.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def describe_url(url: str) -> str:
    """The URL with its password hidden: what logs and error messages may show."""
    return normalise_url(url).render_as_string(hide_password=True)


class Database:
    """An engine plus the transaction helpers every repository uses.

    `transaction()` is a write transaction (IMMEDIATE on SQLite); `read()` a plain connection.
    Both translate a lost or locked database into `DatabaseUnavailableError`, which callers
    treat as "retry later" (HTTP 503 on the request path).
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self.dialect = self.url.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError(
                f"DATABASE_URL uses {self.dialect!r}; use sqlite:///path.db or "
                "postgresql+psycopg://user:password@host/database"
            )
        self.engine = self._create_engine(echo)
        self._lock = threading.Lock()
        self._probe: Engine | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def sqlite_path(self) -> Path | None:
        """The database file of a SQLite URL (None for PostgreSQL or an in-memory database)."""
        if not self.is_sqlite or not self.url.database or self.url.database == ":memory:":
            return None
        return Path(self.url.database)

    def describe(self) -> str:
        """The URL with its password hidden."""
        return self.url.render_as_string(hide_password=True)

    def _create_engine(self, echo: bool) -> Engine:
        if self.is_sqlite:
            path = self.sqlite_path
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(
                self.url,
                echo=echo,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            )
            _configure_sqlite(engine)
            return engine
        return sa.create_engine(
            self.url,
            echo=echo,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=10,
            pool_recycle=1800,
            # A dead server must not hang a request: fail the connect quickly and retry later.
            connect_args={"connect_timeout": 5},
        )

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction, committed on success and rolled back on error."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise DatabaseUnavailableError(_reason(exc)) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise DatabaseUnavailableError(_reason(exc)) from exc
            raise

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads (no write lock on SQLite)."""
        try:
            with self.engine.connect() as conn:
                conn.info["read_only"] = True
                try:
                    yield conn
                finally:
                    conn.info.pop("read_only", None)
        except OperationalError as exc:
            raise DatabaseUnavailableError(_reason(exc)) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise DatabaseUnavailableError(_reason(exc)) from exc
            raise

    def check_writable(self) -> None:
        """A real committed write: the readiness probe (a rolled-back write would never reach
        the disk, so a full disk would go unnoticed).

        Raises `DatabaseUnavailableError` when the database cannot take a write now (down, disk
        full, read-only, locked past the busy timeout, corrupt, or not migrated).
        """
        try:
            with self._probe_engine().begin() as conn:
                conn.execute(
                    sa.text("UPDATE schema_probe SET probed_at = :now WHERE id = 1"),
                    {"now": time.time()},
                )
        except SQLAlchemyError as exc:
            raise DatabaseUnavailableError(_reason(exc)) from exc

    def _probe_engine(self) -> Engine:
        """SQLite: a fresh connection per probe, which reads the file from disk (a pooled one
        may answer from its cache, and would miss a file corrupted under it). PostgreSQL: the
        pool (checked before use)."""
        if not self.is_sqlite:
            return self.engine
        with self._lock:
            if self._probe is None:
                self._probe = sa.create_engine(
                    self.url,
                    poolclass=NullPool,
                    connect_args={"timeout": 5.0, "check_same_thread": False},
                )
                _configure_sqlite(self._probe)
            return self._probe

    def retrying(
        self,
        work: Callable[[], _T],
        *,
        deadline_seconds: float,
        what: str,
        first_delay: float = 0.2,
        max_delay: float = 5.0,
        stop: Callable[[], bool] | None = None,
    ) -> _T:
        """Run `work` until it stops raising `DatabaseUnavailableError` or the time is up.

        For background loops (workers, relays) that must ride out a database restart: the
        request path does not retry, it answers 503.
        """
        deadline = time.monotonic() + deadline_seconds
        delay = first_delay
        while True:
            try:
                return work()
            except DatabaseUnavailableError as exc:
                if time.monotonic() + delay > deadline or (stop is not None and stop()):
                    raise
                logger.warning(
                    "database unavailable during %s (%s); retrying in %.1f s", what, exc, delay
                )
                time.sleep(delay)
                delay = min(delay * 2, max_delay)

    def dispose(self) -> None:
        self.engine.dispose()
        if self._probe is not None:
            self._probe.dispose()


def _reason(exc: BaseException) -> str:
    """A short reason for logs: the driver's class name and first line, no SQL, no values."""
    original = getattr(exc, "orig", None) or exc
    first = str(original).strip().splitlines()[0] if str(original).strip() else ""
    return f"{type(original).__name__}: {first[:200]}"


def _configure_sqlite(engine: Engine) -> None:
    """WAL, synchronous=FULL, foreign keys; BEGIN IMMEDIATE for writes (see module docstring)."""

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from pysqlite (it would BEGIN lazily and DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN" if conn.info.get("read_only") else "BEGIN IMMEDIATE")
