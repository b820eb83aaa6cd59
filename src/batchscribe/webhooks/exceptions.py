"""Errors of the webhooks component.

    WebhookError
    ├── InvalidCallbackUrl        a callback_url is refused at submission (the message says what
    │                             is accepted)
    ├── InvalidSigningSecret      a signing secret is not `whsec_` + base64 of 24 to 64 bytes
    ├── CallbackSecretMissing     a callback_url was given, but nothing could sign its webhook
    │                             (no tenant secret and no WEBHOOK_SECRET fallback)
    ├── SecretUnreadable          a stored tenant secret cannot be decrypted (WEBHOOK_ENCRYPTION_KEY
    │                             missing or wrong)
    ├── DeliveryNotFound          no delivery with that id, message id or job id
    └── DeliveryStoreError        the deliveries cannot be read or written now (database)

A delivery attempt never raises: its outcome is a `DeliveryResult` (delivered, gone, retry,
refused...), because every failure of a remote receiver is data for the retry schedule, not a
bug. `InvalidCallbackUrl` and `InvalidSigningSecret` are also `ValueError`s so input validation
(pydantic, argparse) treats them as bad input. No message contains a secret or a webhook body.
"""

from __future__ import annotations


class WebhookError(Exception):
    """Base class of every error of the webhooks component."""


class InvalidCallbackUrl(WebhookError, ValueError):
    """The callback URL cannot be accepted; the message names the problem and what is allowed."""


class InvalidSigningSecret(WebhookError, ValueError):
    """A signing secret is malformed (wrong prefix, not base64, or too short or long)."""


class CallbackSecretMissing(WebhookError):
    """A job asks for a callback, but its tenant has no signing secret and no fallback applies;
    the message says how an operator creates one."""


class SecretUnreadable(WebhookError):
    """A stored signing secret cannot be opened with the configured WEBHOOK_ENCRYPTION_KEY."""


class DeliveryNotFound(WebhookError, LookupError):
    """No webhook delivery matches the id given."""


class DeliveryStoreError(WebhookError):
    """The webhook tables cannot be used now (the database is down, locked or full)."""
