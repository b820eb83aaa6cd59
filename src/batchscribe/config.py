"""One place that reads every environment variable batchscribe understands.

Every field here is listed, with its default, in `.env.example` and the README's configuration
table. Validators fail at startup on nonsense so a bad deploy never half-works.
"""

from __future__ import annotations

import base64
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_FIELDS = (
    "aws_secret_access_key",
    "aws_session_token",
    "deepgram_api_key",
    "openai_api_key",
    "webhook_secret",
)


class Settings(BaseSettings):
    """batchscribe configuration, read from the environment and an optional `.env` file."""

    model_config = SettingsConfigDict(
        env_file=".env", env_ignore_empty=True, extra="ignore", frozen=True
    )

    # HTTP server
    host: str = Field("127.0.0.1", description="Interface the server binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port the server listens on.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Uploads and the worker pool
    max_upload_mb: float = Field(100, gt=0, description="Largest accepted upload, in MiB.")
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64)
    max_queued: int = Field(8, ge=0, description="Requests that may wait for a free worker.")
    upload_dir: Path | None = Field(None, description="Temporary upload directory.")

    # Engines
    transcriber: Literal["sphinx", "deepgram", "openai"] = "sphinx"
    cleaner: Literal["rules", "openai"] = "rules"
    deepgram_api_key: SecretStr | None = None
    deepgram_base_url: str = "https://api.deepgram.com"
    deepgram_timeout_seconds: float = Field(120, gt=0)
    openai_api_key: SecretStr | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    openai_model: str = "gpt-4o"
    openai_transcribe_model: str = "whisper-1"
    openai_temperature: float = Field(0.0, ge=0, le=2)
    openai_max_concurrency: int = Field(4, ge=1, le=64)
    openai_timeout_seconds: float = Field(60, gt=0)

    # Identity fallbacks (the plan's multi-tenancy variables)
    mock_tenant_id: str | None = None
    mock_user_id: str | None = None

    # AWS / EventBridge
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    eventbridge_bus_name: str = "default"
    event_source: str = "com.yourapp.transcription"
    event_max_bytes: int = Field(262144, gt=0, le=1048576)
    sqs_queue_name: str = "meeting-transcripts-queue"
    sqs_dlq_name: str = "meeting-transcripts-dlq"
    eventbridge_rule_name: str = "capture-transcripts-rule"

    # Durable outbox and relay
    outbox_path: Path = Path("var/outbox.db")
    outbox_retention_days: float = Field(7, gt=0)
    shutdown_grace_seconds: float = Field(10, ge=0)
    relay_lease_seconds: float = Field(30, gt=0)
    relay_max_backoff_seconds: float = Field(300, gt=0)

    # Local AWS emulator used by `make run`
    local_aws_port: int = Field(4566, ge=1, le=65535)

    @field_validator("deepgram_base_url", "openai_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _hosted_engines_need_keys(self) -> Settings:
        if self.transcriber == "deepgram" and self.deepgram_api_key is None:
            raise ValueError("TRANSCRIBER=deepgram needs DEEPGRAM_API_KEY; set it or use sphinx")
        if "openai" in (self.transcriber, self.cleaner) and self.openai_api_key is None:
            raise ValueError("TRANSCRIBER/CLEANER=openai needs OPENAI_API_KEY; set it")
        return self

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def redacted(self) -> dict[str, Any]:
        """The configuration as a dict safe to log: secrets show only whether they are set."""
        data = self.model_dump(mode="json")
        for name in SECRET_FIELDS:
            data[name] = "***" if getattr(self, name) is not None else None
        data["aws_access_key_id"] = "***" if self.aws_access_key_id else None
        return data

    # Job webhooks (callback_url)
    webhook_secret: SecretStr | None = Field(
        None, description="Signing secret (whsec_...) for tenants without their own."
    )
    callback_allow_private_networks: bool = Field(
        False, description="Also allow http and private/loopback callback addresses."
    )
    callback_inline_max_bytes: int = Field(
        65536, gt=0, description="Largest webhook body that carries the transcript inline."
    )

    @field_validator("webhook_secret")
    @classmethod
    def _whsec_format(cls, value: SecretStr | None) -> SecretStr | None:
        # The format rule of batchscribe.webhooks.signing.parse_secret, repeated here because
        # config imports nothing of the package; a unit test keeps the two in agreement.
        if value is None:
            return None
        text = value.get_secret_value().strip()
        encoded = text.removeprefix("whsec_")
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except ValueError:
            key = b""
        if not text.startswith("whsec_") or not 24 <= len(key) <= 64:
            raise ValueError(
                "WEBHOOK_SECRET must be 'whsec_' followed by the base64 of 24 to 64 random bytes"
            )
        return SecretStr(text)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
