"""Standard Webhooks signing: the published test vector, secrets, rotation, and the
WEBHOOK_SECRET setting agreeing with the secret parser."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from batchscribe.config import ConfigError, Settings, load_settings
from batchscribe.webhooks import (
    InvalidSigningSecret,
    generate_secret,
    new_message_id,
    parse_secret,
    sign,
    signing_secrets,
)
from tests.support.webhooks import verify_signature

# The example every Standard Webhooks library is tested with.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_specifications_test_vector() -> None:
    headers = sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, [parse_secret(VECTOR_SECRET)])
    assert headers == {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    assert verify_signature(VECTOR_SECRET, headers, VECTOR_BODY)


def test_each_secret_adds_one_signature_in_order() -> None:
    new, old = generate_secret(), generate_secret()
    headers = sign("msg_1", 1700000000, b"{}", [new, old])
    first, second = headers["webhook-signature"].split(" ")
    assert first == sign("msg_1", 1700000000, b"{}", [new])["webhook-signature"]
    assert second == sign("msg_1", 1700000000, b"{}", [old])["webhook-signature"]


def test_generated_secrets_are_random_and_round_trip() -> None:
    secret = generate_secret()
    assert secret.encoded.startswith("whsec_")
    assert len(base64.b64decode(secret.encoded.removeprefix("whsec_"))) == 32
    assert parse_secret(secret.encoded) == secret
    assert generate_secret() != secret


def test_a_secret_never_shows_in_its_repr() -> None:
    secret = generate_secret()
    assert secret.encoded.removeprefix("whsec_") not in repr(secret)
    assert "32 bytes" in repr(secret)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "no 'whsec_' prefix"),
        ("whsec_not base64!!", "not valid base64"),
        ("whsec_" + base64.b64encode(b"k" * 16).decode(), "has 16 bytes"),
        ("whsec_" + base64.b64encode(b"k" * 65).decode(), "has 65 bytes"),
        ("whsec_", "has 0 bytes"),
    ],
)
def test_malformed_secrets_are_refused_with_what_is_expected(text: str, problem: str) -> None:
    with pytest.raises(InvalidSigningSecret) as info:
        parse_secret(text)
    message = str(info.value)
    assert problem in message
    assert "24 to 64 random bytes" in message


def test_unpadded_base64_is_accepted() -> None:
    secret = generate_secret()
    assert parse_secret(secret.encoded.rstrip("=")) == secret


def test_the_old_secret_signs_for_24_hours_after_rotation() -> None:
    new, old = generate_secret(), generate_secret()
    rotated = datetime(2026, 1, 1, 12, tzinfo=UTC)
    during = signing_secrets(new, old, rotated_at=rotated, now=rotated + timedelta(hours=23))
    after = signing_secrets(new, old, rotated_at=rotated, now=rotated + timedelta(hours=24))
    assert during == (new, old)
    assert after == (new,)
    assert signing_secrets(new) == (new,)


@pytest.mark.parametrize(
    ("msg_id", "timestamp", "body", "secrets_count"),
    [
        ("msg.with.dots", 1, b"{}", 1),  # a '.' would make the signed content ambiguous
        ("", 1, b"{}", 1),
        ("msg_1", -1, b"{}", 1),
        ("msg_1", 1, b"\xff\xfe", 1),
        ("msg_1", 1, b"{}", 0),
    ],
)
def test_sign_refuses_what_a_receiver_could_not_verify(
    msg_id: str, timestamp: int, body: bytes, secrets_count: int
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (each case has its own message)
        sign(msg_id, timestamp, body, [generate_secret() for _ in range(secrets_count)])


def test_message_ids_are_unique_and_header_safe() -> None:
    ids = {new_message_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(i.startswith("msg_") and "." not in i for i in ids)


# -- WEBHOOK_SECRET --------------------------------------------------------------------------

SECRET_CASES = [
    generate_secret().encoded,
    generate_secret().encoded.rstrip("="),
    "whsec_" + base64.b64encode(b"k" * 24).decode(),
    "whsec_" + base64.b64encode(b"k" * 64).decode(),
    "whsec_" + base64.b64encode(b"k" * 23).decode(),
    "whsec_" + base64.b64encode(b"k" * 65).decode(),
    "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "whsec_%%%%",
    "whsec_abc",
]


@pytest.mark.parametrize("text", SECRET_CASES)
def test_webhook_secret_setting_accepts_exactly_what_the_signer_accepts(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", text)
    try:
        parse_secret(text)
    except InvalidSigningSecret:
        with pytest.raises(ConfigError, match=r"^WEBHOOK_SECRET: must be 'whsec_'") as refused:
            load_settings()
        assert text not in str(refused.value)  # never echoed back
    else:
        settings = Settings()
        assert settings.webhook_secret is not None
        assert parse_secret(settings.webhook_secret.get_secret_value()) == parse_secret(text)


def test_webhook_settings_defaults_and_redaction(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    assert defaults.webhook_secret is None
    assert defaults.callback_allow_private_networks is False
    assert defaults.callback_inline_max_bytes == 65536
    secret = generate_secret().encoded
    monkeypatch.setenv("WEBHOOK_SECRET", secret)
    monkeypatch.setenv("CALLBACK_ALLOW_PRIVATE_NETWORKS", "true")
    settings = Settings()
    assert settings.callback_allow_private_networks is True
    assert settings.redacted()["webhook_secret"] == "***"
    assert secret.removeprefix("whsec_") not in str(settings.redacted())
    monkeypatch.setenv("CALLBACK_INLINE_MAX_BYTES", "0")
    with pytest.raises(ConfigError, match=r"^CALLBACK_INLINE_MAX_BYTES: '0' is not"):
        load_settings()
