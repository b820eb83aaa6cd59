"""Authentication at the HTTP edge: the FastAPI side of `batchscribe.auth`.

`authenticated_context` is what `ContextDep` runs, so every route that needs an identity is
protected by taking it: in `api_key` mode the bearer key names the tenant, in `gateway` mode the
request must carry X-Gateway-Secret, in `none` mode the headers are trusted as before. Then the
tenant's requests-per-minute limit is counted. `require_metrics_access` guards /metrics.

Failures are logged once (reason, method, route, client address; never what was sent) and
counted in `batchscribe_auth_failures_total`.
"""

from __future__ import annotations

import logging

import anyio
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import Request

from batchscribe.auth import (
    ApiKey,
    AuthenticationError,
    Authenticator,
    AuthMode,
    TenantMismatchError,
)
from batchscribe.auth.metrics import AUTH_FAILURES
from batchscribe.auth.modes import GATEWAY_HEADER
from batchscribe.config import Settings
from batchscribe.http.identity import app_settings, get_request_context
from batchscribe.identity import RequestContext

logger = logging.getLogger(__name__)

#: Documents the bearer scheme in OpenAPI (the Authorize button of /docs); never refuses by
#: itself, so each mode answers with its own message.
bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An API key (bsk_...) when AUTH_MODE=api_key; METRICS_TOKEN for /metrics.",
)


def authenticator(request: Request) -> Authenticator:
    """The app's `Authenticator`, built by the app factory's lifespan. An app assembled without
    the factory gets one from its settings on first use (`none` and `gateway` modes need no
    database; `api_key` does, and refuses)."""
    auth: Authenticator | None = getattr(request.app.state, "auth", None)
    if auth is None:
        auth = Authenticator(app_settings(request), None)
        request.app.state.auth = auth
    return auth


def _token(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    return credentials.credentials.strip() if credentials is not None else None


def _log_failure(request: Request, reason: str, key: ApiKey | None = None) -> None:
    AUTH_FAILURES.labels(reason).inc()
    route = getattr(request.scope.get("route"), "path", "unmatched")
    extra = {
        "reason": reason,
        "method": request.method,
        "route": route,
        "client": request.client.host if request.client else None,
    }
    if key is not None:  # a real key of ours: its prefix and tenant, never the key
        extra.update(key_prefix=key.display, key_tenant_id=key.tenant_id)
    logger.warning("authentication failed", extra=extra)


async def authenticated_context(
    request: Request,
    settings: Settings,
    auth: Authenticator,
    credentials: HTTPAuthorizationCredentials | None,
) -> RequestContext:
    """The identity of an authenticated request, or the auth error to answer with."""
    key: ApiKey | None = None
    try:
        if auth.mode is AuthMode.API_KEY:
            token = _token(credentials)
            key = auth.key_from_cache(token)
            if key is None:  # not remembered: ask the database, off the event loop
                key = await anyio.to_thread.run_sync(auth.authenticate_key, token)
        elif auth.mode is AuthMode.GATEWAY:
            auth.check_gateway(request.headers.get(GATEWAY_HEADER))
        context = get_request_context(request, settings, key=key)
    except AuthenticationError as exc:
        _log_failure(request, exc.reason)
        raise
    except TenantMismatchError:
        _log_failure(request, "tenant_mismatch", key)
        raise
    auth.limit_request(context.tenant_id)
    return context


async def require_metrics_access(
    request: Request, auth: Authenticator, credentials: HTTPAuthorizationCredentials | None
) -> None:
    """Open in `none` mode; otherwise Bearer METRICS_TOKEN, and 404 while it is unset."""
    try:
        auth.check_metrics(_token(credentials))
    except AuthenticationError as exc:
        _log_failure(request, exc.reason)
        raise
