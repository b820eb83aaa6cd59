"""Transcripts people can use, over HTTP (SPEC 15): `response_format` on `POST /batch/process`
and `GET /batch/jobs/{id}?format=`, subtitles read back by independent parsers (`srt`,
`webvtt-py`), the language check, and parameters the routes do not know refused by name."""

from __future__ import annotations

import io
import itertools
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import srt
import webvtt
from fastapi.testclient import TestClient

from batchscribe.config import Settings
from batchscribe.db import Database
from batchscribe.http.app import create_app
from batchscribe.jobs.store import JobStore
from tests.support.jobs import completed_job, failed_job, job_store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SPEECH = (FIXTURES / "speech_short.wav").read_bytes()
TENANT = "6f1c2a9e-3b7d-4c1e-9a8f-2d5b7c9e1f03"
HEADERS = {"X-Tenant-ID": TENANT}


def _settings(tmp: Path) -> Settings:
    return Settings(
        workers=1,
        max_queued=2,
        database_url=f"sqlite:///{tmp / 'app.db'}",
        blob_store=f"file://{tmp / 'blobs'}",
        upload_dir=tmp,
    )


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app with one real sphinx worker."""
    app = create_app(_settings(tmp_path_factory.mktemp("formats")), workers=1)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def idle(tmp_path: Path) -> Iterator[tuple[TestClient, JobStore]]:
    """An API without workers (jobs stay queued) and a handle on its job store; a fresh one per
    test, so the store's claims take only the jobs the test made."""
    settings = _settings(tmp_path)
    app = create_app(settings, workers=0)
    db = Database(settings.database)
    try:
        with TestClient(app, raise_server_exceptions=False) as c:
            yield c, job_store(db)
    finally:
        db.dispose()


def process(client: TestClient, **kwargs: Any) -> httpx.Response:
    data = kwargs.pop("data", {})
    return client.post(
        "/batch/process",
        files={"file": ("speech.wav", SPEECH)},
        data=data,
        headers=HEADERS,
        **kwargs,
    )


def assert_refused(response: httpx.Response, status: int, code: str, *mentions: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    for text in mentions:
        assert text in error["message"]


@pytest.mark.slow
def test_json_result_has_timed_segments_language_and_engine(client: TestClient) -> None:
    response = process(client)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["engine"], body["language"]) == ("sphinx", "en")
    segments = body["segments"]
    assert segments, body
    starts = [s["start"] for s in segments]
    assert starts == sorted(starts)
    for segment in segments:
        assert segment["speaker"] == "SPEAKER_0"
        assert 0 <= segment["start"] <= segment["end"] <= body["duration_seconds"]
        for word in segment["words"]:
            assert segment["start"] <= word["start"] <= word["end"] <= segment["end"]
            assert 0 <= word["confidence"] <= 1
    # The cleaned transcript is the segments' texts, turn by turn.
    assert body["cleaned_transcript"] == "SPEAKER_0: " + " ".join(s["text"] for s in segments)


