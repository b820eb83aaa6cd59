"""The page at `/` in a real browser against the real server: upload as a job, its progress, the
timed transcript, downloads, cancelling, recording, errors, layout."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import httpx
import pytest
import srt
import webvtt
from playwright.sync_api import Playwright, expect

from tests.e2e.conftest import PageSession, launch, open_page

pytestmark = pytest.mark.e2e

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
FINAL_EVENT_STATES = ("sent", "held", "failed", "too_large")
# Generous: transcription runs on a small CI machine. These bound a wait, never assert speed.
RESULT_TIMEOUT_MS = 120_000
EVENT_TIMEOUT_MS = 60_000


def _upload(session: PageSession, path: Path) -> None:
    session.page.set_input_files("#file-input", str(path))


def _expect_result(session: PageSession) -> None:
    page = session.page
    expect(page.locator("#results")).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    for which in ("#raw-transcript", "#cleaned-transcript"):
        turns = page.locator(f"{which} .turn")
        expect(turns.first).to_be_visible()
        expect(turns.first.locator(".speaker")).to_have_text(re.compile(r"^SPEAKER \d+$"))
        expect(turns.first.locator(".turn-text")).to_have_text(re.compile(r"\w+"))
    interaction_id = page.locator("#meta-interaction").inner_text()
    assert UUID4.match(interaction_id), interaction_id


#: How the page writes a segment's times: `0:01.2 \u2013 0:03.4` (an en dash between them).
TIMESTAMP = re.compile(r"^\d+:\d\d\.\d \u2013 \d+:\d\d\.\d$")


def _expect_final_event(session: PageSession) -> str:
    badge = session.page.locator("#event-badge")
    pattern = "|".join(FINAL_EVENT_STATES)
    expect(badge).to_have_attribute(
        "data-state", re.compile(f"^({pattern})$"), timeout=EVENT_TIMEOUT_MS
    )
    return badge.get_attribute("data-state") or ""


def _no_sideways_scroll(session: PageSession) -> None:
    overflow = session.page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


def test_upload_shows_both_transcripts_and_event_reaches_final_state(
    desktop: PageSession, speech_wav: Path
) -> None:
    page = desktop.page
    expect(page).to_have_title(re.compile("batchscribe"))
    _upload(desktop, speech_wav)

    _expect_result(desktop)
    expect(page.locator("#meta-duration")).to_have_text(re.compile(r"^\d+\.\d s$"))
    expect(page.locator("#meta-cleaning")).to_contain_text("Built-in rules")
    expect(page.locator("#file-summary")).to_contain_text("speech_short.wav")
    desktop.screenshot("desktop-result")

    # Copy gives the API's text (SPEAKER_<n>: lines), not the styled labels.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=desktop.origin)
    page.click("[data-copy=raw]")
    expect(page.locator("[data-copy=raw]")).to_have_text("Copied")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert re.match(r"^SPEAKER_0: \S", copied), copied
    # No AWS is configured for the test server, so the event is kept, not sent.
    assert _expect_final_event(desktop) == "held"
    expect(page.locator("#event-detail")).to_contain_text("publishing is off")
    desktop.screenshot("desktop-result")
    desktop.assert_same_origin()


def test_text_file_named_wav_shows_error_and_page_stays_usable(
    desktop: PageSession, speech_wav: Path, tmp_path: Path
) -> None:
    page = desktop.page
    fake = tmp_path / "notes.wav"
    fake.write_text("These are meeting notes, not a recording.\n" * 20)
    _upload(desktop, fake)

    error = page.locator("#error-box")
    expect(error).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    expect(page.locator("#error-title")).to_have_text("This doesn't look like audio we can read")
    expect(page.locator("#error-advice")).to_contain_text("WAV")
    expect(page.locator("#results")).to_be_hidden()
    expect(page.locator("#choose-button")).to_be_enabled()
    desktop.screenshot("desktop-error-not-audio")

    _upload(desktop, speech_wav)
    _expect_result(desktop)
    expect(error).to_be_hidden()
    desktop.assert_same_origin()


def test_dropping_a_file_on_the_drop_zone_uploads_it(
    desktop: PageSession, speech_wav: Path
) -> None:
    page = desktop.page
    payload = base64.b64encode(speech_wav.read_bytes()).decode()
    page.evaluate(
        """(b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "dropped.wav", { type: "audio/wav" }));
            const zone = document.getElementById("dropzone");
            for (const type of ["dragenter", "dragover", "drop"]) {
                zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true,
                                                         cancelable: true }));
            }
        }""",
        payload,
    )
    expect(page.locator("#file-summary")).to_contain_text("dropped.wav")
    _expect_result(desktop)
    expect(page.locator("#dropzone")).not_to_have_class(re.compile("is-dragover"))
    desktop.assert_same_origin()


def test_recording_from_fake_microphone_is_transcribed(
    playwright: Playwright, server_origin: str, microphone_wav: Path
) -> None:
    browser = launch(
        playwright,
        [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone_wav}",
        ],
    )
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.grant_permissions(["microphone"], origin=server_origin)
        session = open_page(context, server_origin)
        page = session.page
        page.click("#record-start")
        expect(page.locator("#recorder")).to_have_class(re.compile("is-recording"))
        expect(page.locator("#record-stop")).to_be_focused()
        page.wait_for_timeout(4000)  # record about four seconds of the looping fixture
        expect(page.locator("#rec-elapsed")).not_to_have_text("0:00")
        page.click("#record-stop")

        expect(page.locator("#file-summary")).to_contain_text(re.compile(r"recording\.(webm|ogg)"))
        _expect_result(session)
        session.screenshot("desktop-recording-result")
        _expect_final_event(session)
        session.screenshot("desktop-recording-result")
        session.assert_same_origin()
        context.close()
    finally:
        browser.close()


def test_phone_width_has_no_sideways_scroll_and_stacks_transcripts(
    phone: PageSession, speech_wav: Path
) -> None:
    page = phone.page
    _no_sideways_scroll(phone)
    phone.screenshot("phone-start")
    _upload(phone, speech_wav)
    _expect_result(phone)
    phone.screenshot("phone-result")
    _expect_final_event(phone)
    phone.screenshot("phone-result")
    _no_sideways_scroll(phone)
    raw_box = page.locator("#raw-transcript").bounding_box()
    cleaned_box = page.locator("#cleaned-transcript").bounding_box()
    assert raw_box is not None
    assert cleaned_box is not None
    assert cleaned_box["y"] > raw_box["y"] + raw_box["height"] / 2, "transcripts are not stacked"
    phone.assert_same_origin()


def test_identity_fields_are_sent_as_headers_and_remembered(
    desktop: PageSession, speech_wav: Path
) -> None:
    page = desktop.page
    tenant = "3f1c2b7e-8a4d-4c1e-9b2a-1d2e3f4a5b6c"
    page.click("#identity summary")
    page.fill("#tenant-id", tenant)
    page.fill("#user-id", "alice@example.com")
    page.fill("#account-id", "acct-42")

    with page.expect_request(re.compile(r"/batch/jobs$")) as request_info:
        _upload(desktop, speech_wav)
    headers = request_info.value.headers
    assert headers.get("x-tenant-id") == tenant
    assert headers.get("x-user-id") == "alice@example.com"
    assert headers.get("x-account-id") == "acct-42"
    _expect_result(desktop)
    # The delivery poll asks with the same tenant, or the server would not answer.
    assert _expect_final_event(desktop) == "held"

    page.reload()
    expect(page.locator("#tenant-id")).to_have_value(tenant)
    expect(page.locator("#user-id")).to_have_value("alice@example.com")
    desktop.assert_same_origin()


def test_controls_are_keyboard_operable_with_visible_focus(desktop: PageSession) -> None:
    page = desktop.page
    reached: list[str] = []
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("() => document.activeElement.id"))
    for control in ("choose-button", "record-start"):
        assert control in reached, f"{control} is not reachable with Tab: {reached}"
    page.focus("#choose-button")
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), "focused button shows no outline"
    for control in ("#choose-button", "#record-start", "#tenant-id", "#user-id", "#account-id"):
        label = page.evaluate(
            "(sel) => { const el = document.querySelector(sel);"
            " return (el.labels && el.labels[0] && el.labels[0].textContent)"
            " || el.getAttribute('aria-label') || el.textContent; }",
            control,
        )
        assert (label or "").strip(), f"{control} has no accessible name"


def test_upload_is_a_job_followed_to_a_timed_transcript_with_downloads(
    desktop: PageSession, speech_wav: Path, tmp_path: Path
) -> None:
    page = desktop.page
    polls: list[str] = []
    page.on(
        "request",
        lambda r: polls.append(r.url) if re.search(r"/batch/jobs/[0-9a-f-]+$", r.url) else None,
    )
    with page.expect_response(re.compile(r"/batch/jobs$")) as submitted:
        _upload(desktop, speech_wav)
    assert submitted.value.status == 202
    job_id = submitted.value.json()["job_id"]
    _expect_result(desktop)
    # The page followed the job by its id, and shows it as the interaction id.
    assert any(url.endswith(f"/batch/jobs/{job_id}") for url in polls)
    expect(page.locator("#meta-interaction")).to_have_text(job_id)
    expect(page.locator("#meta-engine")).to_have_text("sphinx · en")

    # The cleaned transcript shows when each part was said.
    times = page.locator("#cleaned-transcript .time")
    expect(times.first).to_have_text(TIMESTAMP)
    desktop.screenshot("desktop-timed-result")

    saved: dict[str, str] = {}
    for button, ext in (("text", "txt"), ("srt", "srt"), ("vtt", "vtt")):
        with page.expect_download() as download_info:
            page.click(f"[data-download={button}]")
        download = download_info.value
        assert download.suggested_filename == f"speech_short.{ext}"
        target = tmp_path / download.suggested_filename
        download.save_as(target)
        saved[ext] = target.read_text(encoding="utf-8")
    expect(page.locator("#download-status")).to_have_text("Saved speech_short.vtt.")

    assert saved["txt"].startswith("SPEAKER_0: ")
    cues = list(srt.parse(saved["srt"]))
    assert cues
    assert all(cue.content.startswith("SPEAKER_0: ") for cue in cues)
    captions = list(webvtt.from_buffer(io.StringIO(saved["vtt"])))
    assert [c.voice for c in captions] == ["SPEAKER_0"] * len(cues)
    # The first cue's start is the first time the page shows.
    first_shown = times.first.inner_text().split(" \u2013 ")[0]
    minutes, seconds = first_shown.split(":")
    assert abs(int(minutes) * 60 + float(seconds) - cues[0].start.total_seconds()) < 0.1
    desktop.assert_same_origin()


def test_a_job_is_cancelled_from_the_page(
    desktop: PageSession, microphone_wav: Path, server_origin: str
) -> None:
    page = desktop.page
    with page.expect_response(re.compile(r"/batch/jobs$")) as submitted:
        _upload(desktop, microphone_wav)  # twenty seconds: time to press Cancel
    job_id = submitted.value.json()["job_id"]
    tenant = submitted.value.json()["tenant_id"]
    expect(page.locator("#status-text")).to_have_text(
        re.compile(r"^(Queued|Transcribing)"), timeout=RESULT_TIMEOUT_MS
    )
    page.click("#cancel-button")
    expect(page.locator("#status-text")).to_have_text(re.compile("^Cancelled"))
    expect(page.locator("#results")).to_be_hidden()
    expect(page.locator("#choose-button")).to_be_enabled()
    job = httpx.get(
        f"{server_origin}/batch/jobs/{job_id}", headers={"X-Tenant-ID": tenant}, timeout=10
    ).json()
    assert job["status"] == "cancelled"
    desktop.assert_same_origin()
