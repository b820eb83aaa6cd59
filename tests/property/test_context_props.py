"""Property 2: the context fallback chain holds for any combination of headers and the
`MOCK_*` settings (read from the environment)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from batchscribe.config import Settings
from batchscribe.http.identity import get_request_context, is_uuid4
from tests.strategies import header_values, not_uuid4_strings, uuid4_strings


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode("utf-8")) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw})


@settings(max_examples=200, deadline=None)
@given(
    tenant_header=st.one_of(st.none(), uuid4_strings(), not_uuid4_strings()),
    tenant_env=st.one_of(st.none(), uuid4_strings(), not_uuid4_strings()),
    user_header=st.one_of(st.none(), header_values()),
    user_env=st.one_of(st.none(), header_values().map(lambda v: v[:100])),
    account_header=st.one_of(st.none(), header_values()),
)
def test_fallback_chain(
    tenant_header: str | None,
    tenant_env: str | None,
    user_header: str | None,
    user_env: str | None,
    account_header: str | None,
) -> None:
    headers = {
        k: v
        for k, v in {
            "X-Tenant-ID": tenant_header,
            "X-User-ID": user_header,
            "X-Account-ID": account_header,
        }.items()
        if v is not None
    }
    env = {"MOCK_TENANT_ID": tenant_env, "MOCK_USER_ID": user_env}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            if value is None:
                mp.delenv(name, raising=False)
            else:
                mp.setenv(name, value)
        request = _request(headers)
        ctx = get_request_context(request, Settings())

    chosen_tenant = (tenant_header.strip() or None) if tenant_header else None
    if chosen_tenant is None and tenant_env is not None:
        chosen_tenant = tenant_env.strip() or None
    assert is_uuid4(ctx.tenant_id)
    if chosen_tenant is not None and is_uuid4(chosen_tenant):
        assert ctx.tenant_id == chosen_tenant.lower()
        assert request.state.context_warnings == []
    elif chosen_tenant is not None:
        assert ctx.tenant_id != chosen_tenant
        assert len(request.state.context_warnings) == 1

    expected_user = (user_header or "").strip() or (user_env or "").strip() or "system"
    assert ctx.user_id == expected_user
    assert ctx.account_id == ((account_header or "").strip() or None)
    assert is_uuid4(ctx.interaction_id)
    assert os.environ.get("MOCK_TENANT_ID") is None  # the monkeypatch context was undone
