"""`AUTH_MODE`: who may call the service, and how it knows.

    api_key   every route but the public ones needs `Authorization: Bearer bsk_...`; the key
              names the tenant (the default on any bind address but loopback)
    gateway   a trusted proxy in front authenticates callers and sets the identity headers;
              each request proves it came through the proxy with `X-Gateway-Secret`
    none      the plan's behaviour: identity from the headers, `MOCK_*` fallbacks (the default
              on a loopback bind; elsewhere only with ALLOW_UNAUTHENTICATED=true)

The refusal of `none` on a public bind is a configuration error (`config.py` validates it with
the other settings, one line and exit 2); this module resolves the mode in force and compares
the shared secrets, always in constant time (`hmac.compare_digest`), so the time an answer takes
says nothing about how much of a secret was right.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from enum import StrEnum

from pydantic import SecretStr

from batchscribe.auth.exceptions import AuthenticationError
from batchscribe.config import Settings, is_loopback_host

logger = logging.getLogger(__name__)

GATEWAY_HEADER = "X-Gateway-Secret"
#: Routes every mode serves to anyone: probes, the web page and the API documentation (plus
#: the static files under /static/). Everything else that needs an identity is protected.
PUBLIC_PATHS = frozenset(
    {"/healthz", "/readyz", "/", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
BEARER_CHALLENGE = 'Bearer realm="batchscribe"'


class AuthMode(StrEnum):
    API_KEY = "api_key"
    GATEWAY = "gateway"
    NONE = "none"


def resolve_mode(settings: Settings) -> AuthMode:
    """AUTH_MODE, or its default: `none` on a loopback bind address (HOST), `api_key` on any
    other."""
    if settings.auth_mode is not None:
        return AuthMode(settings.auth_mode)
    return AuthMode.NONE if is_loopback_host(settings.host) else AuthMode.API_KEY


def log_mode(settings: Settings) -> AuthMode:
    """Log the mode in force at startup; a WARNING when nothing guards a public bind."""
    mode = resolve_mode(settings)
    public = not is_loopback_host(settings.host)
    if mode is AuthMode.NONE and public:
        logger.warning(
            "AUTH_MODE=none on a public bind address (ALLOW_UNAUTHENTICATED=true): anyone who "
            "reaches this service can act as any tenant",
            extra={"auth_mode": str(mode), "host": settings.host},
        )
    else:
        logger.info("authentication", extra={"auth_mode": str(mode), "host": settings.host})
    return mode


def secrets_equal(given: str | None, expected: SecretStr) -> bool:
    """Constant-time comparison of a presented secret with the configured one. Both sides are
    hashed first, so not even the secret's length shows in the timing."""
    if given is None:
        return False
    given_digest = hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest()
    expected_digest = hashlib.sha256(expected.get_secret_value().encode("utf-8")).digest()
    return hmac.compare_digest(given_digest, expected_digest)


def check_gateway_secret(given: str | None, expected: SecretStr) -> None:
    """Raise `AuthenticationError` unless `given` (the X-Gateway-Secret header) is the secret."""
    if not secrets_equal(given, expected):
        raise AuthenticationError(
            f"This service accepts requests only through its gateway ({GATEWAY_HEADER} missing "
            "or wrong). Call it through the gateway, or ask its operator.",
            code="gateway_secret_required",
            reason="missing_gateway_secret" if given is None else "wrong_gateway_secret",
            challenge=None,
        )


def check_metrics_token(given: str | None, expected: SecretStr) -> None:
    """Raise `AuthenticationError` unless `given` (a bearer token) is METRICS_TOKEN."""
    if not secrets_equal(given, expected):
        raise AuthenticationError(
            "GET /metrics needs Authorization: Bearer <METRICS_TOKEN>. Configure your scraper "
            "with the token this service was started with.",
            code="metrics_token_required",
            reason="missing_metrics_token" if given is None else "wrong_metrics_token",
            challenge=BEARER_CHALLENGE,
        )
