"""AUTH_MODE: its default by bind address, the refusal of `none` on a public bind (one line,
exit 2), gateway and metrics secrets compared in constant time."""

from __future__ import annotations

import hmac
import logging
from typing import Any

import pytest
from pydantic import SecretStr

from batchscribe import cli
from batchscribe.auth import AuthenticationError, Authenticator, AuthMode, resolve_mode
from batchscribe.auth.exceptions import MetricsHiddenError
from batchscribe.auth.modes import check_gateway_secret, log_mode
from batchscribe.config import ConfigError, Settings, is_loopback_host, load_settings


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.53", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_default_mode_is_none_on_loopback_and_api_key_elsewhere() -> None:
    assert resolve_mode(settings()) is AuthMode.NONE  # HOST defaults to 127.0.0.1
    assert resolve_mode(settings(host="0.0.0.0")) is AuthMode.API_KEY
    assert resolve_mode(settings(host="0.0.0.0", auth_mode="gateway", gateway_secret="s" * 16)) is (
        AuthMode.GATEWAY
    )
    assert resolve_mode(settings(auth_mode="api_key")) is AuthMode.API_KEY


def test_limit_defaults_match_the_spec() -> None:
    defaults = settings()
    assert defaults.tenant_max_active_jobs == 8
    assert defaults.tenant_requests_per_minute == 120
    assert defaults.allow_unauthenticated is False
    assert defaults.metrics_token is None


def test_none_on_a_public_bind_is_one_config_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_MODE", "none")
    monkeypatch.setenv("HOST", "0.0.0.0")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert len(error.value.problems) == 1
    line = error.value.problems[0]
    assert line.startswith("AUTH_MODE: ")
    assert "ALLOW_UNAUTHENTICATED=true" in line
    assert "api_key" in line


def test_serve_on_a_public_bind_without_auth_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The `--host` flag is the bind address the check uses."""
    monkeypatch.setenv("AUTH_MODE", "none")
    assert cli.main(["serve", "--host", "0.0.0.0", "--port", "8123"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("AUTH_MODE: none on HOST=0.0.0.0")


def test_allow_unauthenticated_starts_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    allowed = settings(host="0.0.0.0", auth_mode="none", allow_unauthenticated=True)
    with caplog.at_level(logging.INFO):
        assert log_mode(allowed) is AuthMode.NONE
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "anyone who reaches this service" in warnings[0].getMessage()


def test_gateway_mode_needs_a_long_enough_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_MODE", "gateway")
    for value in (None, "short"):
        if value is not None:
            monkeypatch.setenv("GATEWAY_SECRET", value)
        with pytest.raises(ConfigError) as error:
            load_settings()
        assert error.value.problems[0].startswith("GATEWAY_SECRET: required by AUTH_MODE=gateway")
        assert "short" not in str(error.value)  # a secret is never echoed


def test_secrets_are_redacted_in_the_startup_configuration() -> None:
    configured = settings(
        auth_mode="gateway", gateway_secret="g" * 32, metrics_token="m" * 32
    ).redacted()
    assert configured["gateway_secret"] == "***"
    assert configured["metrics_token"] == "***"
    assert "g" * 32 not in str(configured)
    assert "m" * 32 not in str(configured)


def test_gateway_secret_is_compared_with_hmac_compare_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Constant time: the comparison goes through `hmac.compare_digest` on equal-length
    digests, whatever the length of what was sent, and only the exact secret passes."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    secret = SecretStr("the-gateway-secret-0123456789")
    check_gateway_secret("the-gateway-secret-0123456789", secret)
    for wrong in ("the-gateway-secret-012345678X", "t", "", "the-gateway-secret-0123456789 "):
        with pytest.raises(AuthenticationError) as error:
            check_gateway_secret(wrong, secret)
        assert error.value.code == "gateway_secret_required"
        assert "gateway-secret" not in str(error.value)  # what was sent is never echoed
    assert len(calls) == 5
    assert all(len(a) == len(b) == 32 for a, b in calls)
    with pytest.raises(AuthenticationError):
        check_gateway_secret(None, secret)


def test_metrics_token_is_compared_with_hmac_compare_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[bytes] = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(a) or real(a, b))
    auth = Authenticator(
        settings(auth_mode="gateway", gateway_secret="g" * 16, metrics_token="m" * 20), None
    )
    auth.check_metrics("m" * 20)
    with pytest.raises(AuthenticationError):
        auth.check_metrics("m" * 19)
    assert len(calls) == 2
    hidden = Authenticator(settings(auth_mode="gateway", gateway_secret="g" * 16), None)
    with pytest.raises(MetricsHiddenError):
        hidden.check_metrics("m" * 20)
    Authenticator(settings(), None).check_metrics(None)  # none mode: open


def test_api_key_mode_needs_the_database() -> None:
    with pytest.raises(ValueError, match="application database"):
        Authenticator(settings(auth_mode="api_key"), None)
