"""Errors of authentication and tenancy, each mapped to HTTP in one place (`http/errors.py`).

    AuthError
    ├── AuthenticationError      401: no credentials, an unknown or revoked key, a wrong
    │                                 gateway secret or metrics token (`code` says which)
    ├── TenantMismatchError      403: X-Tenant-ID names another tenant than the key's
    ├── TenantLimitError         429 + Retry-After: over a per-tenant limit
    ├── MetricsHiddenError       404: /metrics outside `none` mode while METRICS_TOKEN is unset
    ├── KeyNotFoundError         the command line: no key has this prefix
    └── InvalidKeyInputError     the command line: a bad tenant id, name or default user

Messages say what to do and never repeat what the client sent.
"""

from __future__ import annotations


class AuthError(Exception):
    """Base class of the errors of `batchscribe.auth`."""

    code = "auth_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class AuthenticationError(AuthError):
    """The request is not authenticated (HTTP 401). `challenge` is the `WWW-Authenticate`
    value to answer with; `reason` the label it is counted and logged under."""

    code = "authentication_required"

    def __init__(self, message: str, *, code: str, reason: str, challenge: str | None) -> None:
        super().__init__(message, code)
        self.reason = reason
        self.challenge = challenge


class TenantMismatchError(AuthError):
    """An `X-Tenant-ID` header names another tenant than the API key's (HTTP 403)."""

    code = "tenant_mismatch"


class TenantLimitError(AuthError):
    """A tenant is over one of its limits (HTTP 429); `retry_after` in whole seconds."""

    code = "rate_limited"

    def __init__(self, message: str, *, code: str, retry_after: int) -> None:
        super().__init__(message, code)
        self.retry_after = max(1, retry_after)


class MetricsHiddenError(AuthError):
    """/metrics is switched off: not `none` mode and no METRICS_TOKEN (HTTP 404, the answer of
    an address where nothing is)."""

    code = "not_found"

    def __init__(self) -> None:
        super().__init__("There is nothing at this address. See /docs for the API.")


class KeyNotFoundError(AuthError):
    """`batchscribe keys revoke` was given a prefix that names no key."""

    code = "key_not_found"


class InvalidKeyInputError(AuthError):
    """`batchscribe keys create` was given a bad tenant id, name or default user."""

    code = "invalid_key_input"
