"""Shared fixtures. Hygiene first: no test can reach a real AWS, Deepgram or OpenAI account."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchscribe.config import get_settings
from batchscribe.infra.emulator import EMULATOR_CREDENTIALS, LocalAWSEmulator
from testkit.environment import aws_isolation, is_scrubbed
from testkit.postgres import PostgresServer

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Remove every variable that could point a test at a real service or change defaults.

    boto3 also reads `~/.aws`, so HOME-based config files are pointed at empty paths.
    """
    for name in list(os.environ):
        if is_scrubbed(name):
            monkeypatch.delenv(name, raising=False)
    for name, value in aws_isolation(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no stray .env file is read; outbox files land in tmp
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def aws_emulator() -> Iterator[LocalAWSEmulator]:
    """moto's server on a free loopback port for the whole session; reset it between tests
    with `testkit.aws.reset_emulator()` where isolation matters."""
    emulator = LocalAWSEmulator()
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def emulator_env(
    aws_emulator: LocalAWSEmulator, monkeypatch: pytest.MonkeyPatch
) -> LocalAWSEmulator:
    """Point boto3 (and our Settings) at the emulator with its dummy credentials."""
    for name, value in EMULATOR_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_emulator.endpoint_url)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    get_settings.cache_clear()
    return aws_emulator


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the session: a throwaway cluster on a free loopback port, or the
    server `TEST_DATABASE_URL` names (with a database of this session's own, dropped at the
    end). See testkit/postgres.py."""
    server = PostgresServer.from_environment()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test (a `postgresql+psycopg://` URL), dropped after it,
    so no test sees another's rows."""
    postgres_server.start()  # back up if an earlier test stopped it and failed
    with postgres_server.fresh_database() as url:
        yield url
