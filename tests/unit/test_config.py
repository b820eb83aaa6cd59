"""Settings: defaults, validation at startup, and `.env.example` documenting every variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from batchscribe.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented_in_env_example_and_readme() -> None:
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))
    declared = {name.upper() for name in Settings.model_fields}
    assert declared - documented == set(), "add these to .env.example"
    assert documented - declared == set(), "these are in .env.example but not read"
    readme = (ROOT / "README.md").read_text()
    missing = sorted(name for name in declared if f"`{name}`" not in readme)
    assert missing == [], "add these to the README configuration table"


def test_defaults_match_the_spec() -> None:
    s = Settings()
    assert s.max_upload_mb == 100
    assert s.transcriber == "sphinx"
    assert s.cleaner == "rules"
    assert s.aws_region == "us-east-1"
    assert s.eventbridge_bus_name == "default"
    assert s.event_source == "com.yourapp.transcription"
    assert s.event_max_bytes == 262144
    assert s.outbox_retention_days == 7
    assert s.shutdown_grace_seconds == 10
    assert s.local_aws_port == 4566
    assert s.openai_model == "gpt-4o"
    assert s.workers >= 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_UPLOAD_MB", "-1"),
        ("TRANSCRIBER", "whisper-local"),
        ("CLEANER", "magic"),
        ("WORKERS", "0"),
        ("PORT", "70000"),
    ],
)
def test_nonsense_fails_at_startup(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert name.lower() in str(info.value)


def test_hosted_engines_require_their_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSCRIBER", "deepgram")
    with pytest.raises(ValidationError, match="DEEPGRAM_API_KEY"):
        Settings()
    monkeypatch.setenv("TRANSCRIBER", "sphinx")
    monkeypatch.setenv("CLEANER", "openai")
    with pytest.raises(ValidationError, match="OPENAI_API_KEY"):
        Settings()


def test_empty_variables_mean_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "")
    assert Settings().aws_region == "us-east-1"


def test_redacted_hides_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY123456")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-value")
    text = str(Settings().redacted())
    for secret in ("AKIAEXAMPLEKEY123456", "wJalrXUtnFEMI", "sk-test-secret-value"):
        assert secret not in text
    assert Settings().redacted()["openai_api_key"] == "***"
