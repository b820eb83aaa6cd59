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
from typing import Any

import anyio
from fastapi import FastAPI
from starlette.requests import Request

from batchscribe.auth import (
    ApiKey,
    AuthenticationError,
    Authenticator,
    AuthMode,
    TenantMismatchError,
)
from batchscribe.auth.metrics import AUTH_FAILURES
from batchscribe.auth.modes import GATEWAY_HEADER, PUBLIC_PATHS, resolve_mode
from batchscribe.config import Settings
from batchscribe.http.identity import app_settings, get_request_context
from batchscribe.identity import RequestContext

logger = logging.getLogger(__name__)


def authenticator(request: Request) -> Authenticator:
    """The app's `Authenticator`, built by the app factory's lifespan. An app assembled without
    the factory gets one from its settings on first use (`none` and `gateway` modes need no
    database; `api_key` does, and refuses)."""
    auth: Authenticator | None = getattr(request.app.state, "auth", None)
    if auth is None:
        auth = Authenticator(app_settings(request), None)
        request.app.state.auth = auth
    return auth


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme in any case), else None."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


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
    request: Request, settings: Settings, auth: Authenticator
) -> RequestContext:
    """The identity of an authenticated request, or the auth error to answer with."""
    key: ApiKey | None = None
    try:
        if auth.mode is AuthMode.API_KEY:
            token = bearer_token(request)
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


async def require_metrics_access(request: Request, auth: Authenticator) -> None:
    """Open in `none` mode; otherwise Bearer METRICS_TOKEN, and 404 while it is unset."""
    try:
        auth.check_metrics(bearer_token(request))
    except AuthenticationError as exc:
        _log_failure(request, exc.reason)
        raise


def document_security(app: FastAPI, settings: Settings) -> None:
    """Declare in the OpenAPI document (and so in /docs, with its Authorize button) what the
    protected operations need in this mode. Nothing in `none` mode: there they need nothing."""
    mode = resolve_mode(settings)
    if mode is AuthMode.NONE:
        return
    build = app.openapi
    schemes: dict[str, dict[str, Any]] = {
        "MetricsToken": {"type": "http", "scheme": "bearer", "description": "METRICS_TOKEN"},
        "ApiKey": {"type": "http", "scheme": "bearer", "description": "An API key (bsk_...)."},
        "GatewaySecret": {"type": "apiKey", "in": "header", "name": GATEWAY_HEADER},
    }
    needed = "ApiKey" if mode is AuthMode.API_KEY else "GatewaySecret"

    def openapi() -> dict[str, Any]:
        document = build()
        if "securitySchemes" not in document.get("components", {}):
            document.setdefault("components", {})["securitySchemes"] = {
                name: schemes[name] for name in (needed, "MetricsToken")
            }
            for path, operations in document.get("paths", {}).items():
                if path in PUBLIC_PATHS:
                    continue
                scheme = "MetricsToken" if path == "/metrics" else needed
                for operation in operations.values():
                    operation["security"] = [{scheme: []}]
        return document

    app.openapi = openapi  # type: ignore[method-assign]
