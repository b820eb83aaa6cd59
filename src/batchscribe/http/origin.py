"""No cross-site uploads: a browser request with an unsafe method from another site's page is
refused with 403.

Without authentication (AUTH_MODE `none`, today's only mode) the service acts for whoever reaches
it, so any page a user visits could make their browser POST a recording to it (a multipart form
POST needs no CORS preflight), processed and billed to MOCK_TENANT_ID. Browsers send `Origin` on
every such request; the service's own page at `/` sends its own origin and keeps working.
Requests without `Origin` (curl, SDKs, other servers) are not a browser acting for another site
and pass. "Own origin" means the host and port of the `Host` header the request was sent to, so
a TLS-terminating proxy in front must pass `Host` through unchanged.

With an API key or a gateway secret on every request (AUTH_MODE `api_key`, `gateway`), another
site's page cannot supply the credential, and the rule would only stand in the way of
legitimate browser clients: `cross_origin_check_applies` is where those modes switch it off.
"""

from __future__ import annotations

import logging
import uuid
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from batchscribe.auth.modes import AuthMode, resolve_mode
from batchscribe.config import Settings
from batchscribe.http.identity import shorten

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

CROSS_ORIGIN_MESSAGE = (
    "This service does not accept requests sent by another site's page. Use the service's own "
    "page, or call the API directly (for example with curl) rather than from a browser on "
    "another site."
)


def cross_origin_check_applies(settings: Settings) -> bool:
    """Whether unsafe cross-origin browser requests are refused: in AUTH_MODE `none`, where a
    visitor's browser could otherwise upload in the name of MOCK_TENANT_ID. With `api_key` or
    `gateway`, a request must carry a key or the gateway's secret, which another site's page
    does not have."""
    return resolve_mode(settings) is AuthMode.NONE


def _host_and_port(netloc: str) -> tuple[str, int | None] | None:
    """`example.com:8000` -> ("example.com", 8000); a default port (80, 443) counts as none."""
    try:
        parts = urlsplit("//" + netloc)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    return host, (None if port in _DEFAULT_PORTS.values() else port)


def is_cross_origin(method: str, origin: str | None, host: str | None) -> bool:
    """True when a request with an unsafe `method` carries an `Origin` that is not the
    service's own, i.e. not the host and port of its `Host` header (`null` never is)."""
    if method.upper() in SAFE_METHODS or origin is None:
        return False
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return True
    if parts.scheme not in _DEFAULT_PORTS or host is None:
        return True
    sent = _host_and_port(parts.netloc)
    own = _host_and_port(host.strip())
    return sent is None or own is None or sent != own


class CrossOriginGuard:
    """ASGI middleware answering 403 `cross_origin_forbidden` to `is_cross_origin` requests,
    before the app reads anything of them."""

    def __init__(self, app: ASGIApp, enabled: bool = True) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.enabled and scope["type"] == "http":
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if is_cross_origin(scope["method"], origin, headers.get("host")):
                interaction_id = str(uuid.uuid4())
                logger.warning(
                    "refused a cross-origin request",
                    extra={
                        "interaction_id": interaction_id,
                        "origin": shorten(origin or ""),
                        "path": shorten(scope.get("path", ""), 80),
                    },
                )
                response = JSONResponse(
                    {"error": {"code": "cross_origin_forbidden", "message": CROSS_ORIGIN_MESSAGE}},
                    status_code=403,
                    # The body is left unread: close, so the browser stops sending it.
                    headers={"X-Interaction-ID": interaction_id, "Connection": "close"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
