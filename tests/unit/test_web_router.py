"""The page route without a browser: limit written in, assets served, third parties refused."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from batchscribe.config import Settings, get_settings
from batchscribe.http.routes.web import mount_web
from batchscribe.pipeline.formats import ACCEPTED_SENTENCE, html_accept_attribute


def _client() -> TestClient:
    app = FastAPI()
    mount_web(app)
    return TestClient(app)


def test_page_states_the_configured_upload_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_UPLOAD_MB", "2.5")
    get_settings.cache_clear()
    with _client() as client:
        response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'up to <span id="size-limit">2.5 MB</span>' in response.text
    assert 'data-max-upload-mb="2.5"' in response.text


def test_page_uses_the_limit_of_the_app_it_is_served_by() -> None:
    app = FastAPI()
    app.state.settings = Settings(max_upload_mb=3)
    mount_web(app)
    with TestClient(app) as client:
        assert 'data-max-upload-mb="3"' in client.get("/").text


def test_page_lists_the_formats_the_server_accepts() -> None:
    with _client() as client:
        page = client.get("/").text
    assert f'accept="{html_accept_attribute()}"' in page
    assert f"{ACCEPTED_SENTENCE}, up to" in page
    assert f'data-accepted-formats="{ACCEPTED_SENTENCE}"' in page
    assert "__" not in page  # every placeholder was filled in


def test_page_allows_only_its_own_origin() -> None:
    with _client() as client:
        response = client.get("/")
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "connect-src 'self'" in csp
    assert not re.search(r"""(src|href)=["']https?://""", response.text)


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/static/app.js", "javascript"),
        ("/static/styles.css", "text/css"),
        ("/static/favicon.svg", "image/svg+xml"),
    ],
)
def test_assets_the_page_links_are_served(path: str, media_type: str) -> None:
    with _client() as client:
        page = client.get("/").text
        response = client.get(path)
    assert path in page
    assert response.status_code == 200
    assert media_type in response.headers["content-type"]


def test_unknown_asset_is_404() -> None:
    with _client() as client:
        assert client.get("/static/missing.js").status_code == 404
