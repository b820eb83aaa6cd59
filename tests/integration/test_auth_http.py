"""AUTH_MODE through the real app (SPEC 12): every route but the public ones refuses without a
valid key, the key names the tenant, tenants never see each other's jobs or events, /metrics
needs its token, limits answer 429 with Retry-After, and logs carry key prefixes, never keys."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.auth import (
    PUBLIC_PATHS,
    SECRET_WORDS,
    AuthWorld,
    app_routes,
    bearer,
    build_world,
    captured_logs,
    serve,
)
from tests.support.fixtures import write_tone

METRICS_TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> AuthWorld:
    tmp = tmp_path_factory.mktemp("auth")
    return build_world(f"sqlite:///{tmp / 'app.db'}", tmp)


@pytest.fixture(scope="module")
def client(world: AuthWorld) -> Iterator[TestClient]:
    with serve(world.settings()) as c:
        yield c


def _fill(path: str, world: AuthWorld) -> str:
    """A concrete URL for a route template: tenant A's ids in path parameters."""
    path = path.replace("{job_id}", world.queued_job_a)
    path = path.replace("{interaction_id}", world.completed_job_a)
    return re.sub(r"\{[^}]+\}", "app.js", path)


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith("/static")


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert SECRET_WORDS not in response.text


def test_every_route_but_the_public_ones_refuses_a_request_without_a_key(
    client: TestClient, world: AuthWorld
) -> None:
    routes = app_routes(client)
    protected = [(m, p) for m, p in routes if not _is_public(p)]
    # The routes of the product today; a new one is covered the moment it exists.
    assert {("POST", "/batch/process"), ("POST", "/batch/jobs"), ("GET", "/batch/jobs")} <= set(
        protected
    )
    assert {("GET", "/events/{interaction_id}"), ("DELETE", "/batch/jobs/{job_id}")} <= set(
        protected
    )
    for method, path in protected:
        for headers in ({}, bearer("bsk_" + "A" * 43), {"X-Tenant-ID": world.tenant_a}):
            response = client.request(method, _fill(path, world), headers=headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert SECRET_WORDS not in response.text
    for method, path in routes:
        if _is_public(path) and method == "GET":
            response = client.get(_fill(path, world))
            assert response.status_code == 200, (path, response.text)


def test_missing_unknown_malformed_and_revoked_keys_are_each_told_what_to_do(
    client: TestClient, world: AuthWorld
) -> None:
    cases = {
        "authentication_required": {},
        "invalid_api_key": bearer("bsk_" + "x" * 43),
        "api_key_revoked": bearer(world.revoked_key),
    }
    for code, headers in cases.items():
        assert_error(client.get("/batch/jobs", headers=headers), 401, code)
    # Not a Bearer header, a truncated key, a key with a character changed: all refused.
    changed = world.key_a[:-1] + ("A" if world.key_a[-1] != "A" else "B")
    for headers in (
        {"Authorization": f"Basic {world.key_a}"},
        bearer(world.key_a[:-1]),
        bearer(changed),
        bearer(world.key_a + "x"),
    ):
        assert client.get("/batch/jobs", headers=headers).status_code == 401


def test_the_key_names_the_tenant_and_another_tenant_header_is_refused(
    client: TestClient, world: AuthWorld
) -> None:
    job = client.get(f"/batch/jobs/{world.completed_job_a}", headers=bearer(world.key_a))
    assert job.status_code == 200, job.text
    assert SECRET_WORDS in job.json()["result"]["raw_transcript"]
    same = {**bearer(world.key_a), "X-Tenant-ID": world.tenant_a.upper()}
    assert client.get("/batch/jobs", headers=same).status_code == 200
    for other in (world.tenant_b, str(uuid.uuid4()), "acme"):
        mismatch = {**bearer(world.key_a), "X-Tenant-ID": other}
        assert_error(client.get("/batch/jobs", headers=mismatch), 403, "tenant_mismatch")


def test_another_tenants_job_and_event_are_404_like_unknown_ids(
    client: TestClient, world: AuthWorld
) -> None:
    as_b = bearer(world.key_b)
    unknown = str(uuid.uuid4())
    for job_id in (world.queued_job_a, world.completed_job_a, unknown):
        assert_error(client.get(f"/batch/jobs/{job_id}", headers=as_b), 404, "job_not_found")
        assert_error(client.delete(f"/batch/jobs/{job_id}", headers=as_b), 404, "job_not_found")
    for interaction_id in (world.completed_job_a, unknown):
        response = client.get(f"/events/{interaction_id}", headers=as_b)
        assert_error(response, 404, "event_not_found")
    listing = client.get("/batch/jobs", headers=as_b)
    assert listing.json()["jobs"] == []
    # Tenant A still sees its queued job, not cancelled by B's attempt.
    mine = client.get(f"/batch/jobs/{world.queued_job_a}", headers=bearer(world.key_a))
    assert mine.json()["status"] == "queued"
    event = client.get(f"/events/{world.completed_job_a}", headers=bearer(world.key_a))
    assert event.status_code == 200, event.text


def test_a_job_submitted_with_a_key_belongs_to_its_tenant_and_default_user(
    client: TestClient, world: AuthWorld, tmp_path: Path
) -> None:
    tone = write_tone(tmp_path / "tone.wav").read_bytes()
    submitted = client.post(
        "/batch/jobs", files={"file": ("tone.wav", tone)}, headers=bearer(world.key_a)
    )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]
    assert client.get(f"/batch/jobs/{job_id}", headers=bearer(world.key_b)).status_code == 404
    listed = client.get("/batch/jobs", headers=bearer(world.key_a)).json()["jobs"]
    assert job_id in {job["job_id"] for job in listed}
    assert client.delete(f"/batch/jobs/{job_id}", headers=bearer(world.key_a)).status_code == 200


