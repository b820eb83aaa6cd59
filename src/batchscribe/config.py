"""One place that reads every environment variable batchscribe understands.

Every field here is listed, with its default, in `.env.example` and the README's configuration
table. Validators fail at startup on nonsense so a bad deploy never half-works: `load_settings()`
turns pydantic's report into a `ConfigError` with one line per bad variable (the variable's name
and what it accepts), and every entry point prints those lines and exits 2, never a traceback.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import os
import re
import sys
import types
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, ParamSpec, Union, get_args, get_origin

import annotated_types
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SECRET_FIELDS = (
    "aws_secret_access_key",
    "aws_session_token",
    "deepgram_api_key",
    "openai_api_key",
    "gateway_secret",
    "metrics_token",
    "webhook_secret",
    "webhook_encryption_key",
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
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64)
    max_queued: int = Field(8, ge=0, description="Requests that may wait for a free worker.")
    upload_dir: Path | None = Field(None, description="Temporary upload directory.")

    # Request limits (every request's cost is bounded; see SECURITY.md). Each is enforced while
    # the request arrives, never after buffering it.
    max_upload_mb: float = Field(
        100, gt=0, description="Largest request body (all form parts), in MiB; 413 beyond."
    )
    max_form_parts: int = Field(
        16, ge=1, le=1000, description="Most parts a multipart form may have; 400 beyond."
    )
    max_header_bytes: int = Field(
        16384,
        ge=1024,
        le=1048576,
        description="Request line and headers together, in bytes; 431 beyond.",
    )
    header_timeout_seconds: float = Field(
        10, gt=0, description="Time a client has to send complete request headers."
    )
    upload_idle_timeout_seconds: float = Field(
        30, gt=0, description="Longest pause between two pieces of a request body; 408 beyond."
    )
    upload_timeout_seconds: float = Field(
        900, gt=0, description="Longest time to receive a whole request body; 408 beyond."
    )
    max_concurrent_uploads: int = Field(
        64, ge=1, description="Uploads one process reads at once; 503 + Retry-After beyond."
    )

    # Engines
    transcriber: Literal["sphinx", "deepgram", "openai"] = "sphinx"
    cleaner: Literal["rules", "openai"] = "rules"
    deepgram_api_key: SecretStr | None = Field(None, validate_default=True)
    deepgram_base_url: str = "https://api.deepgram.com"
    deepgram_timeout_seconds: float = Field(120, gt=0)
    deepgram_model: str = Field(
        "nova-3",
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Deepgram model, sent as `model` (nova-3, nova-2, ...).",
    )
    openai_api_key: SecretStr | None = Field(None, validate_default=True)
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
    # SPEC 11: every stored transcript (outbox rows, job results) goes after this many days.
    retention_days: float = Field(
        7, gt=0, validation_alias=AliasChoices("retention_days", "outbox_retention_days")
    )
    shutdown_grace_seconds: float = Field(10, ge=0)
    relay_lease_seconds: float = Field(30, gt=0)
    relay_max_backoff_seconds: float = Field(300, gt=0)
    # PutEvents calls (10 events each) one relay makes at once; at most the client's 10
    # pooled connections.
    relay_concurrency: int = Field(4, ge=1, le=10)

    # Local AWS emulator used by `make run`
    local_aws_port: int = Field(4566, ge=1, le=65535)

    # Application database, jobs and workers (SPEC 11, 13, 14)
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///var/batchscribe.db (or OUTBOX_PATH)."
    )
    auto_migrate: bool | None = Field(None, description="Migrate at startup (default: SQLite).")
    job_max_attempts: int = Field(3, ge=1, le=20)
    job_lease_seconds: float = Field(30, ge=1, le=3600)
    job_timeout_factor: float = Field(2.0, gt=0, le=100)
    job_deadline_grace_seconds: float = Field(60, gt=0, le=86400)
    job_poll_seconds: float = Field(0.5, gt=0, le=60)
    max_audio_seconds: float = Field(14400, gt=0)
    max_sync_audio_seconds: float = Field(600, gt=0)
    keep_audio: bool = False

    # Long recordings in parallel (SPEC 16): a job on the embedded engine longer than
    # SPLIT_MIN_SECONDS is cut at silences into pieces that any worker can take.
    split_min_seconds: float = Field(
        300, gt=0, description="Jobs longer than this (seconds) are split across workers."
    )
    split_target_seconds: float = Field(
        120, ge=5, le=3600, description="Length the pieces of a split job aim at (seconds)."
    )
    openai_max_upload_mb: float = Field(
        25, gt=0, description="Largest file the OpenAI-compatible service takes, in MB."
    )

    # Authentication and tenancy (SPEC 12). Declared in this order on purpose: a validator sees
    # the fields declared before it (`host`, then `allow_unauthenticated`, then `auth_mode`).
    allow_unauthenticated: bool = Field(
        False, description="Allow AUTH_MODE=none on a bind address other than loopback."
    )
    auth_mode: Literal["api_key", "gateway", "none"] | None = Field(
        None, description="api_key, gateway or none; default none on loopback, else api_key."
    )
    gateway_secret: SecretStr | None = Field(None, validate_default=True)
    metrics_token: SecretStr | None = None
    tenant_max_active_jobs: int = Field(8, ge=1, le=100000)
    tenant_requests_per_minute: int = Field(120, ge=1, le=1000000)

    @field_validator("auth_mode")
    @classmethod
    def _none_only_on_loopback(cls, value: str | None, info: ValidationInfo) -> Any:
        host = str(info.data.get("host", ""))
        if (
            value == "none"
            and not is_loopback_host(host)
            and not info.data.get("allow_unauthenticated")
        ):
            raise ValueError(
                f"none on HOST={host} lets anyone who reaches it act as any tenant; use "
                "AUTH_MODE=api_key (keys from `batchscribe keys create`) or gateway, or set "
                "ALLOW_UNAUTHENTICATED=true if something else guards this address"
            )
        return value

    @field_validator("gateway_secret")
    @classmethod
    def _gateway_needs_its_secret(cls, value: SecretStr | None, info: ValidationInfo) -> Any:
        if info.data.get("auth_mode") != "gateway":
            return value
        if value is None or len(value.get_secret_value()) < 16:
            raise ValueError(
                "required by AUTH_MODE=gateway: a random value of at least 16 characters that "
                "the gateway sends as X-Gateway-Secret (e.g. `openssl rand -hex 32`)"
            )
        return value

    @field_validator("deepgram_base_url", "openai_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    # Field validators rather than one model validator: each missing key is reported as its own
    # variable, beside any other bad value (a model validator runs only once every field is valid).
    # The engine fields are declared first, so `info.data` holds them when they are valid.
    @field_validator("deepgram_api_key")
    @classmethod
    def _deepgram_needs_its_key(cls, value: SecretStr | None, info: ValidationInfo) -> Any:
        if value is None and info.data.get("transcriber") == "deepgram":
            raise ValueError("required by TRANSCRIBER=deepgram; set it, or use TRANSCRIBER=sphinx")
        return value

    @field_validator("openai_api_key")
    @classmethod
    def _openai_needs_its_key(cls, value: SecretStr | None, info: ValidationInfo) -> Any:
        users = [name for name in ("transcriber", "cleaner") if info.data.get(name) == "openai"]
        if value is None and users:
            using = " and ".join(f"{name.upper()}=openai" for name in users)
            raise ValueError(f"required by {using}; set it, or choose another engine")
        return value

    @property
    def database(self) -> str:
        """The application database URL: DATABASE_URL, else the SQLite file OUTBOX_PATH names
        (deployments of earlier versions keep their file), else `sqlite:///var/batchscribe.db`."""
        if self.database_url:
            return self.database_url
        if "outbox_path" in self.model_fields_set:
            return f"sqlite:///{self.outbox_path}"
        return "sqlite:///var/batchscribe.db"

    @property
    def migrate_at_startup(self) -> bool:
        """AUTO_MIGRATE, defaulting to true on SQLite and false on PostgreSQL."""
        if self.auto_migrate is not None:
            return self.auto_migrate
        return self.database.startswith("sqlite")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def redacted(self) -> dict[str, Any]:
        """The configuration as a dict safe to log: secrets show only whether they are set."""
        data = self.model_dump(mode="json")
        for name in SECRET_FIELDS:
            data[name] = "***" if getattr(self, name) is not None else None
        data["aws_access_key_id"] = "***" if self.aws_access_key_id else None
        data["database_url"] = _without_password(self.database)
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

    # Job webhooks (callback_url, SPEC 13)
    webhook_secret: SecretStr | None = Field(
        None,
        description="Signing secret (whsec_...) for tenants without their own (none and "
        "gateway modes).",
    )
    webhook_encryption_key: SecretStr | None = Field(
        None,
        description="Encrypts tenants' signing secrets in the database: 32+ random characters; "
        "several, comma-separated, while rotating (the first encrypts).",
    )
    callback_allow_private_networks: bool = Field(
        False, description="Also allow http and private/loopback callback addresses."
    )
    callback_inline_max_bytes: int = Field(
        65536, gt=0, description="Largest webhook body that carries the transcript inline."
    )
    callback_timeout_seconds: float = Field(
        10, gt=0, le=60, description="Time limit of one delivery attempt (DNS to response)."
    )
    callback_retry_delays: Annotated[tuple[float, ...], NoDecode] = Field(
        (5, 30, 120, 600, 1800, 3600, 7200, 14400, 21600, 28800),
        description="Seconds between delivery attempts, comma-separated; the last repeats.",
    )
    callback_retry_window_seconds: float = Field(
        86400, gt=0, le=7 * 86400, description="How long a callback is retried before failed."
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
                "must be 'whsec_' followed by the base64 of 24 to 64 random bytes (make one with "
                "`batchscribe webhooks new-secret`)"
            )
        return SecretStr(text)

    @field_validator("webhook_encryption_key")
    @classmethod
    def _encryption_keys_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        keys = [key.strip() for key in value.get_secret_value().split(",")]
        if not keys or any(len(key) < 32 for key in keys):
            raise ValueError(
                "must be at least 32 random characters (e.g. `openssl rand -hex 32`), or several "
                "such keys separated by commas while rotating"
            )
        return SecretStr(",".join(keys))

    @field_validator("callback_retry_delays", mode="before")
    @classmethod
    def _delays_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",")]
            try:
                value = tuple(float(part) for part in parts)
            except ValueError:
                value = ()
        if not value or any(not 0 < float(delay) <= 86400 for delay in value):
            raise ValueError(
                "must be seconds between attempts, comma-separated, each above 0 and at most "
                "86400, e.g. 5,30,120,600"
            )
        return value


def _without_password(url: str) -> str:
    """A database URL as logs may show it: `postgresql+psycopg://user:***@host/db`."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a valid URL)"


