"""Authentication and tenancy (SPEC 12): who may call the service, as which tenant, how often.

    modes.py       AUTH_MODE (api_key, gateway, none) and constant-time secret comparison
    keys.py        the key format (`bsk_...`), its SHA-256, `KeyStore` on the application database
    cache.py       short-lived lookups (revocation reaches every instance within seconds) and
                   coalesced last-used writes
    limits.py      per-tenant requests per minute and queued-or-running jobs
    service.py     `Authenticator`, what the HTTP layer asks
    cli.py         `batchscribe keys create|list|revoke`
    exceptions.py  the error tree, mapped to 401/403/404/429 in `http/errors.py`

No web framework in here: the HTTP layer hands over header values.
"""

from batchscribe.auth.exceptions import (
    AuthenticationError,
    AuthError,
    MetricsHiddenError,
    TenantLimitError,
    TenantMismatchError,
)
from batchscribe.auth.keys import ApiKey, KeyStore
from batchscribe.auth.modes import AuthMode, resolve_mode
from batchscribe.auth.service import Authenticator, active_jobs_limit

__all__ = [
    "ApiKey",
    "AuthError",
    "AuthMode",
    "AuthenticationError",
    "Authenticator",
    "KeyStore",
    "MetricsHiddenError",
    "TenantLimitError",
    "TenantMismatchError",
    "active_jobs_limit",
    "resolve_mode",
]
