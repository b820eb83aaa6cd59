"""Shared fixtures. Hygiene first: no test can reach a real AWS, Deepgram or OpenAI account."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchscribe.aws.emulator import EMULATOR_CREDENTIALS, LocalAWSEmulator
from batchscribe.config import get_settings

FIXTURES = Path(__file__).parent / "fixtures"
_SCRUBBED_PREFIXES = ("AWS_", "DEEPGRAM_", "OPENAI_", "MOCK_", "BATCHSCRIBE_")
_SCRUBBED_NAMES = {
    "TRANSCRIBER",
    "CLEANER",
    "OUTBOX_PATH",
    "MAX_UPLOAD_MB",
    "WORKERS",
    "MAX_QUEUED",
    "EVENTBRIDGE_BUS_NAME",
    "EVENT_SOURCE",
    "EVENT_MAX_BYTES",
    "LOG_LEVEL",
    "PORT",
    "HOST",
}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Remove every variable that could point a test at a real service or change defaults.

    boto3 also reads `~/.aws`, so HOME-based config files are pointed at empty paths.
    """
    for name in list(os.environ):
        if name.startswith(_SCRUBBED_PREFIXES) or name in _SCRUBBED_NAMES:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.chdir(tmp_path)  # no stray .env file is read; outbox files land in tmp
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def aws_emulator() -> Iterator[LocalAWSEmulator]:
    """moto's server on a free loopback port for the whole session; reset it between tests
    with `emulator.reset()` where isolation matters."""
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
