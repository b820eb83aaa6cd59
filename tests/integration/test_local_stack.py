"""Local mode (`make run`): the emulator comes up provisioned, and the flow works against it."""

from __future__ import annotations

import socket

import pytest

from batchscribe.config import Settings
from batchscribe.infra.emulator import free_port
from batchscribe.infra.exceptions import LocalStackError
from batchscribe.infra.local import (
    banner,
    real_aws_configured,
    service_environment,
    start_local_aws,
)
from batchscribe.infra.verify import EventFlowVerifier
from tests.support.aws_tooling import restore_cli_logging, run_cli  # noqa: F401 - fixture


def test_start_local_aws_provisions_an_emulator_the_verifier_succeeds_against(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    monkeypatch.setenv("LOCAL_AWS_PORT", str(port))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALLOOKINGKEY00")  # a "real" account: ignored
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "real-looking-secret")
    settings = Settings()
    assert real_aws_configured(settings)
    emulator, result = start_local_aws(settings)
    try:
        assert emulator.endpoint_url == f"http://127.0.0.1:{port}"
        assert result.ok
        assert result.queue_url is not None
        assert result.queue_url.startswith(emulator.endpoint_url)
        text = banner(settings, emulator.endpoint_url, result)
        assert f"batchscribe tail --endpoint-url {emulator.endpoint_url}" in text
        assert f"batchscribe verify --endpoint-url {emulator.endpoint_url}" in text

        env = service_environment(settings, emulator.endpoint_url)
        assert env["AWS_ENDPOINT_URL"] == emulator.endpoint_url
        assert env["AWS_ACCESS_KEY_ID"] == "testing"  # the real key never reaches the service

        # What a second terminal does while `make run` is up.
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        assert run_cli("verify", "--endpoint-url", emulator.endpoint_url, "--timeout", "5") == 0
    finally:
        emulator.stop()


def test_busy_port_gives_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        monkeypatch.setenv("LOCAL_AWS_PORT", str(busy.getsockname()[1]))
        with pytest.raises(LocalStackError, match="LOCAL_AWS_PORT"):
            start_local_aws(Settings())


def test_default_verifier_settings_match_the_spec() -> None:
    verifier = EventFlowVerifier(sqs_client=object(), events_client=object())
    assert (verifier.timeout, verifier.poll_interval, verifier.visibility_timeout) == (30, 2, 10)
