"""`Authenticator`: the one object the HTTP layer asks "who is this?" and "may they?".

Built from the settings and the application database when the app starts; it knows nothing of
HTTP (it is handed header values, and raises the errors of `auth/exceptions.py`).

    mode api_key   key_from_cache / authenticate_key -> ApiKey, or AuthenticationError
    mode gateway   check_gateway(X-Gateway-Secret)
    every mode     check_metrics(token); limit_request(tenant) outside `none`
"""

from __future__ import annotations

import logging

from batchscribe.auth.cache import KeyCache, UsageRecorder
from batchscribe.auth.exceptions import AuthenticationError, MetricsHiddenError
from batchscribe.auth.keys import KEY_PREFIX, ApiKey, KeyStore, hash_key, looks_like_key
from batchscribe.auth.limits import TenantRateLimiter
from batchscribe.auth.modes import (
    BEARER_CHALLENGE,
    AuthMode,
    check_gateway_secret,
    check_metrics_token,
    log_mode,
    resolve_mode,
)
from batchscribe.config import Settings
from batchscribe.db.engine import Database

logger = logging.getLogger(__name__)


def _missing_key() -> AuthenticationError:
    return AuthenticationError(
        "This service needs an API key: send it as Authorization: Bearer <key>. Ask the "
        "service's operator for one (they create keys with `batchscribe keys create`).",
        code="authentication_required",
        reason="missing_key",
        challenge=BEARER_CHALLENGE,
    )


def _invalid_key(reason: str) -> AuthenticationError:
    return AuthenticationError(
        f"The API key is not valid. Check that you sent the whole key ({KEY_PREFIX}...), or ask "
        "the service's operator for a new one.",
        code="invalid_api_key",
        reason=reason,
        challenge=BEARER_CHALLENGE + ', error="invalid_token"',
    )


def _revoked_key() -> AuthenticationError:
    return AuthenticationError(
        "This API key was revoked. Ask the service's operator for a new one.",
        code="api_key_revoked",
        reason="revoked_key",
        challenge=BEARER_CHALLENGE + ', error="invalid_token"',
    )


class Authenticator:
    """Authentication and per-tenant request limits of one server process."""

    def __init__(self, settings: Settings, db: Database | None) -> None:
        self.settings = settings
        self.mode = resolve_mode(settings)
        self.store: KeyStore | None = None
        self.cache: KeyCache | None = None
        self.usage: UsageRecorder | None = None
        if self.mode is AuthMode.API_KEY:
            if db is None:
                raise ValueError("AUTH_MODE=api_key needs the application database")
            self.store = KeyStore(db)
            self.cache = KeyCache(self.store)
            self.usage = UsageRecorder(self.store)
        self.rate = (
            TenantRateLimiter(settings.tenant_requests_per_minute)
            if self.mode is not AuthMode.NONE
            else None
        )

    def start(self) -> None:
        log_mode(self.settings)
        if self.usage is not None:
            self.usage.start()

    def stop(self) -> None:
        if self.usage is not None:
            self.usage.stop()

    # -- api_key ---------------------------------------------------------------------------------

    def key_from_cache(self, token: str | None) -> ApiKey | None:
        """The key for a bearer token when the answer needs no database read: the key, or an
        `AuthenticationError` (missing, malformed, remembered as unknown or revoked); None when
        the database must be asked (`authenticate_key`, in a thread)."""
        if not token:
            raise _missing_key()
        if not looks_like_key(token):
            raise _invalid_key("malformed_key")
        assert self.cache is not None
        hit, record = self.cache.cached(hash_key(token))
        return self._accept(record) if hit else None

    def authenticate_key(self, token: str | None) -> ApiKey:
        """The key for a bearer token, asking the database on a cache miss (blocking). Raises
        `AuthenticationError`, or `DatabaseUnavailableError` when keys cannot be read."""
        cached = self.key_from_cache(token)
        if cached is not None:
            return cached
        assert self.cache is not None
        assert token is not None
        return self._accept(self.cache.lookup(hash_key(token)))

    def _accept(self, record: ApiKey | None) -> ApiKey:
        if record is None:
            raise _invalid_key("unknown_key")
        if record.revoked:
            raise _revoked_key()
        assert self.usage is not None
        self.usage.touch(record.key_hash)
        return record

    # -- gateway and metrics -----------------------------------------------------------------------

    def check_gateway(self, secret: str | None) -> None:
        """In gateway mode, raise `AuthenticationError` unless the request carries the secret."""
        if self.mode is AuthMode.GATEWAY:
            assert self.settings.gateway_secret is not None, "validated at startup"
            check_gateway_secret(secret, self.settings.gateway_secret)

    def check_metrics(self, token: str | None) -> None:
        """Open in `none` mode; otherwise the METRICS_TOKEN bearer token, and hidden
        (`MetricsHiddenError`, 404) while METRICS_TOKEN is unset."""
        if self.mode is AuthMode.NONE:
            return
        if self.settings.metrics_token is None:
            raise MetricsHiddenError()
        check_metrics_token(token, self.settings.metrics_token)

    # -- limits ----------------------------------------------------------------------------------

    def limit_request(self, tenant_id: str) -> None:
        """Count a request of the tenant; `TenantLimitError` (429) when over its minute."""
        if self.rate is not None:
            self.rate.hit(tenant_id)


def active_jobs_limit(settings: Settings) -> int | None:
    """TENANT_MAX_ACTIVE_JOBS where it applies (`api_key` and `gateway` modes), else None."""
    return None if resolve_mode(settings) is AuthMode.NONE else settings.tenant_max_active_jobs
