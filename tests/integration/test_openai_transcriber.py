"""OpenAITranscriber against a local server answering like OpenAI's transcription API."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from batchscribe.config import Settings
from batchscribe.pipeline.audio import probe_audio
from batchscribe.pipeline.exceptions import EngineUnavailableError, TranscriptionError
from batchscribe.pipeline.retry import RetryPolicy
from batchscribe.pipeline.transcribers import build_transcriber
from batchscribe.pipeline.transcribers.base import Control
from batchscribe.pipeline.transcribers.openai import OpenAITranscriber
from batchscribe.pipeline.types import Transcript
from testkit.standins import OpenAIStandIn, Reply
from tests.support.fixtures import write_tone

TRANSCRIPTIONS = "/v1/audio/transcriptions"


#: The production policy's shape (2 retries, exponential, Retry-After up to a cap), in milliseconds.
FAST = RetryPolicy(first_delay=0.001, max_delay=0.05)


def make(
    standin: OpenAIStandIn,
    *,
    key: str | None = None,
    model: str | None = None,
    timeout: float = 60,
) -> OpenAITranscriber:
    """The engine pointed at `standin`, retrying with tiny delays."""
    settings = Settings(
        transcriber="openai",
        openai_api_key=key or standin.api_key,
        openai_base_url=standin.base_url,
        openai_timeout_seconds=timeout,
    )
    if model:
        settings = settings.model_copy(update={"openai_transcribe_model": model})
    return OpenAITranscriber(settings, retry=FAST)


def transcribe(engine: OpenAITranscriber, path: Path) -> str:
    try:
        output = engine.transcribe(path, probe_audio(path))
    finally:
        engine.close()
    return Transcript.from_engine(output.segments, 1.0, engine.name).raw_text


def test_uploads_the_file_with_model_and_key_and_returns_one_speaker(
    openai_standin: OpenAIStandIn, tone_file: Path
) -> None:
    openai_standin.transcription_text = "  Hello   from the\nstand-in. "
    raw = transcribe(make(openai_standin), tone_file)

    assert raw == "SPEAKER_0: Hello from the stand-in."
    [request] = openai_standin.requests
    assert (request.method, request.path) == ("POST", TRANSCRIPTIONS)
    assert request.headers["authorization"] == "Bearer sk-test-key"
    assert request.headers["content-type"].startswith("multipart/form-data")
    form = request.form()
    assert form["model"][2] == b"whisper-1"
    filename, content_type, data = form["file"]
    assert (filename, content_type) == ("audio.wav", "audio/wav")
    assert data == tone_file.read_bytes()


def test_model_and_file_name_follow_settings_and_the_real_format(
    openai_standin: OpenAIStandIn, tmp_path: Path
) -> None:
    flac = write_tone(tmp_path / "upload.tmp", fmt="flac")
    transcribe(make(openai_standin, model="whisper-large-v3"), flac)
    form = openai_standin.requests[0].form()
    assert form["model"][2] == b"whisper-large-v3"
    assert form["file"][:2] == ("audio.flac", "audio/flac")


def test_built_from_settings_by_the_engine_factory(
    openai_standin: OpenAIStandIn, tone_file: Path
) -> None:
    settings = Settings(
        transcriber="openai",
        openai_api_key=openai_standin.api_key,
        openai_base_url=openai_standin.base_url,
    )
    engine = build_transcriber(settings)
    assert isinstance(engine, OpenAITranscriber)
    assert transcribe(engine, tone_file) == "SPEAKER_0: Hello from the stand-in."


def test_wrong_key_is_a_503_naming_the_variable_without_retry(
    openai_standin: OpenAIStandIn, tone_file: Path
) -> None:
    with pytest.raises(EngineUnavailableError, match="OPENAI_API_KEY") as info:
        transcribe(make(openai_standin, key="sk-wrong-999"), tone_file)
    assert "sk-wrong-999" not in str(info.value)
    assert len(openai_standin.requests) == 1


def test_rate_limit_then_success_is_retried_once(
    openai_standin: OpenAIStandIn, tone_file: Path
) -> None:
    openai_standin.queue(TRANSCRIPTIONS, Reply.error(429))
    assert transcribe(make(openai_standin), tone_file) == "SPEAKER_0: Hello from the stand-in."
    assert len(openai_standin.requests) == 2
    assert openai_standin.requests[1].form()["file"][2] == tone_file.read_bytes()


def test_persistent_server_error_is_retried_twice_then_503(
    openai_standin: OpenAIStandIn, tone_file: Path
) -> None:
    openai_standin.queue(TRANSCRIPTIONS, *[Reply.error(503, retry_after=3)] * 3)
    with pytest.raises(EngineUnavailableError, match="HTTP 503 after 3 attempts") as info:
        transcribe(make(openai_standin), tone_file)
    assert info.value.retry_after == 3
    assert len(openai_standin.requests) == 3


def test_retry_after_is_honoured_up_to_the_cap(
    openai_standin: OpenAIStandIn, tone_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    openai_standin.queue(TRANSCRIPTIONS, Reply.error(429, retry_after=1), Reply.error(500))
    caplog.set_level(logging.WARNING, logger="batchscribe")
    transcribe(make(openai_standin), tone_file)
    delays = [r.delay_s for r in caplog.records if r.getMessage() == "openai transcription retry"]
    assert delays[0] == FAST.max_delay  # asked for 1 s: waited as long as the cap allows
    assert delays[1] < FAST.max_delay  # no Retry-After: the exponential backoff alone
    # The SDK's own retries are off: exactly the policy's attempts reached the server.
    assert len(openai_standin.requests) == 3


def test_timeout_is_retried_twice_then_503(openai_standin: OpenAIStandIn, tone_file: Path) -> None:
    openai_standin.queue(TRANSCRIPTIONS, *[Reply.slow(30)] * 3)
    with pytest.raises(EngineUnavailableError, match="timeout after 3 attempts") as info:
        transcribe(make(openai_standin, timeout=0.3), tone_file)
    assert len(openai_standin.requests) == 3
    assert info.value.retry_after == 60  # no hint from the server: "try again in a minute"


def test_silence_gives_an_empty_transcript(openai_standin: OpenAIStandIn, tone_file: Path) -> None:
    openai_standin.transcription_text = "  "
    assert transcribe(make(openai_standin), tone_file) == ""


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply.error(400), "HTTP 400"),
        (Reply.error(404), "OPENAI_TRANSCRIBE_MODEL"),
        (Reply.raw("<html>bad gateway page</html>", content_type="text/html"), "without text"),
        (Reply.raw('{"text": "cut off'), "unexpected format"),
        (Reply.json({"unexpected": True}), "without text"),
    ],
    ids=["bad-request", "unknown-model", "html-page", "broken-json", "no-text"],
)
def test_other_failures_are_transcription_errors(
    openai_standin: OpenAIStandIn, tone_file: Path, reply: Reply, message: str
) -> None:
    # A 400 to the verbose_json request is asked again for plain json: refuse that too.
    replies = (reply, reply) if reply.status == 400 else (reply,)
    openai_standin.queue(TRANSCRIPTIONS, *replies)
    with pytest.raises(TranscriptionError, match=message) as info:
        transcribe(make(openai_standin), tone_file)
    assert not isinstance(info.value, EngineUnavailableError)
    assert len(openai_standin.requests) == len(replies)


def test_verbose_json_gives_timed_segments_with_their_words_and_the_language_code(
    openai_standin: OpenAIStandIn, tmp_path: Path
) -> None:
    openai_standin.transcription_text = "Hello there. How are you today?"
    audio = write_tone(tmp_path / "three-seconds.wav", seconds=3)
    engine = make(openai_standin)
    try:
        output = engine.transcribe(audio, probe_audio(audio), Control(language="en-GB"))
    finally:
        engine.close()

    form = openai_standin.requests[0].form()
    assert form["response_format"][2] == b"verbose_json"
    assert form["language"][2] == b"en"  # ISO 639-1, as these APIs take it
    assert [(p.text, p.start, p.end) for p in output.segments] == [
        ("Hello there.", 0.0, 0.65),
        ("How are you today?", 0.7, 2.05),
    ]
    assert [w.text for w in output.segments[1].words] == ["How", "are", "you", "today"]
    assert all(w.confidence is None for p in output.segments for w in p.words)
    assert output.language == "en"  # "english" in OpenAI's answer


def test_times_past_the_end_of_the_recording_are_kept_within_it(
    openai_standin: OpenAIStandIn, tone_file: Path
) -> None:
    openai_standin.transcription_text = "Hello there. How are you today?"
    engine = make(openai_standin)
    try:
        output = engine.transcribe(tone_file, probe_audio(tone_file))  # one second long
    finally:
        engine.close()
    times = [t for p in output.segments for w in p.words for t in (w.start, w.end)]
    assert max(times) <= 1.0
    assert max(p.end or 0.0 for p in output.segments) <= 1.0


def test_a_server_refusing_verbose_json_is_asked_for_json_once_and_then_always(
    openai_standin: OpenAIStandIn, tone_file: Path
) -> None:
    openai_standin.verbose_supported = False
    engine = make(openai_standin)
    try:
        first = engine.transcribe(tone_file, probe_audio(tone_file))
        engine.transcribe(tone_file, probe_audio(tone_file))
    finally:
        engine.close()
    formats = [
        r.form().get("response_format", (None, None, b"json"))[2] for r in openai_standin.requests
    ]
    assert formats == [b"verbose_json", b"json", b"json"]
    # The text has no times: one untimed piece, laid out over the recording by subtitles.
    [piece] = first.segments
    assert (piece.text, piece.start, piece.end) == ("Hello from the stand-in.", None, None)


def test_models_without_timestamps_are_asked_for_json_from_the_start(
    openai_standin: OpenAIStandIn, tone_file: Path
) -> None:
    transcribe(make(openai_standin, model="gpt-4o-mini-transcribe"), tone_file)
    assert "response_format" not in openai_standin.requests[0].form()
