"""Browser tests: the real server in a subprocess, Debian's Chromium driven by Playwright.

The browser is never downloaded: Playwright launches `/usr/bin/chromium` (installed by
`make system-deps`). The server runs without AWS credentials, so every event ends `held`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from testkit.environment import clean_environ
from testkit.server import ServerProcess
from tests.conftest import FIXTURES

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Read at import time: the autouse hygiene fixture scrubs BATCHSCRIBE_* from each test's env.
SKIP_BROWSER = os.environ.get("BATCHSCRIBE_SKIP_BROWSER") == "1"
SERVER_START_TIMEOUT_S = 120.0


def _server_env(tmp: Path) -> dict[str, str]:
    """A clean environment: no AWS, no hosted engines, database and blob store in tmp, one
    worker."""
    env = clean_environ(os.environ, tmp)
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{tmp / 'app.db'}",
            "BLOB_STORE": f"file://{tmp / 'blobs'}",
            "WORKERS": "1",
        }
    )
    return env


@pytest.fixture(scope="module")
def server_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m batchscribe serve` on a free loopback port; yields its origin."""
    tmp = tmp_path_factory.mktemp("e2e-server")
    server = ServerProcess(env=_server_env(tmp), log_path=tmp / "server.log")
    # ServerProcess overlays `env` on os.environ; scrubbed names must be absent, not inherited.
    with _only_env(server.env):
        server.start(timeout=SERVER_START_TIMEOUT_S)
    try:
        yield server.url
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.terminate(timeout=30)


@contextlib.contextmanager
def _only_env(env: dict[str, str]) -> Iterator[None]:
    """Temporarily make `os.environ` exactly `env` (for a child process started inside)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def speech_wav() -> Path:
    """Two and a half seconds of read English speech: short keeps each upload quick."""
    path = FIXTURES / "speech_short.wav"
    assert path.exists(), f"missing speech fixture {path}"
    return path


@pytest.fixture(scope="module")
def microphone_wav() -> Path:
    """Twenty seconds of read English speech that the fake microphone plays in a loop."""
    path = FIXTURES / "speech.wav"
    assert path.exists(), f"missing speech fixture {path}"
    return path


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # Module scope, not session: the sync API keeps an event loop running in the main thread
    # until it stops, which would break every later test that calls asyncio.run().
    if SKIP_BROWSER:
        pytest.skip("BATCHSCRIBE_SKIP_BROWSER=1")
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run `make system-deps`")
    with sync_playwright() as pw:
        yield pw


def launch(playwright: Playwright, extra_args: list[str] | None = None) -> Browser:
    """Debian's Chromium, headless, with no background traffic of its own."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS + (extra_args or [])
    )


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = launch(playwright)
    try:
        yield browser
    finally:
        browser.close()


@dataclass
class PageSession:
    """A page plus every URL it requested, so tests can prove nothing left the origin."""

    page: Page
    origin: str
    requested: list[str] = field(default_factory=list)

    def assert_same_origin(self) -> None:
        assert self.requested, "the page made no request at all"
        foreign = [url for url in self.requested if not url.startswith(self.origin + "/")]
        assert foreign == [], f"requests left the app's origin: {foreign}"

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def open_page(context: BrowserContext, origin: str) -> PageSession:
    page = context.new_page()
    session = PageSession(page=page, origin=origin)
    page.on("request", lambda request: session.requested.append(request.url))
    page.goto(origin + "/")
    return session


@pytest.fixture
def desktop(browser: Browser, server_origin: str) -> Iterator[PageSession]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield open_page(context, server_origin)
    finally:
        context.close()


@pytest.fixture
def phone(browser: Browser, server_origin: str) -> Iterator[PageSession]:
    context = browser.new_context(viewport={"width": 375, "height": 800}, device_scale_factor=2)
    try:
        yield open_page(context, server_origin)
    finally:
        context.close()
