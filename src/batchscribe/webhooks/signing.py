"""Standard Webhooks signatures: signing secrets and the three `webhook-*` headers.

A request is signed over `{webhook-id}.{webhook-timestamp}.{body}` with HMAC-SHA256 and each
signature sent as `v1,<base64>`. `webhook-id` identifies the message and stays the same on every
retry (receivers use it to drop duplicates); `webhook-timestamp` is the attempt's time, so each
retry is signed anew. During a secret rotation both the new and the old secret sign, and the
`webhook-signature` header carries both signatures, space separated, as the specification allows:
a receiver that still knows only the old secret keeps verifying.

The HMAC itself comes from `standardwebhooks`, the specification's reference library (MIT, no
dependencies), so our signatures are the ones every Standard Webhooks verifier computes. Its
secret parsing is lenient (it drops characters that are not base64), so secrets are parsed
here, strictly, and handed to it as bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets as random_source
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from standardwebhooks import Webhook

from batchscribe.webhooks.exceptions import InvalidSigningSecret

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
#: The specification's bounds for a symmetric secret (192 to 512 bits).
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
#: Bytes of a secret made by `generate_secret`.
GENERATED_SECRET_BYTES = 32
#: How long the previous secret keeps signing after a rotation.
ROTATION_OVERLAP = timedelta(hours=24)
# The id goes into a header and into the signed content, where a `.` would be ambiguous.
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"


@dataclass(frozen=True)
class SigningSecret:
    """A symmetric signing secret: its raw key bytes. The repr never shows them."""

    key: bytes = field(repr=False)

    @property
    def encoded(self) -> str:
        """The `whsec_...` form shown once to the tenant and stored."""
        return SECRET_PREFIX + base64.b64encode(self.key).decode("ascii")

    def __repr__(self) -> str:
        return f"SigningSecret(<{len(self.key)} bytes>)"


def generate_secret() -> SigningSecret:
    """A new random secret (32 bytes from the operating system's CSPRNG)."""
    return SigningSecret(random_source.token_bytes(GENERATED_SECRET_BYTES))


def parse_secret(text: str) -> SigningSecret:
    """Read a `whsec_<base64>` secret; raise `InvalidSigningSecret` saying what is expected.

    Standard base64, padding optional. The message never repeats the secret.
    """
    expected = (
        f"expected '{SECRET_PREFIX}' followed by the base64 encoding of "
        f"{MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random bytes"
    )
    text = text.strip()
    if not text.startswith(SECRET_PREFIX):
        raise InvalidSigningSecret(
            f"the webhook signing secret has no '{SECRET_PREFIX}' prefix; {expected}"
        )
    encoded = text[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSigningSecret(
            f"the webhook signing secret is not valid base64; {expected}"
        ) from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise InvalidSigningSecret(f"the webhook signing secret has {len(key)} bytes; {expected}")
    return SigningSecret(key)


def new_message_id() -> str:
    """A fresh `webhook-id` (`msg_` + 32 hex digits); store it so every retry reuses it."""
    return f"msg_{uuid.uuid4().hex}"


def signing_secrets(
    current: SigningSecret,
    previous: SigningSecret | None = None,
    *,
    rotated_at: datetime | None = None,
    now: datetime | None = None,
) -> tuple[SigningSecret, ...]:
    """The secrets that sign a request: the current one, and the previous one for
    `ROTATION_OVERLAP` (24 h) after `rotated_at`, so receivers can switch at their pace."""
    if previous is None or rotated_at is None:
        return (current,)
    now = now or datetime.now(UTC)
    return (current, previous) if now < rotated_at + ROTATION_OVERLAP else (current,)


def sign(
    msg_id: str, timestamp: int, body: bytes, secrets: Sequence[SigningSecret]
) -> dict[str, str]:
    """The `webhook-id`, `webhook-timestamp` and `webhook-signature` headers for one attempt.

    `timestamp` is the attempt's Unix time in seconds; `body` the exact bytes that will be sent
    (UTF-8, as JSON is). One `v1,<signature>` per secret, in the order given.
    """
    if not secrets:
        raise ValueError("sign() needs at least one signing secret")
    if not _MESSAGE_ID.match(msg_id):
        raise ValueError("a webhook-id has 1 to 128 letters, digits, '_' or '-'")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError("the webhook timestamp is a non-negative number of Unix seconds")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("a webhook body is UTF-8 (JSON)") from None
    # The reference library takes an aware datetime and signs its whole seconds.
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    signatures = [Webhook(secret.key).sign(msg_id, when, text) for secret in secrets]
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: " ".join(signatures),
    }
