"""The webhook retry schedule, the body a receiver gets, and the sealing of stored secrets:
what the README promises (12 attempts over 24 hours, the last at 24 h), the inline-or-URL
rule, and secrets that only the right key opens."""

from __future__ import annotations

import itertools
import json
import time
from types import SimpleNamespace

import pytest

from batchscribe.config import ConfigError, load_settings
from batchscribe.webhooks.exceptions import SecretUnreadable
from batchscribe.webhooks.payload import completed_body, failed_body
from batchscribe.webhooks.schedule import RetrySchedule
from batchscribe.webhooks.signing import generate_secret
from batchscribe.webhooks.tenant_secrets import SecretBox
from tests.support.jobs import result_of


def test_the_default_schedule_is_twelve_attempts_over_exactly_24_hours() -> None:
    offsets = RetrySchedule().planned_offsets()
    assert offsets == [
        0,
        5,
        35,
        155,
        755,
        2555,
        6155,
        13355,
        27755,
        49355,
        78155,
        86400,
    ]
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert gaps[:-1] == sorted(gaps[:-1])  # the delay grows while the receiver stays down


def test_each_delay_is_jittered_within_ten_percent_and_clipped_to_the_window() -> None:
    schedule = RetrySchedule()
    now = time.time()
    give_up = now + 86400
    for attempts, delay in ((1, 5), (2, 30), (10, 28800), (50, 28800)):
        for _ in range(50):
            at = schedule.next_attempt_at(attempts, now, give_up)
            assert at is not None
            assert 0.9 * delay <= at - now <= 1.1 * delay
    assert schedule.next_attempt_at(3, give_up - 10, give_up) == give_up  # the last, at 24 h
    assert schedule.next_attempt_at(3, give_up, give_up) is None  # then: failed


def test_a_receivers_retry_after_delays_the_next_attempt_up_to_an_hour() -> None:
    schedule = RetrySchedule(jitter=0.0)
    now = time.time()
    give_up = now + 86400
    assert schedule.next_attempt_at(1, now, give_up, retry_after=120) == now + 120
    assert schedule.next_attempt_at(1, now, give_up, retry_after=1) == now + 5  # never earlier
    assert schedule.next_attempt_at(1, now, give_up, retry_after=10**6) == now + 3600


def test_the_schedule_settings_are_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBACK_RETRY_DELAYS", "1, 2.5,60")
    assert load_settings().callback_retry_delays == (1.0, 2.5, 60.0)
    monkeypatch.setenv("CALLBACK_RETRY_DELAYS", "1,soon")
    with pytest.raises(ConfigError, match=r"^CALLBACK_RETRY_DELAYS: must be seconds"):
        load_settings()
    monkeypatch.delenv("CALLBACK_RETRY_DELAYS")
    assert load_settings().callback_retry_delays == (5, 30, 120, 600, 1800, 3600, 7200, 14400,
                                                     21600, 28800)  # fmt: skip


def _job(**fields: object) -> SimpleNamespace:
    values: dict[str, object] = {
        "id": "0b5f8a59-5c1e-4a43-8f7a-0f3c4e0f1b2d",
        "tenant_id": "6f1c2a9e-3b7d-4c1e-9a8f-2d5b7c9e1f03",
        "user_id": "alice",
        "account_id": "acct-42",
        "status": "completed",
        "metadata": {"meeting": "weekly"},
        "created_at": 1796000000.0,
        "finished_at": 1796000012.5,
        "duration_seconds": 3.4219,
        "engine": "sphinx",
        "language": None,
        "status_url": "https://transcribe.example.com/batch/jobs/0b5f8a59",
    }
    values.update(fields)
    return SimpleNamespace(**values)


def test_a_body_carries_the_result_inline_while_it_fits_else_the_jobs_url() -> None:
    small = json.loads(completed_body(_job(), result_of("hello there"), inline_max_bytes=65536))
    assert small["type"] == "batch.completed"
    assert small["timestamp"] == "2026-11-30T00:53:32.500Z"
    data = small["data"]
    assert data["result"]["cleaned_transcript"] == "SPEAKER_0: hello there"
    assert data["result_url"] is None
    assert data["language"] == "en"  # the engine's, once known
    assert (data["account_id"], data["duration_seconds"]) == ("acct-42", 3.422)

    big = completed_body(_job(), result_of("word " * 5000), inline_max_bytes=4096)
    assert len(big) <= 4096
    data = json.loads(big)["data"]
    assert data["result"] is None
    assert data["result_url"] == "https://transcribe.example.com/batch/jobs/0b5f8a59"


def test_a_failed_body_has_the_error_and_nothing_of_a_result() -> None:
    body = json.loads(failed_body(_job(status="failed"), "engine_timeout", "Too slow."))
    assert body["type"] == "batch.failed"
    assert body["data"]["error"] == {"code": "engine_timeout", "message": "Too slow."}
    assert body["data"]["result"] is None
    assert body["data"]["result_url"] is None


def test_sealed_secrets_open_only_with_one_of_their_keys() -> None:
    secret = generate_secret()
    old_key, new_key = "old-key-0123456789-0123456789-0123", "new-key-0123456789-0123456789-0123"
    old = SecretBox([old_key])
    sealed = old.seal(secret)
    assert sealed.startswith("fernet:")
    assert secret.encoded not in sealed
    assert secret.encoded.removeprefix("whsec_") not in sealed
    assert old.open(sealed) == secret
    rotating = SecretBox(
        ["new-key-0123456789-0123456789-0123", "old-key-0123456789-0123456789-0123"]
    )
    assert rotating.open(sealed) == secret
    resealed = rotating.reseal(sealed)
    assert SecretBox([new_key]).open(resealed) == secret
    with pytest.raises(SecretUnreadable, match="cannot be decrypted"):
        old.open(resealed)
    with pytest.raises(SecretUnreadable, match="not set"):
        SecretBox().open(sealed)
    assert SecretBox().seal(secret) == "plain:" + secret.encoded
    assert SecretBox().open("plain:" + secret.encoded) == secret
    assert "bytes>" in repr(secret)  # a secret's repr never shows it


def test_the_encryption_key_setting_refuses_short_keys_without_echoing_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEBHOOK_ENCRYPTION_KEY", "0123456789abcdef0123456789abcdef,short-one")
    with pytest.raises(ConfigError, match=r"^WEBHOOK_ENCRYPTION_KEY: must be at least 32") as err:
        load_settings()
    assert "short-one" not in str(err.value)
    monkeypatch.setenv("WEBHOOK_ENCRYPTION_KEY", " 0123456789abcdef0123456789abcdef ")
    settings = load_settings()
    assert settings.redacted()["webhook_encryption_key"] == "***"