@pytest.mark.slow
def test_srt_as_a_form_field_parses_with_the_srt_library(client: TestClient) -> None:
    response = process(client, data={"response_format": "srt"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-subrip")
    assert response.headers["X-Interaction-ID"]
    subtitles = list(srt.parse(response.text))
    assert subtitles
    assert [s.index for s in subtitles] == list(range(1, len(subtitles) + 1))
    for previous, cue in itertools.pairwise(subtitles):
        assert previous.start <= cue.start
    for cue in subtitles:
        assert timedelta(0) <= cue.start < cue.end <= timedelta(seconds=3)
        assert cue.content.startswith("SPEAKER_0: ")


@pytest.mark.slow
def test_vtt_as_a_query_parameter_parses_with_webvtt(client: TestClient) -> None:
    response = process(client, params={"response_format": "vtt"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/vtt")
    captions = list(webvtt.from_buffer(io.StringIO(response.text)))
    assert captions
    for caption in captions:
        assert caption.voice == "SPEAKER_0"
        assert 0 <= caption.start_in_seconds < caption.end_in_seconds <= 3


@pytest.mark.slow
def test_text_and_verbose_json(client: TestClient) -> None:
    text = process(client, data={"response_format": "text"})
    assert text.status_code == 200, text.text
    assert text.headers["content-type"].startswith("text/plain")
    assert text.text.startswith("SPEAKER_0: ")

    verbose = process(client, data={"response_format": "verbose_json"}).json()
    assert verbose["task"] == "transcribe"
    assert verbose["language"] == "en"
    assert verbose["text"].startswith("SPEAKER_0: ")
    assert [s["id"] for s in verbose["segments"]] == list(range(len(verbose["segments"])))
    assert all("confidence" in w for w in verbose["words"])


def test_formats_in_the_form_and_the_query_that_disagree_are_refused(client: TestClient) -> None:
    response = process(client, data={"response_format": "srt"}, params={"response_format": "vtt"})
    assert_refused(response, 400, "conflicting_response_format")


def test_an_unknown_format_is_refused_listing_the_formats(client: TestClient) -> None:
    response = process(client, data={"response_format": "docx"})
    assert_refused(response, 400, "invalid_response_format", "json, text, srt, vtt, verbose_json")


def test_unknown_query_parameters_are_refused_naming_the_accepted_ones(client: TestClient) -> None:
    assert_refused(
        process(client, params={"fromat": "srt"}),
        400,
        "unknown_parameter",
        "'fromat'",
        "`response_format`",
    )
    assert_refused(
        client.get("/batch/jobs", params={"state": "queued"}, headers=HEADERS),
        400,
        "unknown_parameter",
        "`cursor`, `limit`, `status`",
    )
    assert_refused(
        client.get(f"/batch/jobs/{uuid.uuid4()}", params={"fmt": "srt"}, headers=HEADERS),
        400,
        "unknown_parameter",
        "`format`, `response_format`",
    )
    assert_refused(
        client.request("DELETE", f"/batch/jobs/{uuid.uuid4()}?force=1", headers=HEADERS),
        400,
        "unknown_parameter",
        "Accepted: none",
    )


def test_unknown_form_fields_are_refused_naming_the_accepted_ones(client: TestClient) -> None:
    assert_refused(
        process(client, data={"format": "srt"}),
        400,
        "unknown_field",
        "`file`, `language`, `response_format`",
    )


@pytest.mark.parametrize("route", ["/batch/process", "/batch/jobs"])
def test_a_language_sphinx_cannot_do_is_refused_before_anything_is_stored(
    idle: tuple[TestClient, JobStore], route: str
) -> None:
    client, store = idle
    tenant = str(uuid.uuid4())
    response = client.post(
        route,
        files={"file": ("speech.wav", SPEECH)},
        data={"language": "fr-FR"},
        headers={"X-Tenant-ID": tenant},
    )
    assert_refused(response, 400, "unsupported_language", "'fr-FR'", "en-GB")
    assert store.page(tenant, status=None, limit=10, cursor=None).jobs == []


def test_an_english_tag_is_kept_with_the_job_in_canonical_case(
    idle: tuple[TestClient, JobStore],
) -> None:
    client, _ = idle
    response = client.post(
        "/batch/jobs",
        files={"file": ("speech.wav", SPEECH)},
        data={"language": "EN-gb"},
        headers=HEADERS,
    )
    assert response.status_code == 202, response.text
    job = client.get(response.json()["status_url"], headers=HEADERS).json()
    assert job["language"] == "en-GB"


def test_a_job_that_has_not_completed_has_no_transcript_yet(
    idle: tuple[TestClient, JobStore],
) -> None:
    client, store = idle
    failed = failed_job(store, tenant=TENANT)
    accepted = client.post(
        "/batch/jobs", files={"file": ("speech.wav", SPEECH)}, headers=HEADERS
    ).json()
    queued = client.get(accepted["status_url"], params={"format": "srt"}, headers=HEADERS)
    assert_refused(queued, 409, "result_not_ready", "queued", "Poll it without `format`")

    response = client.get(f"/batch/jobs/{failed.id}", params={"format": "vtt"}, headers=HEADERS)
    assert_refused(response, 409, "result_not_ready", "failed", "see its `error`")


def test_a_completed_job_in_every_format_under_either_parameter_name(
    idle: tuple[TestClient, JobStore],
) -> None:
    client, store = idle
    job = completed_job(store, "hello there", tenant=TENANT)
    url = f"/batch/jobs/{job.id}"

    subtitles = list(srt.parse(client.get(url, params={"format": "srt"}, headers=HEADERS).text))
    assert [(s.start, s.end, s.content) for s in subtitles] == [
        (timedelta(0), timedelta(seconds=1), "SPEAKER_0: hello there")
    ]
    vtt = client.get(url, params={"response_format": "vtt"}, headers=HEADERS)
    [caption] = webvtt.from_buffer(io.StringIO(vtt.text))
    assert (caption.voice, caption.text) == ("SPEAKER_0", "hello there")
    assert client.get(url, params={"format": "text"}, headers=HEADERS).text == (
        "SPEAKER_0: hello there"
    )
    verbose = client.get(url, params={"format": "verbose_json"}, headers=HEADERS).json()
    assert verbose["segments"][0]["text"] == "hello there"
    as_json = client.get(url, params={"format": "json"}, headers=HEADERS).json()
    assert as_json["result"]["segments"][0]["start"] == 0.0
    assert_refused(
        client.get(url, params={"format": "srt", "response_format": "vtt"}, headers=HEADERS),
        400,
        "conflicting_response_format",
    )
    # Another tenant still sees nothing, in any format.
    other = client.get(url, params={"format": "srt"}, headers={"X-Tenant-ID": str(uuid.uuid4())})
    assert other.status_code == 404


def test_a_deleted_result_is_gone(idle: tuple[TestClient, JobStore]) -> None:
    client, store = idle
    job = completed_job(store, "hello there", tenant=TENANT)
    time.sleep(0.01)
    store.redact_finished(older_than_seconds=0)
    response = client.get(f"/batch/jobs/{job.id}", params={"format": "srt"}, headers=HEADERS)
    assert_refused(response, 410, "result_deleted", "RETENTION_DAYS")
