"""A small world of two tenants for authentication tests: keys, a queued and a completed job
(with its event) of tenant A, and apps serving that database in a chosen AUTH_MODE."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from batchscribe.auth.keys import KeyStore
from batchscribe.config import Settings
from batchscribe.db import Database
from batchscribe.http.app import create_app
from batchscribe.logging_setup import JsonFormatter
from tests.support.jobs import completed_job, job_store, new_job

#: Words that exist only in tenant A's transcript: any answer containing them leaked it.
SECRET_WORDS = "zanzibar quokka marmalade"

#: Routes every mode serves without authentication, written out here so that a route made
#: public in the code by mistake fails the tests.
PUBLIC_PATHS = frozenset(
    {"/healthz", "/readyz", "/", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)


@dataclass(frozen=True)
class AuthWorld:
    """The database (SQLite file or PostgreSQL URL) and what is in it."""

    database_url: str
    blob_dir: Path
    tenant_a: str
    tenant_b: str
    key_a: str
    key_b: str
    revoked_key: str
    queued_job_a: str
    completed_job_a: str
    prefix_a: str

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "auth_mode": "api_key",
            "database_url": self.database_url,
            "blob_store": f"file://{self.blob_dir}",
            "workers": 1,
            "metrics_token": "metrics-token-for-tests-0123456789",
            "tenant_requests_per_minute": 1_000_000,
            "tenant_max_active_jobs": 1000,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def build_world(database_url: str, tmp: Path) -> AuthWorld:
    """Migrate the database and fill it: keys of tenants A and B (and a revoked one of A), a
    queued job of A and a completed one whose event is in the outbox."""
    db = Database(database_url)
    try:
        store = job_store(db)  # migrates
        keys = KeyStore(db)
        tenant_a, tenant_b = str(uuid.uuid4()), str(uuid.uuid4())
        record_a, key_a = keys.create(tenant_a, name="tenant a", default_user="alice")
        _, key_b = keys.create(tenant_b, name="tenant b")
        revoked, revoked_key = keys.create(tenant_a, name="old laptop")
        keys.revoke(revoked.prefix)
        completed = completed_job(store, SECRET_WORDS, tenant=tenant_a)  # claims the next job
        queued, _ = store.create(new_job(tenant=tenant_a))
    finally:
        db.dispose()
    return AuthWorld(
        database_url=database_url,
        blob_dir=tmp / "blobs",
        tenant_a=tenant_a,
        tenant_b=tenant_b,
        key_a=key_a,
        key_b=key_b,
        revoked_key=revoked_key,
        queued_job_a=queued.id,
        completed_job_a=completed.id,
        prefix_a=record_a.display,
    )


@contextlib.contextmanager
def serve(settings: Settings) -> Iterator[TestClient]:
    """The real app over `settings`, API only (no worker processes: jobs stay queued)."""
    with TestClient(create_app(settings, workers=0), raise_server_exceptions=False) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class LogLines(logging.Handler):
    """Every record of the process as the JSON line the service prints."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def records(self, message: str) -> list[dict[str, Any]]:
        parsed = [json.loads(line) for line in self.lines]
        return [line for line in parsed if line["message"] == message]


@contextlib.contextmanager
def captured_logs() -> Iterator[LogLines]:
    handler = LogLines()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


def app_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, path) of every route of the app, included routers and mounts too."""
    found: list[tuple[str, str]] = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:  # an included router
            found += [(m, c.path) for c in contexts() for m in sorted(c.methods or ())]
        elif hasattr(route, "methods"):
            found += [(m, route.path) for m in sorted(route.methods or ())]
        else:  # a mount (static files)
            found.append(("GET", route.path + "/{path}"))
    return [(method, path) for method, path in found if method != "HEAD"]
