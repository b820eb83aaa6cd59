"""No cross-site uploads: another site's page cannot make a browser POST to the service, while
the service's own page, and clients without `Origin` (curl, SDKs), keep working."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from batchscribe.http.origin import CrossOriginGuard, is_cross_origin


@pytest.mark.parametrize(
    ("method", "origin", "host", "refused"),
    [
        ("POST", "https://evil.example", "127.0.0.1:8000", True),
        ("POST", "null", "127.0.0.1:8000", True),  # sandboxed frames, file:// pages
        ("POST", "http://127.0.0.1:8001", "127.0.0.1:8000", True),  # another port, another site
        ("POST", "http://127.0.0.1.evil.example:8000", "127.0.0.1:8000", True),
        ("POST", "https://transcribe.example.com", "transcribe.example.com.evil.net", True),
        ("DELETE", "https://evil.example", "svc.example", True),
        ("POST", "https://svc.example", None, True),  # no Host to compare with
        ("POST", "ftp://svc.example", "svc.example", True),
        ("POST", "http://127.0.0.1:8000", "127.0.0.1:8000", False),  # the service's own page
        ("POST", "http://LOCALHOST:8000", "localhost:8000", False),
        ("POST", "http://[::1]:8000", "[::1]:8000", False),
        # Behind a TLS proxy the browser's origin is https and Host keeps the public name.
        ("POST", "https://transcribe.example.com", "transcribe.example.com", False),
        ("POST", "https://transcribe.example.com", "transcribe.example.com:443", False),
        ("POST", None, "127.0.0.1:8000", False),  # curl, SDKs, other servers
        ("GET", "https://evil.example", "127.0.0.1:8000", False),  # reading the page is safe
        ("OPTIONS", "https://evil.example", "127.0.0.1:8000", False),
    ],
)
def test_cross_origin_rule(
    method: str, origin: str | None, host: str | None, refused: bool
) -> None:
    assert is_cross_origin(method, origin, host) is refused


def _client(enabled: bool = True) -> TestClient:
    app = FastAPI()
    app.add_middleware(CrossOriginGuard, enabled=enabled)

    @app.post("/upload")
    def upload() -> dict[str, str]:
        return {"status": "processed"}

    return TestClient(app, base_url="http://127.0.0.1:8000")


def test_a_post_from_another_site_is_refused_before_the_app_runs() -> None:
    response = _client().post("/upload", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "cross_origin_forbidden"
    assert response.json()["error"]["message"].endswith(".")
    assert response.headers["x-interaction-id"]
    assert response.headers["connection"] == "close"


def test_the_service_own_page_and_clients_without_origin_are_served() -> None:
    client = _client()
    assert client.post("/upload", headers={"Origin": "http://127.0.0.1:8000"}).status_code == 200
    assert client.post("/upload").status_code == 200


def test_a_mode_that_switches_the_check_off_serves_other_origins() -> None:
    response = _client(enabled=False).post("/upload", headers={"Origin": "https://evil.example"})
    assert response.status_code == 200
