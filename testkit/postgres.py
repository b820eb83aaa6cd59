"""A real PostgreSQL for tests, benchmarks and chaos runs: a throwaway cluster, or yours.

`PostgresServer()` runs the Debian `postgresql` binaries (`/usr/lib/postgresql/*/bin`, newest
version) as a private cluster in a temporary directory: `initdb`, then the server on a free
loopback port with its socket in that directory and `fsync=off` (test data: a restart, even a
killed server, keeps every commit; only a power cut would not). The server refuses to run as
root, so as root every command runs as the `postgres` system user (which the Debian package
creates) and the directory is handed to that user.

With `TEST_DATABASE_URL` set (`PostgresServer.from_environment()`), that server is used
instead: the session gets a fresh database of its own there, dropped by `cleanup()`, so runs
sharing a server never see each other's rows. Such a server cannot be stopped or restarted.

    server = PostgresServer.from_environment()
    server.start()
    try:
        engine = sqlalchemy.create_engine(server.url)
        with server.fresh_database() as url:  # an empty database for one test
            ...
        server.stop(); server.start()         # data survives (managed servers only)
    finally:
        server.cleanup()
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

__all__ = [
    "ENV_VAR",
    "PostgresError",
    "PostgresServer",
    "PostgresUnavailableError",
    "find_bin_dir",
]

#: The variable naming an existing server to use instead of a throwaway cluster.
ENV_VAR = "TEST_DATABASE_URL"
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SYSTEM_USER = "postgres"
SUPERUSER = "postgres"
INSTALL_HINT = (
    "install the Debian package postgresql (`apt-get install postgresql`, which `make test` "
    f"does when it is missing), or set {ENV_VAR} to a PostgreSQL server you run"
)
# Test speed over durability against power loss; none of this is production configuration.
# Commits stay synchronous: with fsync off a commit is still written to the OS before it returns,
# so a killed server (`stop("immediate")`, the chaos test) loses nothing it acknowledged, whereas
# synchronous_commit=off would drop the last commits and fake a lost event.
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "log_min_messages": "warning",
}
START_TIMEOUT_SECONDS = 60
StopMode = Literal["smart", "fast", "immediate"]


class PostgresError(RuntimeError):
    """The test PostgreSQL could not be set up, started, stopped or used."""


class PostgresUnavailableError(PostgresError):
    """No PostgreSQL server binaries, or no `postgres` system user to run them as."""


def find_bin_dir(pattern: str = DEBIAN_BIN_GLOB) -> Path:
    """The newest `/usr/lib/postgresql/<version>/bin` holding `initdb`, `pg_ctl` and `postgres`."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)

    candidates = [
        path
        for path in map(Path, glob.glob(pattern))
        if all((path / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres"))
    ]
    if not candidates:
        raise PostgresUnavailableError(
            f"no PostgreSQL server binaries under {pattern}: {INSTALL_HINT}"
        )
    return max(candidates, key=version)


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL server for a test session: a private managed cluster, or an external
    server (`external_url`) on which this object owns one database."""

    def __init__(
        self,
        *,
        external_url: str | None = None,
        database: str | None = None,
        bin_dir: Path | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.managed = external_url is None
        self.host = host
        self.database = database or f"bstest_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self._external = make_url(external_url) if external_url is not None else None
        self._bin_dir = bin_dir
        self._base: Path | None = None
        self._port: int | None = None
        self._running = False
        self._database_created = False
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> PostgresServer:
        """The server `TEST_DATABASE_URL` names when set, otherwise a managed cluster."""
        env = os.environ if environ is None else environ
        url = env.get(ENV_VAR, "").strip()
        return cls(external_url=url or None)

    # -- addresses -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._external is not None:
            return int(self._external.port or 5432)
        if self._port is None:
            raise PostgresError("the server has not been started")
        return self._port

    @property
    def url(self) -> str:
        """SQLAlchemy URL (`postgresql+psycopg://...`) of this session's database."""
        return self.url_for(self.database)

    @property
    def admin_url(self) -> str:
        """SQLAlchemy URL of the server's `postgres` database (to create and drop others)."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL of `database` on this server."""
        return self._url(database).render_as_string(hide_password=False)

    def _url(self, database: str) -> URL:
        if self._external is not None:
            return self._external.set(drivername="postgresql+psycopg", database=database)
        return URL.create(
            "postgresql+psycopg",
            username=SUPERUSER,
            host=self.host,
            port=self.port,
            database=database,
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        """Start the server (creating the cluster the first time) and its database. Starting
        a stopped managed server again keeps its data and its port."""
        if self._running:
            return self
        if self._external is not None:
            self._check_external()
        else:
            if self._base is None:
                self._init_cluster()
            self._start_cluster()
        self._running = True
        if not self._database_created:
            self.create_database(self.database)
            self._database_created = True
        return self

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop a managed server: `fast` is a clean shutdown, `immediate` a crash (recovery
        replays the WAL on the next start). Connections are cut either way."""
        if self._external is not None:
            raise PostgresError(
                f"the server named by {ENV_VAR} is not ours to stop; tests that restart "
                "PostgreSQL need a managed server (unset the variable)"
            )
        if not self._running or self._base is None:
            return
        self._pg_ctl("stop", "-m", mode, "-w", "-t", str(START_TIMEOUT_SECONDS))
        self._running = False

    def restart(self, mode: StopMode = "fast") -> None:
        """Stop then start again on the same port, as an operator's restart would."""
        self.stop(mode)
        self.start()

    def cleanup(self) -> None:
        """Stop the server and delete its files; on an external server, drop our database."""
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._external is not None:
            if self._database_created:
                self.drop_database(self.database)
                self._database_created = False
            self._running = False
            return
        if self._base is not None:
            _shutdown_cluster(self._bin_dir, self._base)
            self._base = None
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    # -- databases -------------------------------------------------------------------------

    def create_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """Create an empty database (a copy of `template`, default `template1`); its URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        self._admin(statement)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop `name` if it exists, cutting its remaining connections."""
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    @contextlib.contextmanager
    def fresh_database(self, *, template: str | None = None) -> Iterator[str]:
        """A new empty database for the block; dropped afterwards, connections and all."""
        name = f"{self.database}_{uuid.uuid4().hex[:8]}"
        url = self.create_database(name, template=template)
        try:
            yield url
        finally:
            if self._running:
                self.drop_database(name)

    def connect(self, database: str | None = None) -> psycopg.Connection[Any]:
        """A plain psycopg connection (autocommit) to `database`, default the session's."""
        return psycopg.connect(**self._conninfo(database or self.database), autocommit=True)

    def _admin(self, statement: sql.Composed) -> None:
        if not self._running:
            raise PostgresError("the server is not running; call start() first")
        with self.connect("postgres") as conn:
            conn.execute(statement)

    def _conninfo(self, database: str) -> dict[str, Any]:
        url = self._url(database)
        info: dict[str, Any] = {
            "host": url.host,
            "port": url.port or 5432,
            "user": url.username,
            "dbname": database,
            "connect_timeout": 10,
        }
        if url.password is not None:
            info["password"] = url.password
        # Options such as sslmode=require ride along; `host` may name a socket directory.
        info.update({k: v for k, v in url.query.items() if isinstance(v, str)})
        return info

    # -- the managed cluster ---------------------------------------------------------------

    def _check_external(self) -> None:
        assert self._external is not None
        if not self._external.drivername.startswith(("postgresql", "postgres")):
            raise PostgresError(
                f"{ENV_VAR} must be a postgresql:// URL, not {self._external.drivername}://"
            )
        try:
            with psycopg.connect(**self._conninfo(self._external.database or "postgres")):
                pass
        except psycopg.Error as exc:
            shown = self._external.render_as_string(hide_password=True)
            raise PostgresError(
                f"cannot connect to the server {ENV_VAR} names ({shown}): {exc}; start it, "
                "fix the URL, or unset the variable to use a throwaway cluster"
            ) from exc

    def _init_cluster(self) -> None:
        bin_dir = self._bin_dir = self._bin_dir or find_bin_dir()
        system_user = _system_user()  # fails early, before any file is made, when missing
        base = Path(tempfile.mkdtemp(prefix="batchscribe-pg-"))
        self._base = base
        # A safety net: a session that ends without cleanup() still stops its server.
        self._finalizer = weakref.finalize(self, _shutdown_cluster, bin_dir, base)
        if system_user is not None:
            os.chown(base, system_user.pw_uid, system_user.pw_gid)
        self._run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(base / "data"),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            what="initdb",
        )

    def _start_cluster(self) -> None:
        assert self._base is not None
        retry_port = self._port is None
        for _attempt in range(3):
            if self._port is None:
                self._port = _free_port(self.host)
            settings = {**SERVER_SETTINGS, "listen_addresses": self.host}
            options = [f"-p {self._port}", f"-k {shlex.quote(str(self._base))}"]
            options += [f"-c {name}={value}" for name, value in settings.items()]
            try:
                self._pg_ctl(
                    "start",
                    "-w",
                    "-t",
                    str(START_TIMEOUT_SECONDS),
                    "-l",
                    str(self._base / "server.log"),
                    "-o",
                    " ".join(options),
                )
                return
            except PostgresError:
                if not retry_port or "could not bind" not in self._log_tail():
                    raise
                self._port = None  # someone took the port between our probe and the bind
        raise PostgresError("could not find a free port for PostgreSQL after 3 attempts")

    def _pg_ctl(self, *args: str) -> None:
        assert self._base is not None
        assert self._bin_dir is not None
        self._run([str(self._bin_dir / "pg_ctl"), "-D", str(self._base / "data"), *args], "pg_ctl")

    def _run(self, argv: Sequence[str], what: str) -> None:
        result = subprocess.run(
            _as_server_user(argv),
            cwd=self._base,
            env=_server_env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=START_TIMEOUT_SECONDS + 30,
        )
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip()
            log = self._log_tail()
            raise PostgresError(
                f"{what} failed (exit {result.returncode}): {output[-2000:]}"
                + (f"\nserver log:\n{log}" if log else "")
            )

    def _log_tail(self, lines: int = 20) -> str:
        if self._base is None:
            return ""
        try:
            text = (self._base / "server.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _system_user() -> pwd.struct_passwd | None:
    """The `postgres` account when we are root (the server refuses to run as root); None
    when we are not, and the server runs as us."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError as exc:
        raise PostgresUnavailableError(
            f"running as root but there is no {SYSTEM_USER!r} system user to run PostgreSQL "
            f"as (the server refuses root): {INSTALL_HINT}"
        ) from exc


def _as_server_user(argv: Sequence[str]) -> list[str]:
    """`argv` run as the `postgres` user when we are root (runuser, else su), else as is."""
    if _system_user() is None:
        return list(argv)
    if shutil.which("runuser"):
        return ["runuser", "-u", SYSTEM_USER, "--", *argv]
    return ["su", "-s", "/bin/sh", SYSTEM_USER, "-c", shlex.join(argv)]


def _server_env() -> dict[str, str]:
    """The environment for initdb and pg_ctl: no PG* variable of the caller leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _shutdown_cluster(bin_dir: Path | None, base: Path) -> None:
    """Stop the cluster in `base` if it runs, then delete its files."""
    if bin_dir is None or not (base / "data" / "postmaster.pid").exists():
        shutil.rmtree(base, ignore_errors=True)
        return
    argv = [str(bin_dir / "pg_ctl"), "-D", str(base / "data"), "stop", "-m", "immediate", "-w"]
    subprocess.run(
        _as_server_user(argv),
        cwd=base,
        env=_server_env(),
        capture_output=True,
        check=False,
        timeout=START_TIMEOUT_SECONDS,
    )
    shutil.rmtree(base, ignore_errors=True)
