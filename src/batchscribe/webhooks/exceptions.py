"""Errors of the webhook library (signing secrets and callback URLs).

    WebhookError
    ├── InvalidCallbackUrl      a callback_url is refused at submission (the message says what
    │                           is accepted)
    └── InvalidSigningSecret    a signing secret is not `whsec_` + base64 of 24 to 64 bytes

A delivery attempt never raises: its outcome is a `DeliveryResult` (delivered, gone, retry,
refused...), because every failure of a remote receiver is data for the retry schedule, not a
bug. Both errors are also `ValueError`s so input validation (pydantic, argparse) treats them
as bad input. No message contains a secret or a webhook body.
"""

from __future__ import annotations


class WebhookError(Exception):
    """Base class of every error of the webhook library."""


class InvalidCallbackUrl(WebhookError, ValueError):
    """The callback URL cannot be accepted; the message names the problem and what is allowed."""


class InvalidSigningSecret(WebhookError, ValueError):
    """A signing secret is malformed (wrong prefix, not base64, or too short or long)."""
