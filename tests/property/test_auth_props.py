"""Property (SPEC 12): whatever combination of key, scheme and identity headers a request
carries, it reaches tenant A's data only with tenant A's key, and every protected route refuses
it without a valid key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from tests.strategies import AuthAttempt, auth_attempts
from tests.support.auth import (
    PUBLIC_PATHS,
    SECRET_WORDS,
    AuthWorld,
    app_routes,
    build_world,
    serve,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> AuthWorld:
    tmp = tmp_path_factory.mktemp("auth-props")
    return build_world(f"sqlite:///{tmp / 'app.db'}", tmp)


@pytest.fixture(scope="module")
def client(world: AuthWorld) -> Iterator[TestClient]:
    with serve(world.settings()) as c:
        yield c


def headers_for(attempt: AuthAttempt, world: AuthWorld) -> dict[str, str]:
    key = {
        "a": world.key_a,
        "b": world.key_b,
        "revoked": world.revoked_key,
        "unknown": "bsk_" + "k" * 43,
        "tampered_a": world.key_a[:-2] + ("xy" if world.key_a[-2:] != "xy" else "yx"),
        "truncated_a": world.key_a[:-1],
        "malformed": "sk-" + world.key_a[4:],
        "absent": None,
    }[attempt.key]
    headers: dict[str, str] = {}
    if key is not None:
        headers["Authorization"] = attempt.scheme + " " * attempt.spaces + key
    tenant = {
        "absent": None,
        "a": world.tenant_a,
        "a_upper": world.tenant_a.upper(),
        "b": world.tenant_b,
        "random": str(uuid.uuid4()),
        "garbage": "acme-corp",
    }[attempt.tenant]
    if tenant is not None:
        headers["X-Tenant-ID"] = tenant
    if attempt.user is not None:
        headers["X-User-ID"] = attempt.user
    return headers


def _own_tenant_or_none(attempt: AuthAttempt) -> bool:
    own = ("a", "a_upper") if attempt.key == "a" else ("b",)
    return attempt.tenant == "absent" or attempt.tenant in own


def _job_ids(response: httpx.Response) -> set[str]:
    return {job["job_id"] for job in response.json()["jobs"]} if response.is_success else set()


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(attempt=auth_attempts())
def test_only_tenant_as_key_reaches_tenant_as_data(
    client: TestClient, world: AuthWorld, attempt: AuthAttempt
) -> None:
    headers = headers_for(attempt, world)
    answers = {
        "job": client.get(f"/batch/jobs/{world.completed_job_a}", headers=headers),
        "queued": client.get(f"/batch/jobs/{world.queued_job_a}", headers=headers),
        "event": client.get(f"/events/{world.completed_job_a}", headers=headers),
        "list": client.get("/batch/jobs", headers=headers),
        "cancel": client.delete(f"/batch/jobs/{world.completed_job_a}", headers=headers),
    }
    statuses = {name: r.status_code for name, r in answers.items()}
    as_a = attempt.presents_a_valid_key and attempt.key == "a" and _own_tenant_or_none(attempt)
    leaked = [name for name, r in answers.items() if SECRET_WORDS in r.text]
    a_jobs = {world.completed_job_a, world.queued_job_a}

    if not attempt.presents_a_valid_key:
        assert set(statuses.values()) == {401}, statuses
    elif not _own_tenant_or_none(attempt):
        assert set(statuses.values()) == {403}, statuses
    elif attempt.key == "b":
        assert statuses == {"job": 404, "queued": 404, "event": 404, "list": 200, "cancel": 404}
        assert _job_ids(answers["list"]) & a_jobs == set()
    else:
        assert statuses == {"job": 200, "queued": 200, "event": 200, "list": 200, "cancel": 409}
        assert a_jobs <= _job_ids(answers["list"])
    assert leaked == ([] if not as_a else ["job"])
    # Nothing any request did cancelled tenant A's queued job.
    queued = client.get(
        f"/batch/jobs/{world.queued_job_a}", headers={"Authorization": f"Bearer {world.key_a}"}
    )
    assert queued.json()["status"] == "queued"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(attempt=auth_attempts().filter(lambda a: not a.presents_a_valid_key))
def test_every_protected_route_refuses_without_a_valid_key(
    client: TestClient, world: AuthWorld, attempt: AuthAttempt
) -> None:
    headers = headers_for(attempt, world)
    protected = [
        (method, path)
        for method, path in app_routes(client)
        if path not in PUBLIC_PATHS and not path.startswith("/static") and path != "/metrics"
    ]
    assert len(protected) >= 6
    for method, path in protected:
        url = path.replace("{job_id}", world.queued_job_a).replace(
            "{interaction_id}", world.completed_job_a
        )
        response = client.request(method, url, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert SECRET_WORDS not in response.text
