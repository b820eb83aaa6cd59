"""The official OpenAI Python SDK against a running batchscribe (SPEC 15): unchanged code but for
`base_url` and the key, for every `response_format`, with OpenAI's errors, batchscribe's
authentication, limits and events."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import openai
import pytest
import srt
import webvtt

from testkit.environment import clean_environ
from testkit.server import ServerProcess

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SHORT = FIXTURES / "speech_short.wav"
LONG = FIXTURES / "speech.wav"  # 20 s: over the MAX_SYNC_AUDIO_SECONDS of this server
SYNC_LIMIT_S = 10


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    """`batchscribe serve` requiring API keys, and one key: (server, key)."""
    tmp = tmp_path_factory.mktemp("openai-sdk")
    env = clean_environ(os.environ, tmp)
    env.update(
        {
            "AUTH_MODE": "api_key",
            "DATABASE_URL": f"sqlite:///{tmp / 'app.db'}",
            "BLOB_STORE": f"file://{tmp / 'blobs'}",
            "WORKERS": "1",
            "MAX_SYNC_AUDIO_SECONDS": str(SYNC_LIMIT_S),
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
    process = ServerProcess(env, tmp / "server.log")
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        process.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        yield process, created.stdout.strip()
    finally:
        process.terminate(timeout=30)


@pytest.fixture
def client(server: tuple[ServerProcess, str]) -> Iterator[openai.OpenAI]:
    """What a user of OpenAI writes, with batchscribe's address and key."""
    process, key = server
    with openai.OpenAI(base_url=f"{process.url}/v1", api_key=key, max_retries=0) as sdk:
        yield sdk


def test_json_is_the_cleaned_transcript(client: openai.OpenAI) -> None:
    with SHORT.open("rb") as audio:
        transcription = client.audio.transcriptions.create(model="whisper-1", file=audio)
    assert transcription.text.startswith("SPEAKER_0: ")
    assert transcription.text.rstrip()[-1] in ".?!"


def test_text_srt_and_vtt_come_back_as_text_that_parses(client: openai.OpenAI) -> None:
    with SHORT.open("rb") as audio:
        text = client.audio.transcriptions.create(
            model="whisper-1", file=audio, response_format="text"
        )
    assert isinstance(text, str)
    assert text.startswith("SPEAKER_0: ")

    with SHORT.open("rb") as audio:
        subrip = client.audio.transcriptions.create(
            model="whisper-1", file=audio, response_format="srt"
        )
    cues = list(srt.parse(subrip))
    assert cues
    assert all(timedelta(0) <= c.start < c.end <= timedelta(seconds=3) for c in cues)
    assert all(c.content.startswith("SPEAKER_0: ") for c in cues)

    with SHORT.open("rb") as audio:
        vtt = client.audio.transcriptions.create(
            model="whisper-1", file=audio, response_format="vtt"
        )
    captions = list(webvtt.from_buffer(io.StringIO(vtt)))
    assert captions
    assert all(c.voice == "SPEAKER_0" for c in captions)


def test_verbose_json_has_segments_and_asked_for_words(client: openai.OpenAI) -> None:
    with SHORT.open("rb") as audio:
        verbose = client.audio.transcriptions.create(
            model="whisper-1",
            file=audio,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
            language="en",
        )
    assert verbose.language == "en"
    assert 2 < verbose.duration < 3
    assert verbose.segments
    assert verbose.words
    for segment in verbose.segments:
        assert 0 <= segment.start <= segment.end <= verbose.duration
    starts = [w.start for w in verbose.words]
    assert starts == sorted(starts)

    with SHORT.open("rb") as audio:
        default = client.audio.transcriptions.create(
            model="whisper-1", file=audio, response_format="verbose_json"
        )
    assert default.segments
    assert default.words is None  # OpenAI's default granularity is the segment


def test_a_language_the_engine_cannot_do_is_openais_bad_request(client: openai.OpenAI) -> None:
    with SHORT.open("rb") as audio, pytest.raises(openai.BadRequestError) as info:
        client.audio.transcriptions.create(model="whisper-1", file=audio, language="fr")
    error = info.value
    assert (error.code, error.param, error.type) == (
        "unsupported_language",
        "language",
        "invalid_request_error",
    )
    assert "en (any English tag" in error.message


def test_unknown_fields_are_refused_naming_the_accepted_ones(client: openai.OpenAI) -> None:
    with SHORT.open("rb") as audio, pytest.raises(openai.BadRequestError) as info:
        client.audio.transcriptions.create(
            model="whisper-1", file=audio, extra_body={"diarize": "true"}
        )
    assert info.value.code == "unknown_field"
    assert "`timestamp_granularities[]`" in info.value.message


def test_the_sync_audio_limit_applies(client: openai.OpenAI) -> None:
    with LONG.open("rb") as audio, pytest.raises(openai.APIStatusError) as info:
        client.audio.transcriptions.create(model="whisper-1", file=audio)
    assert info.value.status_code == 413
    assert info.value.code == "audio_too_long"
    assert "POST /batch/jobs" in info.value.message


def test_a_wrong_key_is_openais_authentication_error(server: tuple[ServerProcess, str]) -> None:
    process, _ = server
    sdk = openai.OpenAI(base_url=f"{process.url}/v1", api_key="bsk_" + "x" * 43, max_retries=0)
    with sdk, pytest.raises(openai.AuthenticationError) as info:
        sdk.models.list()
    assert info.value.type == "authentication_error"


def test_models_list_the_engine(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == ["sphinx"]
    assert client.models.retrieve("sphinx").owned_by == "batchscribe"
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("whisper-1")
    assert info.value.code == "model_not_found"


def test_a_transcription_publishes_its_event_like_the_other_routes(
    client: openai.OpenAI, server: tuple[ServerProcess, str]
) -> None:
    process, key = server
    with SHORT.open("rb") as audio:
        raw = client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=audio)
    interaction_id = raw.headers["X-Interaction-ID"]
    assert raw.parse().text.startswith("SPEAKER_0: ")
    status = ""
    deadline = time.monotonic() + 30
    while status != "held" and time.monotonic() < deadline:
        event = httpx.get(
            f"{process.url}/events/{interaction_id}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert event.status_code == 200, event.text
        status = event.json()["status"]
        time.sleep(0.2)
    # No AWS in this test: the event is kept for `batchscribe outbox replay`.
    assert status == "held"