def test_metrics_need_their_token_outside_none_mode(client: TestClient, world: AuthWorld) -> None:
    assert_error(client.get("/metrics"), 401, "metrics_token_required")
    # An API key is not the metrics token.
    assert client.get("/metrics", headers=bearer(world.key_a)).status_code == 401
    scraped = client.get("/metrics", headers=bearer(METRICS_TOKEN))
    assert scraped.status_code == 200
    assert "batchscribe_auth_failures_total" in scraped.text


def test_metrics_are_404_without_a_token_and_open_in_none_mode(world: AuthWorld) -> None:
    with serve(world.settings(metrics_token=None)) as hidden:
        assert_error(hidden.get("/metrics", headers=bearer(METRICS_TOKEN)), 404, "not_found")
    with serve(world.settings(auth_mode="none", metrics_token=None)) as open_:
        assert open_.get("/metrics").status_code == 200


def test_requests_per_minute_per_tenant_answer_429_with_retry_after(world: AuthWorld) -> None:
    with serve(world.settings(tenant_requests_per_minute=3)) as limited:
        answers = [limited.get("/batch/jobs", headers=bearer(world.key_a)) for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert_error(answers[-1], 429, "rate_limited")
        assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
        # Another tenant has its own allowance.
        assert limited.get("/batch/jobs", headers=bearer(world.key_b)).status_code == 200


def test_active_jobs_per_tenant_are_counted_in_the_database(
    world: AuthWorld, tmp_path: Path
) -> None:
    """Tenant A already has a queued job in the database; with a limit of 1 its next submission
    is refused, tenant B's is not."""
    tone = write_tone(tmp_path / "tone.wav").read_bytes()
    with serve(world.settings(tenant_max_active_jobs=1)) as limited:
        refused = limited.post(
            "/batch/jobs", files={"file": ("t.wav", tone)}, headers=bearer(world.key_a)
        )
        assert_error(refused, 429, "too_many_active_jobs")
        assert int(refused.headers["Retry-After"]) > 0
        accepted = limited.post(
            "/batch/jobs", files={"file": ("t.wav", tone)}, headers=bearer(world.key_b)
        )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        assert limited.delete(f"/batch/jobs/{job_id}", headers=bearer(world.key_b)).is_success


def test_gateway_mode_needs_the_gateway_secret(world: AuthWorld) -> None:
    secret = "gateway-secret-0123456789abcdef"
    with serve(world.settings(auth_mode="gateway", gateway_secret=secret)) as gateway:
        as_a = {"X-Tenant-ID": world.tenant_a}
        assert_error(gateway.get("/batch/jobs", headers=as_a), 401, "gateway_secret_required")
        wrong = {**as_a, "X-Gateway-Secret": secret[:-1] + "X"}
        assert_error(gateway.get("/batch/jobs", headers=wrong), 401, "gateway_secret_required")
        right = {**as_a, "X-Gateway-Secret": secret}
        jobs = gateway.get("/batch/jobs", headers=right)
        assert jobs.status_code == 200
        assert world.queued_job_a in {job["job_id"] for job in jobs.json()["jobs"]}
        assert gateway.get("/healthz").status_code == 200


def test_logs_carry_the_key_prefix_and_tenant_never_the_key(
    client: TestClient, world: AuthWorld
) -> None:
    sent = "bsk_" + "Q" * 43
    with captured_logs() as logs:
        assert client.get("/batch/jobs", headers=bearer(world.key_a)).status_code == 200
        for headers in (bearer(sent), bearer(world.revoked_key), {}, bearer("not-a-key")):
            assert client.get("/batch/jobs", headers=headers).status_code == 401
        mismatch = {**bearer(world.key_a), "X-Tenant-ID": world.tenant_b}
        assert client.get("/batch/jobs", headers=mismatch).status_code == 403
    identity = logs.records("request identity")
    assert len(identity) == 1
    assert identity[0]["key_prefix"] == world.prefix_a
    assert identity[0]["tenant_id"] == world.tenant_a
    failures = logs.records("authentication failed")
    assert [f["reason"] for f in failures] == [
        "unknown_key",
        "revoked_key",
        "missing_key",
        "malformed_key",
        "tenant_mismatch",
    ]
    assert all(f["route"] == "/batch/jobs" for f in failures)
    text = "\n".join(logs.lines)
    for secret in (world.key_a, world.key_b, world.revoked_key, sent, "not-a-key", "QQQQQQQQ"):
        assert secret not in text


def test_the_api_documentation_declares_what_protected_operations_need(
    client: TestClient, world: AuthWorld
) -> None:
    """/docs offers an Authorize button in api_key mode; in none mode nothing is required."""
    document = client.get("/openapi.json").json()
    assert document["paths"]["/batch/jobs"]["post"]["security"] == [{"ApiKey": []}]
    assert document["paths"]["/events/{interaction_id}"]["get"]["security"] == [{"ApiKey": []}]
    assert document["paths"]["/metrics"]["get"]["security"] == [{"MetricsToken": []}]
    assert "security" not in document["paths"]["/healthz"]["get"]
    assert document["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    with serve(world.settings(auth_mode="none")) as open_:
        plain = open_.get("/openapi.json").json()
    assert "securitySchemes" not in plain["components"]
    assert "security" not in plain["paths"]["/batch/jobs"]["post"]
