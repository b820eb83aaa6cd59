"""One place that reads every environment variable batchscribe understands.

Every field here is listed, with its default, in `.env.example` and the README's configuration
table. Validators fail at startup on nonsense so a bad deploy never half-works.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_FIELDS = ("aws_secret_access_key", "aws_session_token", "deepgram_api_key", "openai_api_key")


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

    # Blob store: uploaded audio until its job ends, and results too large to keep inline.
    blob_store: str = Field(
        "file://var/blobs",
        description="file://PATH (one machine) or s3://BUCKET[/PREFIX] (several machines).",
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3-compatible store or emulator; default AWS_ENDPOINT_URL, then AWS."
    )

    @field_validator("blob_store")
    @classmethod
    def _blob_store_form(cls, value: str) -> str:
        # The full parse (prefix segments) is batchscribe.blobs.parse_blob_store; this is the
        # startup check of the form, kept here because config imports nothing of ours.
        value = value.strip()
        if value.startswith("file://") and len(value) > len("file://"):
            return value
        bucket = value.removeprefix("s3://").partition("/")[0]
        if value.startswith("s3://") and re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
            return value
        raise ValueError(
            f"BLOB_STORE={value!r} is not understood; use file://PATH (file://var/blobs, "
            "file:///srv/blobs) or s3://BUCKET[/PREFIX]"
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
