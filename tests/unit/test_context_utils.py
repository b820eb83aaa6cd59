"""Request context extraction: the plan's fallback chain and header hygiene."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request

from batchscribe.config import get_settings
from batchscribe.http.deps import ContextDep
from batchscribe.http.identity import (
    InvalidHeaderError,
    get_request_context,
    is_uuid4,
    shorten,
)
from batchscribe.logging_setup import JsonFormatter


def make_request(headers: dict[str, str] | None = None) -> Request:
    raw = [(k.lower().encode("latin-1"), v.encode("utf-8")) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw})


def test_headers_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = str(uuid.uuid4())
    monkeypatch.setenv("MOCK_TENANT_ID", str(uuid.uuid4()))
    monkeypatch.setenv("MOCK_USER_ID", "env-user")
    ctx = get_request_context(
        make_request({"X-Tenant-ID": tenant, "X-User-ID": "alice", "X-Account-ID": "acct-9"})
    )
    assert (ctx.tenant_id, ctx.user_id, ctx.account_id) == (tenant, "alice", "acct-9")
    assert is_uuid4(ctx.interaction_id)


def test_environment_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = str(uuid.uuid4())
    monkeypatch.setenv("MOCK_TENANT_ID", tenant)
    monkeypatch.setenv("MOCK_USER_ID", "env-user")
    ctx = get_request_context(make_request())
    assert (ctx.tenant_id, ctx.user_id, ctx.account_id) == (tenant, "env-user", None)


def test_defaults_without_headers_or_environment() -> None:
    ctx = get_request_context(make_request())
    assert is_uuid4(ctx.tenant_id)
    assert ctx.user_id == "system"
    assert ctx.account_id is None


def test_invalid_tenant_is_replaced_warned_and_logged_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    request = make_request({"X-Tenant-ID": "tenant-\u202e" + "x" * 100})
    with pytest.raises(InvalidHeaderError):
        get_request_context(request)  # a format character is refused outright

    request = make_request({"X-Tenant-ID": "acme-corp-" + "x" * 100})
    with caplog.at_level(logging.WARNING):
        ctx = get_request_context(request)
    assert is_uuid4(ctx.tenant_id)
    assert request.state.context_warnings
    assert "X-Tenant-ID" in request.state.context_warnings[0]
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert len(warning.bad_value) <= 43  # type: ignore[attr-defined]
    assert warning.interaction_id == ctx.interaction_id  # type: ignore[attr-defined]


def test_identity_logged_once_with_interaction_id(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="batchscribe.http.identity"):
        ctx = get_request_context(make_request({"X-User-ID": "bob"}))
    lines = [r for r in caplog.records if r.getMessage() == "request identity"]
    assert len(lines) == 1
    assert lines[0].interaction_id == ctx.interaction_id  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-User-ID", "a" * 257),
        ("X-User-ID", "bob\r\nX-Admin: 1"),
        ("X-Account-ID", "acct\x00"),
        ("X-Tenant-ID", "t" * 300),
    ],
)
def test_oversized_or_control_character_headers_are_refused(header: str, value: str) -> None:
    request = make_request({header: value})
    with pytest.raises(InvalidHeaderError) as info:
        get_request_context(request)
    assert header in str(info.value)
    assert request.state.interaction_id  # still identifiable in the error response


@pytest.mark.parametrize("header", ["X-Tenant-ID", "X-User-ID", "X-Account-ID"])
def test_an_identity_header_sent_twice_is_refused(header: str) -> None:
    """Two copies are ambiguous (a client's and a proxy's?): neither is picked silently."""
    first = str(uuid.uuid4())
    raw = [(header.lower().encode(), first.encode()), (header.lower().encode(), b"other")]
    request = Request({"type": "http", "method": "POST", "path": "/", "headers": raw})
    with pytest.raises(InvalidHeaderError) as info:
        get_request_context(request)
    assert str(info.value) == f"Header {header} was sent more than once. Send it once."


def test_shorten_escapes_and_bounds() -> None:
    assert shorten("a\nb") == "a\\nb"
    assert shorten("x" * 100, 10) == "x" * 10 + "..."


def test_header_bytes_that_are_not_utf8_are_refused() -> None:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"x-user-id", b"\xff\xfeus")],
    }
    with pytest.raises(InvalidHeaderError, match="UTF-8"):
        get_request_context(Request(scope))


def test_utf8_header_values_are_decoded() -> None:
    value = "José Müller".encode()
    scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"x-user-id", value)]}
    assert get_request_context(Request(scope)).user_id == "José Müller"


def test_mock_identity_from_a_dotenv_file_is_used(tmp_path: Path) -> None:
    """`.env` is read into Settings; the identity fallbacks must come from there (an app's
    requests), not only from the process environment."""
    tenant = str(uuid.uuid4())
    (tmp_path / ".env").write_text(f"MOCK_TENANT_ID={tenant}\nMOCK_USER_ID=dotenv-user\n")
    app = FastAPI()
    app.state.settings = get_settings()
    scope = {"type": "http", "method": "POST", "path": "/", "headers": [], "app": app}
    ctx = get_request_context(Request(scope))
    assert (ctx.tenant_id, ctx.user_id) == (tenant, "dotenv-user")


class _JsonLines(logging.Handler):
    """Keeps each record as the JSON line the service would print."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_context_dependency_uses_app_settings_and_tags_the_route_logs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through FastAPI: the MOCK_* values of the app's own Settings apply, and a log line
    written by the route carries the request's interaction id."""
    route_logger = logging.getLogger("tests.identity_route")
    capture = _JsonLines()
    monkeypatch.setattr(route_logger, "handlers", [capture])
    monkeypatch.setattr(route_logger, "level", logging.INFO)
    app = FastAPI()

    @app.get("/whoami")
    def whoami(context: ContextDep) -> dict[str, Any]:
        route_logger.info("handling")
        return {"tenant_id": context.tenant_id, "interaction_id": context.interaction_id}

    tenant = str(uuid.uuid4())
    app.state.settings = get_settings().model_copy(update={"mock_tenant_id": tenant})
    with TestClient(app) as client:
        body = client.get("/whoami").json()
    assert body["tenant_id"] == tenant
    assert is_uuid4(body["interaction_id"])
    assert len(capture.lines) == 1
    assert f'"interaction_id": "{body["interaction_id"]}"' in capture.lines[0]
