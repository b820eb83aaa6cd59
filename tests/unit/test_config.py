"""Settings: defaults, validation at startup, and `.env.example` documenting every variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from batchscribe.config import ConfigError, Settings, exit_on_config_error, load_settings

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
    assert s.retention_days == 7
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
    with pytest.raises(ValidationError, match="TRANSCRIBER=deepgram"):
        Settings()
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.problems == [
        "DEEPGRAM_API_KEY: required by TRANSCRIBER=deepgram; set it, or use TRANSCRIBER=sphinx"
    ]
    monkeypatch.setenv("TRANSCRIBER", "sphinx")
    monkeypatch.setenv("CLEANER", "openai")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.problems == [
        "OPENAI_API_KEY: required by CLEANER=openai; set it, or choose another engine"
    ]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert load_settings().cleaner == "openai"


def test_every_bad_variable_is_one_line_naming_it_and_what_it_accepts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PORT", "abc")
    monkeypatch.setenv("TRANSCRIBER", "deepgram")
    monkeypatch.setenv("MAX_UPLOAD_MB", "-1")
    monkeypatch.setenv("LOG_LEVEL", "loud")
    monkeypatch.setenv("EVENT_MAX_BYTES", "2000000")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert sorted(str(info.value).splitlines()) == [
        "DEEPGRAM_API_KEY: required by TRANSCRIBER=deepgram; set it, or use TRANSCRIBER=sphinx",
        "EVENT_MAX_BYTES: '2000000' is not a valid integer (greater than 0, at most 1048576)",
        "LOG_LEVEL: 'loud' is not one of: DEBUG, INFO, WARNING, ERROR",
        "MAX_UPLOAD_MB: '-1' is not a valid number (greater than 0)",
        "PORT: 'abc' is not a valid integer (1-65535)",
    ]


def test_a_bad_value_in_the_dotenv_file_is_named_too(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CLEANER=magic\n")  # tests run in tmp_path
    with pytest.raises(ConfigError, match=r"^CLEANER: 'magic' is not one of: rules, openai$"):
        load_settings()


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "abc")
    monkeypatch.setenv("HOST", "0.0.0.0")
    settings = load_settings(port=9001, host=None)  # None: the flag was not given
    assert (settings.host, settings.port) == ("0.0.0.0", 9001)


def test_entry_points_print_the_lines_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    @exit_on_config_error
    def main() -> int:
        raise ConfigError(["PORT: 'abc' is not a valid integer (1-65535)", "WORKERS: ..."])

    assert main() == 2
    assert capsys.readouterr().err.splitlines() == [
        "PORT: 'abc' is not a valid integer (1-65535)",
        "WORKERS: ...",
    ]


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


def test_the_logged_configuration_hides_the_database_password() -> None:
    settings = Settings(database_url="postgresql+psycopg://batch:s3cret@db.internal:5432/bs")
    shown = settings.redacted()["database_url"]
    assert "s3cret" not in shown
    assert shown == "postgresql+psycopg://batch:***@db.internal:5432/bs"
