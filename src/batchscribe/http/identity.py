"""Extracts who made a request (`RequestContext`) from its headers, with the plan's fallbacks.

Header values are untrusted: they are bounded to 256 characters, may not contain control
characters, and each identity header may be sent once (two copies are refused, never resolved by
picking one). A tenant id that is not a UUID v4 is replaced by a fresh one, logged (shortened and
escaped) and reported back in an `X-Warning` response header, so a typo never mixes tenants.
The `MOCK_*` fallbacks come from the app's Settings, so a `.env` file sets them too.
"""

from __future__ import annotations

import logging
import unicodedata
import uuid

from starlette.requests import Request

from batchscribe.auth import ApiKey, TenantMismatchError
from batchscribe.config import Settings, get_settings
from batchscribe.identity import RequestContext
from batchscribe.logging_setup import interaction_id_var

logger = logging.getLogger(__name__)

MAX_HEADER_CHARS = 256
TENANT_HEADER = "X-Tenant-ID"
USER_HEADER = "X-User-ID"
ACCOUNT_HEADER = "X-Account-ID"
DEFAULT_USER_ID = "system"


class InvalidHeaderError(ValueError):
    """An identity header is sent twice, too long or contains control characters (HTTP 400)."""

    def __init__(self, header: str, problem: str, remedy: str | None = None) -> None:
        remedy = remedy or f"Send at most {MAX_HEADER_CHARS} printable characters."
        super().__init__(f"Header {header} {problem}. {remedy}")
        self.header = header


def is_uuid4(value: str) -> bool:
    """True for a canonical UUID version 4 string (any letter case)."""
    try:
        parsed = uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return parsed.version == 4 and str(parsed) == value.lower()


def shorten(value: str, limit: int = 40) -> str:
    """A value safe to put in a log line: escaped and cut to `limit` characters."""
    escaped = value.encode("unicode_escape", "backslashreplace").decode("ascii")
    return escaped if len(escaped) <= limit else escaped[:limit] + "..."


def _check(header: str, value: str) -> str:
    if len(value) > MAX_HEADER_CHARS:
        raise InvalidHeaderError(header, f"is longer than {MAX_HEADER_CHARS} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
        raise InvalidHeaderError(header, "contains control characters")
    return value.strip()


def _header(request: Request, name: str) -> str | None:
    values = request.headers.getlist(name)
    if not values:
        return None
    # Two copies are ambiguous (which one did the proxy set?): refuse rather than pick one.
    if len(values) > 1:
        raise InvalidHeaderError(name, "was sent more than once", "Send it once.")
    raw = values[0]
    # ASGI servers hand header bytes over as latin-1; clients send UTF-8 for non-ASCII ids.
    try:
        raw = raw.encode("latin-1").decode("utf-8")
    except UnicodeError as exc:
        raise InvalidHeaderError(name, "is not valid UTF-8") from exc
    value = _check(name, raw)
    return value or None


def app_settings(request: Request) -> Settings:
    """The Settings of the app serving `request` (`app.state.settings`, set by the app factory),
    or the process settings for a request outside such an app."""
    app = request.scope.get("app")
    settings = getattr(getattr(app, "state", None), "settings", None)
    return settings if isinstance(settings, Settings) else get_settings()


def _fallback(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _tenant_of_key(key: ApiKey, header: str | None) -> str:
    """With authentication the key names the tenant; a header naming another is refused."""
    if header is not None and header.lower() != key.tenant_id:
        raise TenantMismatchError(
            f"{TENANT_HEADER} names another tenant than this API key's. Leave the header out "
            "(the key names its tenant) or use a key of that tenant."
        )
    return key.tenant_id


def get_request_context(
    request: Request, settings: Settings | None = None, *, key: ApiKey | None = None
) -> RequestContext:
    """The identity of `request`: tenant, user, account and a new interaction id.

    tenant_id: `X-Tenant-ID`, else `MOCK_TENANT_ID`, else a new UUID v4; an invalid value is
    replaced by a new UUID v4 and noted in `request.state.context_warnings`.
    user_id: `X-User-ID`, else `MOCK_USER_ID`, else "system". account_id: `X-Account-ID` or
    None. The `MOCK_*` values come from `settings`, by default the app's (`app_settings`).
    Raises `InvalidHeaderError` for an oversized or control-character header.

    With an authenticated API `key` (AUTH_MODE=api_key) the tenant is the key's (an X-Tenant-ID
    naming another raises `TenantMismatchError`) and the user defaults to the key's.
    """
    settings = settings or app_settings(request)
    interaction_id = str(uuid.uuid4())
    # Set first, so even a request refused for a bad header answers with its interaction id.
    request.state.interaction_id = interaction_id
    interaction_id_var.set(interaction_id)
    warnings: list[str] = []
    request.state.context_warnings = warnings

    tenant_source = "header"
    tenant = _header(request, TENANT_HEADER)
    if key is not None:
        tenant, tenant_source = _tenant_of_key(key, tenant), "api_key"
    if tenant is None:
        tenant, tenant_source = _fallback(settings.mock_tenant_id), "env"
    if tenant is None:
        tenant, tenant_source = str(uuid.uuid4()), "generated"
    elif not is_uuid4(tenant):
        logger.warning(
            "tenant id is not a UUID v4; using a generated one",
            extra={
                "interaction_id": interaction_id,
                "tenant_source": tenant_source,
                "bad_value": shorten(tenant),
            },
        )
        warnings.append(
            f"{TENANT_HEADER} is not a valid UUID v4; "
            "a new tenant id was generated for this request"
        )
        tenant, tenant_source = str(uuid.uuid4()), "generated"
    else:
        tenant = tenant.lower()

    default_user = key.default_user if key is not None else _fallback(settings.mock_user_id)
    user = _header(request, USER_HEADER) or default_user or DEFAULT_USER_ID
    user = _check("MOCK_USER_ID", user) if user != DEFAULT_USER_ID else user
    account = _header(request, ACCOUNT_HEADER)

    context = RequestContext(
        tenant_id=tenant, user_id=user, account_id=account, interaction_id=interaction_id
    )
    request.state.tenant_generated = tenant_source == "generated"
    logger.info(
        "request identity",
        extra={
            "interaction_id": interaction_id,
            "tenant_id": tenant,
            "tenant_source": tenant_source,
            "user_id": shorten(user, 64),
            "account_id": shorten(account, 64) if account else None,
            **({"key_prefix": key.display} if key is not None else {}),
        },
    )
    return context


def warn_if_tenant_generated(request: Request, tenant_id: str) -> None:
    """For something the client must read back later (a job): a tenant generated for this one
    request would make it unreachable, so say which tenant it belongs to (`X-Warning`)."""
    if getattr(request.state, "tenant_generated", False):
        request.state.context_warnings.append(
            f"no {TENANT_HEADER} was sent and MOCK_TENANT_ID is not set: this job belongs to "
            f"a new tenant; send {TENANT_HEADER}: {tenant_id} to read it"
        )


def context_headers(request: Request) -> dict[str, str]:
    """`X-Interaction-ID`, and `X-Warning` when the identity needed fixing, for any answer to a
    request whose context was read (empty before that)."""
    headers: dict[str, str] = {}
    interaction_id = getattr(request.state, "interaction_id", None)
    if interaction_id:
        headers["X-Interaction-ID"] = interaction_id
    warnings = getattr(request.state, "context_warnings", None)
    if warnings:
        headers["X-Warning"] = "; ".join(warnings)
    return headers