def is_loopback_host(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine (127.0.0.0/8, ::1,
    localhost). `0.0.0.0`, `::`, other names and addresses are reachable from elsewhere."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConfigError(Exception):
    """The configuration has bad values. `problems` holds one line per bad variable, naming it
    and saying what it accepts; `str()` joins them, ready for stderr."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


#: Exit code of every entry point when the configuration is bad.
EXIT_CONFIG_ERROR = 2


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and `.env`, with `overrides` (command-line flags) on top;
    None values are ignored. Raises `ConfigError` when a value is bad."""
    values = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError([_problem(error) for error in exc.errors()]) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Raises `ConfigError` when a value is bad."""
    return load_settings()


_P = ParamSpec("_P")


def exit_on_config_error(main: Callable[_P, int]) -> Callable[_P, int]:
    """Wrap an entry point: a bad configuration prints its lines on stderr and returns exit
    code 2 instead of a traceback."""

    @functools.wraps(main)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_CONFIG_ERROR

    return run


# -- turning pydantic's errors into lines a deployer can act on ------------------------------


def _problem(error: ErrorDetails) -> str:
    """`PORT: 'abc' is not a valid integer (1-65535)`: one line for one bad variable."""
    name = str(error["loc"][0]) if error["loc"] else ""
    field = Settings.model_fields.get(name)
    if field is None:  # not about one field: the message says it all
        return error["msg"]
    variable = name.upper()
    if error["type"] == "value_error":  # our own validators: their message is the rule
        return f"{variable}: {error['msg'].removeprefix('Value error, ')}"
    allowed = _allowed(field)
    if name in SECRET_FIELDS:  # never echo a secret back
        return f"{variable}: the value is not {allowed}"
    shown = repr(_shorten(str(error.get("input", ""))))
    return f"{variable}: {shown} is not {allowed}"


def _shorten(value: str, limit: int = 40) -> str:
    return value if len(value) <= limit else value[:limit] + "..."


_KIND_WORDS: dict[Any, str] = {
    int: "a valid integer",
    float: "a valid number",
    bool: "true or false",
    Path: "a valid path",
}


def _allowed(field: FieldInfo) -> str:
    """What a field accepts, in words: `a valid integer (1-65535)`, `one of: rules, openai`."""
    kinds = [t for t in _flatten(field.annotation) if t is not type(None)]
    if len(kinds) == 1 and get_origin(kinds[0]) is Literal:
        return "one of: " + ", ".join(str(choice) for choice in get_args(kinds[0]))
    words = _KIND_WORDS.get(kinds[0], "a valid value") if len(kinds) == 1 else "a valid value"
    bounds = _bounds(field)
    return f"{words} ({bounds})" if bounds else words


def _flatten(annotation: Any) -> list[Any]:
    if get_origin(annotation) in (Union, types.UnionType):
        return [t for arg in get_args(annotation) for t in _flatten(arg)]
    return [annotation]


def _bounds(field: FieldInfo) -> str:
    """The numeric limits of a field: `1-65535`, `greater than 0`, `0-2`..."""
    limits = {
        key: value
        for item in field.metadata
        if isinstance(item, annotated_types.BaseMetadata)
        for key in ("ge", "gt", "le", "lt")
        if (value := getattr(item, key, None)) is not None
    }
    if "ge" in limits and "le" in limits:
        return f"{_number(limits['ge'])}-{_number(limits['le'])}"
    words = {"ge": "at least", "gt": "greater than", "le": "at most", "lt": "less than"}
    return ", ".join(f"{words[key]} {_number(value)}" for key, value in limits.items())


def _number(value: Any) -> str:
    """`0.0` -> `0`, `1048576` -> `1048576`, `2.5` -> `2.5`."""
    return str(int(value)) if float(value).is_integer() else str(value)
