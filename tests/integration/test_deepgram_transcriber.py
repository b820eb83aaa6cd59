"""DeepgramTranscriber against a local server answering like Deepgram's pre-recorded API."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from batchscribe.config import Settings
from batchscribe.logging_setup import JsonFormatter
from batchscribe.pipeline.audio import probe_audio
from batchscribe.pipeline.exceptions import EngineUnavailableError, TranscriptionError
from batchscribe.pipeline.render import to_srt
from batchscribe.pipeline.retry import RetryPolicy
from batchscribe.pipeline.transcribers import build_transcriber
from batchscribe.pipeline.transcribers.base import Control
from batchscribe.pipeline.transcribers.deepgram import DeepgramTranscriber
from batchscribe.pipeline.types import CleaningResult, Transcript
from testkit.standins import DeepgramStandIn, Reply, deepgram_response, deepgram_words
from tests.support.fixtures import write_tone

LISTEN = "/v1/listen"


#: The production policy's shape (2 retries, exponential, Retry-After up to a cap), in milliseconds.
FAST = RetryPolicy(first_delay=0.001, max_delay=0.05)


def make(
    standin: DeepgramStandIn,
    *,
    key: str | None = None,
    base_url: str | None = None,
    timeout: float = 120,
    retry: RetryPolicy = FAST,
) -> DeepgramTranscriber:
    """The engine pointed at `standin`, retrying with tiny delays."""
    settings = Settings(
        transcriber="deepgram",
        deepgram_api_key=key or standin.api_key,
        deepgram_base_url=base_url or standin.base_url,
        deepgram_timeout_seconds=timeout,
    )
    return DeepgramTranscriber(settings, retry=retry)


def transcribe(engine: DeepgramTranscriber, path: Path) -> str:
    try:
        output = engine.transcribe(path, probe_audio(path))
    finally:
        engine.close()
    return Transcript.from_engine(output.segments, 1.0, engine.name).raw_text


def test_sends_the_audio_as_deepgram_expects_and_returns_diarized_turns(
    deepgram_standin: DeepgramStandIn, tone_file: Path
) -> None:
    deepgram_standin.words = deepgram_words(
        [(1, "Hello, how are you?"), (0, "Fine, thanks."), (1, "Great.")]
    )
    raw = transcribe(make(deepgram_standin), tone_file)

    assert raw == "SPEAKER_0: Hello, how are you?\nSPEAKER_1: Fine, thanks.\nSPEAKER_0: Great."
    [request] = deepgram_standin.requests
    assert request.method == "POST"
    assert request.path == LISTEN
    assert request.query == {
        "model": ["nova-3"],
        "diarize": ["true"],
        "smart_format": ["true"],
    }
    assert request.headers["authorization"] == "Token dg-test-key"
    assert request.headers["content-type"] == "audio/wav"
    assert request.body == tone_file.read_bytes()
    assert request.headers["content-length"] == str(tone_file.stat().st_size)


def test_words_keep_their_times_and_confidence_in_sentence_pieces(
    deepgram_standin: DeepgramStandIn, tmp_path: Path
) -> None:
    deepgram_standin.words = deepgram_words(
        [(1, "Hello, how are you? I am here."), (0, "Fine, thanks.")]
    )
    audio = write_tone(tmp_path / "four-seconds.wav", seconds=4)
    engine = make(deepgram_standin)
    try:
        output = engine.transcribe(audio, probe_audio(audio))
    finally:
        engine.close()

    # A piece is one speaker's sentence, timed from its first word to its last.
    assert [(p.speaker, p.text, p.start, p.end) for p in output.segments] == [
        (1, "Hello, how are you?", 0.0, 1.35),
        (1, "I am here.", 1.4, 2.4),
        (0, "Fine, thanks.", 2.45, 3.1),
    ]
    first = output.segments[0].words[0]
    assert (first.text, first.start, first.end, first.confidence) == ("Hello,", 0.0, 0.3, 0.98)
    assert output.language == "en"  # Deepgram's default when no language is named
    transcript = Transcript.from_engine(output.segments, 4.0, "deepgram", output.language)
    # The raw transcript still shows one line per speaker turn.
    assert (
        transcript.raw_text == "SPEAKER_0: Hello, how are you? I am here.\nSPEAKER_1: Fine, thanks."
    )
    srt = to_srt(transcript, CleaningResult(transcript.raw_text, "none"))
    assert "00:00:01,400 --> 00:00:02,400\nSPEAKER_0: I am here." in srt


def test_model_and_the_jobs_language_are_sent(
    deepgram_standin: DeepgramStandIn, tone_file: Path
) -> None:
    settings = Settings(
        transcriber="deepgram",
        deepgram_api_key=deepgram_standin.api_key,
        deepgram_base_url=deepgram_standin.base_url,
        deepgram_model="nova-2",
    )
    engine = DeepgramTranscriber(settings, retry=FAST)
    try:
        output = engine.transcribe(tone_file, probe_audio(tone_file), Control(language="pt-BR"))
    finally:
        engine.close()
    [request] = deepgram_standin.requests
    assert request.query["model"] == ["nova-2"]
    assert request.query["language"] == ["pt-BR"]
    assert output.language == "pt-BR"


def test_times_out_of_order_are_made_monotonic(
    deepgram_standin: DeepgramStandIn, tone_file: Path
) -> None:
    words = deepgram_words([(0, "One two three.")])
    words[1]["start"], words[1]["end"] = 0.1, 0.05  # starts before its predecessor, ends earlier
    deepgram_standin.words = words
    engine = make(deepgram_standin)
    try:
        [piece] = engine.transcribe(tone_file, probe_audio(tone_file)).segments
    finally:
        engine.close()
    starts = [w.start for w in piece.words]
    assert starts == sorted(starts)
    assert all(w.end >= w.start for w in piece.words)
    # The stand-in's third word ends at 1.0 s; the recording is one second long.
    assert max(w.end for w in piece.words) <= 1.0


def test_content_type_is_the_files_real_format_not_its_name(
    deepgram_standin: DeepgramStandIn, tmp_path: Path
) -> None:
    mp3 = write_tone(tmp_path / "recording.wav", fmt="mp3")  # misleading extension
    transcribe(make(deepgram_standin), mp3)
    assert deepgram_standin.requests[0].headers["content-type"] == "audio/mpeg"


def test_built_from_settings_by_the_engine_factory(
    deepgram_standin: DeepgramStandIn, tone_file: Path
) -> None:
    settings = Settings(
        transcriber="deepgram",
        deepgram_api_key=deepgram_standin.api_key,
        deepgram_base_url=deepgram_standin.base_url + "/",
    )
    engine = build_transcriber(settings)
    assert isinstance(engine, DeepgramTranscriber)
    assert transcribe(engine, tone_file) == "SPEAKER_0: Hello there.\nSPEAKER_1: Hi!"
    assert deepgram_standin.requests[0].path == LISTEN


def test_wrong_key_is_a_503_naming_the_variable_without_retry(
    deepgram_standin: DeepgramStandIn, tone_file: Path
) -> None:
    engine = make(deepgram_standin, key="wrong-key-123")
    with pytest.raises(EngineUnavailableError, match="DEEPGRAM_API_KEY") as info:
        transcribe(engine, tone_file)
    assert "wrong-key-123" not in str(info.value)
    assert len(deepgram_standin.requests) == 1


def test_rate_limit_then_success_is_retried_once(
    deepgram_standin: DeepgramStandIn, tone_file: Path
) -> None:
    deepgram_standin.queue(LISTEN, Reply.error(429))
    raw = transcribe(make(deepgram_standin), tone_file)
    assert raw == "SPEAKER_0: Hello there.\nSPEAKER_1: Hi!"
    assert len(deepgram_standin.requests) == 2
    # The retry sent the whole file again.
    assert deepgram_standin.requests[1].body == tone_file.read_bytes()


def test_persistent_server_error_is_retried_twice_then_503_with_retry_after(
    deepgram_standin: DeepgramStandIn, tone_file: Path
) -> None:
    deepgram_standin.queue(LISTEN, *[Reply.error(500, retry_after=7)] * 3)
    with pytest.raises(EngineUnavailableError, match="HTTP 500 after 3 attempts") as info:
        transcribe(make(deepgram_standin), tone_file)
    assert info.value.retry_after == 7  # the server's own hint is passed on to the client
    assert len(deepgram_standin.requests) == 3


def test_retry_after_is_honoured_up_to_the_cap(
    deepgram_standin: DeepgramStandIn, tone_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    deepgram_standin.queue(LISTEN, Reply.error(429, retry_after=1), Reply.error(503))
    caplog.set_level(logging.WARNING, logger="batchscribe")
    transcribe(make(deepgram_standin), tone_file)
    delays = [r.delay_s for r in caplog.records if r.getMessage() == "deepgram retry"]
    assert delays[0] == FAST.max_delay  # asked for 1 s: waited as long as the cap allows
    assert delays[1] < FAST.max_delay  # no Retry-After: the exponential backoff alone
    assert len(deepgram_standin.requests) == 3


def test_timeout_is_retried_twice_then_503(
    deepgram_standin: DeepgramStandIn, tone_file: Path
) -> None:
    deepgram_standin.queue(LISTEN, *[Reply.slow(30)] * 3)
    engine = make(deepgram_standin, timeout=0.3)
    with pytest.raises(EngineUnavailableError, match="timeout after 3 attempts") as info:
        transcribe(engine, tone_file)
    assert len(deepgram_standin.requests) == 3
    assert info.value.retry_after == 60  # no hint from the server: "try again in a minute"


def test_unreachable_server_is_a_503(tone_file: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    standin = DeepgramStandIn()  # only for its key; nothing listens on `port`
    engine = make(standin, base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(EngineUnavailableError, match="connection error"):
        transcribe(engine, tone_file)


def test_refused_audio_is_a_transcription_error_with_deepgrams_reason(
    deepgram_standin: DeepgramStandIn, tone_file: Path
) -> None:
    deepgram_standin.queue(LISTEN, Reply.error(400))
    with pytest.raises(TranscriptionError, match="HTTP 400: stand-in error 400") as info:
        transcribe(make(deepgram_standin), tone_file)
    assert not isinstance(info.value, EngineUnavailableError)
    assert len(deepgram_standin.requests) == 1


@pytest.mark.parametrize(
    "payload",
    [deepgram_response([]), {"metadata": {}, "results": {"channels": []}}, {}],
    ids=["no-words", "no-channels", "empty-object"],
)
def test_answer_without_words_is_an_empty_transcript(
    deepgram_standin: DeepgramStandIn, tone_file: Path, payload: object
) -> None:
    deepgram_standin.queue(LISTEN, Reply.json(payload))
    assert transcribe(make(deepgram_standin), tone_file) == ""


def test_answer_that_is_not_json_is_a_transcription_error(
    deepgram_standin: DeepgramStandIn, tone_file: Path
) -> None:
    deepgram_standin.queue(LISTEN, Reply.raw("<html>proxy error</html>", content_type="text/html"))
    with pytest.raises(TranscriptionError, match="JSON"):
        transcribe(make(deepgram_standin), tone_file)


def test_logs_carry_counts_never_words_or_key(
    deepgram_standin: DeepgramStandIn, tone_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    deepgram_standin.words = deepgram_words([(0, "Zanzibarquux acquisition confirmed.")])
    deepgram_standin.queue(LISTEN, Reply.error(503))
    caplog.set_level(logging.DEBUG, logger="batchscribe")
    assert "Zanzibarquux" in transcribe(make(deepgram_standin), tone_file)

    lines = [JsonFormatter().format(record) for record in caplog.records]
    assert any('"words": 3' in line for line in lines)
    assert any("deepgram retry" in line for line in lines)
    for line in lines:
        assert "Zanzibarquux" not in line
        assert deepgram_standin.api_key not in line
