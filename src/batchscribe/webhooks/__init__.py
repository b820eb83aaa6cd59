"""Job webhooks (SPEC 13): a job submitted with a `callback_url` gets a signed POST when it ends,
delivered durably from the application database like the outbox's events.

The library (no database, no HTTP framework, no settings; callers pass values in):
- `signing`: Standard Webhooks signatures (`webhook-id`, `webhook-timestamp`,
  `webhook-signature`), `whsec_` secrets, rotation (old and new secret both sign for 24 h).
- `urls`: `validate_callback_url`, the check at submission.
- `addresses`: `is_public_address`, the one rule for where a webhook may go.
- `sender`: `send`, one attempt: resolve once, refuse non-public addresses, connect to a
  checked address (`transport`), no redirects, bounded time and response size.

Durable delivery on top of it:
- `payload`: the body (`batch.completed` / `batch.failed`), built once when the job ends.
- `hook`: `WebhookJobEvents`, the job store's hook writing a delivery in the job's final
  transaction; `deliveries`: `DeliveryStore`, the deliveries and their attempts.
- `schedule`: `RetrySchedule`, growing delays within 24 hours; `dispatcher`: the sender thread
  (leases, one attempt per due delivery); `tenant_secrets`: per-tenant secrets, encrypted at
  rest with WEBHOOK_ENCRYPTION_KEY; `runtime`: `WebhooksRuntime`; `cli`: `batchscribe webhooks`.
"""

from __future__ import annotations

from batchscribe.webhooks.addresses import address_problem, is_public_address
from batchscribe.webhooks.exceptions import (
    InvalidCallbackUrl,
    InvalidSigningSecret,
    WebhookError,
)
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
    "InvalidCallbackUrl",
    "InvalidSigningSecret",
    "SigningSecret",
    "WebhookError",
    "address_problem",
    "generate_secret",
    "is_public_address",
    "new_message_id",
    "parse_secret",
    "sign",
    "signing_secrets",
    "validate_callback_url",
]
