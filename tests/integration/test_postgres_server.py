"""The real PostgreSQL the test suite runs on: it starts, answers through SQLAlchemy, keeps its
data across a restart and a crash, gives every test an empty database of its own, and defers to
the server `TEST_DATABASE_URL` names."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from batchscribe.infra.emulator import free_port
from testkit.postgres import (
    ENV_VAR,
    PostgresError,
    PostgresServer,
    PostgresUnavailableError,
    find_bin_dir,
)

ROOT = Path(__file__).resolve().parents[2]


def _databases(server: PostgresServer) -> set[str]:
    with server.connect("postgres") as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def _scalar(url: str, statement: str) -> object:
    """Run `statement` in its own transaction; the first column of its first row, if any."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.exec_driver_sql(statement)
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A managed server of the test's own, free to be stopped without disturbing the others."""
    server = PostgresServer()
    try:
        server.start()
    except PostgresUnavailableError as exc:
        if os.environ.get(ENV_VAR):
            pytest.skip(f"{ENV_VAR} is set and no local server binaries exist: {exc}")
        raise
    try:
        yield server
    finally:
        server.cleanup()


def test_the_session_server_answers_sql_through_sqlalchemy(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+psycopg://")
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE jobs (id text PRIMARY KEY, status text NOT NULL)")
            conn.execute(
                sa.text("INSERT INTO jobs VALUES (:id, :status)"), {"id": "j1", "status": "queued"}
            )
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version_num").scalar()
            rows = conn.exec_driver_sql("SELECT id, status FROM jobs").all()
    finally:
        engine.dispose()
    assert int(str(version)) >= 130000  # DROP DATABASE ... WITH (FORCE) needs 13
    assert [tuple(row) for row in rows] == [("j1", "queued")]


def test_each_test_database_is_empty_and_isolated(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    _scalar(postgres_url, "CREATE TABLE marker AS SELECT 1 AS x")
    with postgres_server.fresh_database() as other_url:
        assert other_url != postgres_url
        assert _scalar(other_url, "SELECT to_regclass('public.marker') IS NULL") is True
        _scalar(other_url, "CREATE TABLE marker AS SELECT 2 AS x")
        assert _scalar(postgres_url, "SELECT x FROM marker") == 1
        assert _scalar(other_url, "SELECT x FROM marker") == 2
        other_name = sa.engine.make_url(other_url).database
        assert other_name in _databases(postgres_server)
    assert other_name not in _databases(postgres_server), "a test's database outlived it"


def test_a_fresh_database_is_dropped_even_with_connections_left_open(
    postgres_server: PostgresServer,
) -> None:
    with postgres_server.fresh_database() as url:
        name = sa.engine.make_url(url).database
        assert name is not None
        leaked = postgres_server.connect(name)  # a test that forgot to close its connection
    assert name not in _databases(postgres_server)
    leaked.close()


def test_committed_data_survives_a_restart_and_a_crash(own_server: PostgresServer) -> None:
    url = own_server.url
    _scalar(url, "CREATE TABLE outbox (id int PRIMARY KEY)")
    _scalar(url, "INSERT INTO outbox VALUES (1)")

    own_server.stop()
    with pytest.raises(sa.exc.OperationalError):
        _scalar(url, "SELECT 1")
    own_server.start()
    assert own_server.url == url, "a restart must keep the port so clients reconnect"
    _scalar(url, "INSERT INTO outbox VALUES (2)")

    own_server.stop("immediate")  # a crash: recovery replays the WAL
    own_server.start()
    assert _scalar(url, "SELECT array_agg(id ORDER BY id) FROM outbox") == [1, 2]


def test_cleanup_stops_the_server_and_deletes_its_files(own_server: PostgresServer) -> None:
    url = own_server.url
    base = own_server._base
    assert base is not None
    assert (base / "data" / "PG_VERSION").is_file()
    own_server.cleanup()
    assert not base.exists()
    with pytest.raises(sa.exc.OperationalError):
        _scalar(url, "SELECT 1")


def test_test_database_url_points_a_session_at_an_existing_server(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, postgres_server.admin_url)
    second = PostgresServer.from_environment()
    second.start()
    try:
        assert not second.managed
        assert second.port == postgres_server.port, "it must use that server, not start one"
        assert second.database in _databases(postgres_server)
        assert second.database != postgres_server.database
        _scalar(second.url, "CREATE TABLE seen AS SELECT 'from the second session' AS who")
        assert _scalar(postgres_server.url_for(second.database), "SELECT who FROM seen") == (
            "from the second session"
        )
        with pytest.raises(PostgresError, match="not ours to stop"):
            second.stop()
    finally:
        second.cleanup()
    assert second.database not in _databases(postgres_server)
    assert _scalar(postgres_server.url, "SELECT 1") == 1, "the server itself must keep running"


def test_the_test_session_fixtures_honour_test_database_url(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """A whole pytest session in a subprocess, with TEST_DATABASE_URL set, runs its tests on
    that server in a database of its own, and drops it when it ends."""
    probe = tmp_path / "test_probe.py"
    probe.write_text(
        textwrap.dedent(
            """
            import os
            import sqlalchemy as sa

            def test_probe(postgres_server, postgres_url):
                assert not postgres_server.managed
                assert postgres_server.port == int(os.environ["EXPECTED_PORT"])
                engine = sa.create_engine(postgres_url)
                with engine.begin() as conn:
                    conn.exec_driver_sql("CREATE TABLE t AS SELECT 1 AS x")
                engine.dispose()
                print("DATABASE", postgres_server.database)
            """
        )
    )
    env = {
        **os.environ,
        ENV_VAR: postgres_server.admin_url,
        "EXPECTED_PORT": str(postgres_server.port),
        "PYTHONPATH": str(ROOT),
    }
    before = _databases(postgres_server)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.conftest",
            "--rootdir",
            str(tmp_path),
            str(probe),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout
    assert "DATABASE bstest_" in result.stdout
    assert _databases(postgres_server) == before, "the session left a database behind"


def test_a_bad_test_database_url_fails_with_a_clear_message() -> None:
    port = free_port()  # nothing listens there
    server = PostgresServer(external_url=f"postgresql://nobody@127.0.0.1:{port}/postgres")
    with pytest.raises(PostgresError, match=f"cannot connect.*{ENV_VAR}"):
        server.start()


def test_missing_server_binaries_say_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(PostgresUnavailableError, match="install the Debian package postgresql"):
        find_bin_dir(str(tmp_path / "nowhere" / "*" / "bin"))
