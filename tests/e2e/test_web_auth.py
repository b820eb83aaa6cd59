"""The page in AUTH_MODE=api_key, in a real browser against a real server: it asks for a key,
explains a refused one, keeps the key in this tab only, and then uploads."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from testkit.environment import clean_environ
from testkit.server import ServerProcess
from tests.e2e.conftest import SERVER_START_TIMEOUT_S, PageSession, _only_env, open_page

pytestmark = pytest.mark.e2e

RESULT_TIMEOUT_MS = 120_000
EVENT_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A server requiring API keys and one key of its database: (origin, key)."""
    tmp = tmp_path_factory.mktemp("e2e-auth")
    env = clean_environ(os.environ, tmp)
    env.update(
        {
            "AUTH_MODE": "api_key",
            "DATABASE_URL": f"sqlite:///{tmp / 'app.db'}",
            "BLOB_STORE": f"file://{tmp / 'blobs'}",
            "WORKERS": "1",
        }
    )
    created = subprocess.run(
        [sys.executable, "-m", "batchscribe", "keys", "create", "--tenant", str(uuid.uuid4())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    server = ServerProcess(env=env, log_path=tmp / "server.log")
    with _only_env(server.env):
        server.start(timeout=SERVER_START_TIMEOUT_S)
    try:
        yield server.url, created.stdout.strip()
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.terminate(timeout=30)


@pytest.fixture
def keyed_page(browser: Browser, keyed_server: tuple[str, str]) -> Iterator[PageSession]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield open_page(context, keyed_server[0])
    finally:
        context.close()


def test_the_page_asks_for_a_key_explains_a_refusal_then_uploads(
    keyed_page: PageSession, keyed_server: tuple[str, str], speech_wav: Path
) -> None:
    page, key = keyed_page.page, keyed_server[1]
    expect(page.locator("#key-card")).to_be_visible()
    expect(page.locator("#key-status")).to_have_text("Enter your API key to upload.")
    # The key names the tenant: the page does not offer a tenant field.
    page.click("#identity summary")
    expect(page.locator("#tenant-id")).to_be_hidden()

    # No key yet: the upload waits and the page points at the key field.
    page.set_input_files("#file-input", str(speech_wav))
    expect(page.locator("#error-title")).to_have_text("An API key is needed")
    expect(page.locator("#api-key")).to_be_focused()

    # A key the server does not know: the 401 is explained and the key is asked for again.
    page.fill("#api-key", "bsk_" + "x" * 43)
    page.click("#key-save")
    page.click("#retry-button")
    expect(page.locator("#error-title")).to_have_text(
        "The API key was not accepted", timeout=RESULT_TIMEOUT_MS
    )
    expect(page.locator("#error-advice")).to_contain_text("did not recognise the key")
    expect(page.locator("#key-status")).to_contain_text("not accepted")
    assert page.evaluate("() => sessionStorage.getItem('batchscribe.apiKey.v1')") is None

    # The right key: the same upload goes through and its event's state is followed.
    page.fill("#api-key", key)
    page.click("#key-save")
    expect(page.locator("#key-status")).to_have_text(f"Using the key {key[:12]}… in this tab.")
    page.click("#retry-button")
    expect(page.locator("#results")).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    expect(page.locator("#raw-transcript .turn").first.locator(".turn-text")).to_have_text(
        re.compile(r"\w+")
    )
    expect(page.locator("#event-badge")).to_have_attribute(
        "data-state", "held", timeout=EVENT_TIMEOUT_MS
    )
    # Kept for this tab only: sessionStorage, never localStorage.
    assert page.evaluate("() => sessionStorage.getItem('batchscribe.apiKey.v1')") == key
    stored = page.evaluate("() => JSON.stringify(Object.assign({}, localStorage))")
    assert key not in stored
    # Downloads send the key too.
    with page.expect_download() as download_info:
        page.click("[data-download=srt]")
    subtitles = Path(download_info.value.path()).read_text(encoding="utf-8")
    assert subtitles.startswith("1\n00:00:")
    assert "SPEAKER_0: " in subtitles
    keyed_page.screenshot("api-key-result")
    keyed_page.assert_same_origin()
