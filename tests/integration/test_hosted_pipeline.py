"""The whole endpoint with hosted engines: Deepgram diarization and the LLM cleaner, both
reached over real HTTP on loopback stand-ins that answer in the services' formats."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import srt
from fastapi.testclient import TestClient

from batchscribe.config import Settings
from batchscribe.http.app import create_app
from testkit.standins import DeepgramStandIn, OpenAIStandIn, deepgram_words
from tests.support.fixtures import write_tone

TURNS = [
    (3, "Um, so we we ship on Friday."),
    (7, "Uh, okay. Who tells the customer?"),
    (3, "I will."),
]


@pytest.fixture
def hosted_client(
    tmp_path: Path, deepgram_standin: DeepgramStandIn, openai_standin: OpenAIStandIn
) -> Iterator[TestClient]:
    deepgram_standin.words = deepgram_words(TURNS)
    settings = Settings(
        workers=1,
        transcriber="deepgram",
        cleaner="openai",
        deepgram_api_key=deepgram_standin.api_key,  # type: ignore[arg-type]
        deepgram_base_url=deepgram_standin.base_url,
        openai_api_key=openai_standin.api_key,  # type: ignore[arg-type]
        openai_base_url=openai_standin.base_url,
        database_url=f"sqlite:///{tmp_path / 'app.db'}",
        blob_store=f"file://{tmp_path / 'blobs'}",
    )
    with TestClient(create_app(settings, workers=1)) as client:
        yield client


def test_diarized_turns_and_llm_cleaning(
    hosted_client: TestClient,
    tone_file: Path,
    deepgram_standin: DeepgramStandIn,
    openai_standin: OpenAIStandIn,
) -> None:
    response = hosted_client.post(
        "/batch/process", files={"file": ("meeting.wav", tone_file.read_bytes())}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["raw_transcript"].splitlines() == [
        "SPEAKER_0: Um, so we we ship on Friday.",
        "SPEAKER_1: Uh, okay. Who tells the customer?",
        "SPEAKER_0: I will.",
    ]
    cleaned = body["cleaned_transcript"].splitlines()
    assert [line.split(":")[0] for line in cleaned] == ["SPEAKER_0", "SPEAKER_1", "SPEAKER_0"]
    assert "Um," not in cleaned[0]
    assert body["cleaning"] == {"engine": "openai", "degraded": False, "reason": None}
    (listen,) = deepgram_standin.requests_to("/v1/listen")
    assert listen.query["diarize"] == ["true"]
    assert listen.headers["content-type"] == "audio/wav"
    (chat,) = openai_standin.requests_to("/v1/chat/completions")
    assert "SPEAKER_1:" in openai_standin.user_message(chat)


def test_failing_cleaner_still_answers_200_marked_degraded(
    hosted_client: TestClient, tone_file: Path, openai_standin: OpenAIStandIn
) -> None:
    openai_standin.chat_content = lambda text: json.dumps({"cleaned_text": "SPEAKER_0: gone"})
    response = hosted_client.post(
        "/batch/process", files={"file": ("meeting.wav", tone_file.read_bytes())}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["cleaning"]["degraded"] is True
    assert body["cleaning"]["reason"]
    assert body["cleaned_transcript"] == body["raw_transcript"]


def test_bad_deepgram_key_is_a_503_naming_the_variable(
    tmp_path: Path, deepgram_standin: DeepgramStandIn, tone_file: Path
) -> None:
    settings = Settings(
        workers=1,
        transcriber="deepgram",
        deepgram_api_key="wrong-key",  # type: ignore[arg-type]
        deepgram_base_url=deepgram_standin.base_url,
        database_url=f"sqlite:///{tmp_path / 'app.db'}",
        blob_store=f"file://{tmp_path / 'blobs'}",
    )
    with TestClient(create_app(settings, workers=1)) as client:
        response = client.post("/batch/process", files={"file": ("a.wav", tone_file.read_bytes())})
    assert response.status_code == 503
    assert "DEEPGRAM_API_KEY" in response.json()["error"]["message"]


def test_deepgram_times_reach_the_subtitles(
    hosted_client: TestClient, tmp_path: Path, openai_standin: OpenAIStandIn
) -> None:
    audio = write_tone(tmp_path / "meeting.wav", seconds=6)
    response = hosted_client.post(
        "/batch/process",
        files={"file": ("meeting.wav", audio.read_bytes())},
        data={"response_format": "srt"},
    )
    assert response.status_code == 200, response.text
    cues = [(c.start.total_seconds(), c.end.total_seconds(), c.content) for c in
            srt.parse(response.text)]  # fmt: skip
    # One cue per sentence, at the stand-in's word times (0.35 s a word, 0.3 s long), showing
    # the LLM cleaner's text of that sentence.
    assert [c[:2] for c in cues] == [(0.0, 2.4), (2.45, 3.1), (3.15, 4.5), (4.55, 5.2)]
    assert [c[2].split(":")[0] for c in cues] == [
        "SPEAKER_0",
        "SPEAKER_1",
        "SPEAKER_1",
        "SPEAKER_0",
    ]
    assert cues[0][2] == "SPEAKER_0: so we we ship on Friday."
    assert cues[1][2] == "SPEAKER_1: okay."
