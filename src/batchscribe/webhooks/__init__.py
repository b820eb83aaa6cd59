"""Signed webhooks, sent safely: the library a job's `callback_url` delivery is built on.

- `signing`: Standard Webhooks signatures (`webhook-id`, `webhook-timestamp`,
  `webhook-signature`), `whsec_` secrets, rotation (old and new secret both sign for 24 h).
- `urls`: `validate_callback_url`, the check at submission.
- `addresses`: `is_public_address`, the one rule for where a webhook may go.
- `sender`: `send`, one attempt: resolve once, refuse non-public addresses, connect to a
  checked address (`transport`), no redirects, bounded time and response size.

Storage, retry schedule and leases live above this package; nothing here touches a database,
the HTTP framework or the settings (callers pass values in), so it runs anywhere.
"""

from __future__ import annotations

from batchscribe.webhooks.addresses import address_problem, is_public_address
from batchscribe.webhooks.exceptions import (
    InvalidCallbackUrl,
    InvalidSigningSecret,
    WebhookError,
)
from batchscribe.webhooks.sender import DeliveryResult, Outcome, Resolver, send
from batchscribe.webhooks.signing import (
    SigningSecret,
    generate_secret,
    new_message_id,
    parse_secret,
    sign,
    signing_secrets,
)
from batchscribe.webhooks.urls import CallbackUrl, validate_callback_url

__all__ = [
    "CallbackUrl",
    "DeliveryResult",
    "InvalidCallbackUrl",
    "InvalidSigningSecret",
    "Outcome",
    "Resolver",
    "SigningSecret",
    "WebhookError",
    "address_problem",
    "generate_secret",
    "is_public_address",
    "new_message_id",
    "parse_secret",
    "send",
    "sign",
    "signing_secrets",
    "validate_callback_url",
]
