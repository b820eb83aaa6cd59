"""OpenAICleaner against a local server answering like OpenAI's chat completions API."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from batchscribe.config import Settings
from batchscribe.logging_setup import JsonFormatter
from batchscribe.pipeline.cleaners import build_cleaner
from batchscribe.pipeline.cleaners.openai import SYSTEM_PROMPT, OpenAICleaner
from batchscribe.pipeline.render import cues
from batchscribe.pipeline.retry import RetryPolicy
from batchscribe.pipeline.types import CleaningResult, Segment, Transcript, Word
from testkit.standins import OpenAIStandIn, Reply

CHAT = "/v1/chat/completions"
RAW = [
    Segment(3, "Um, so the, uh, budget is approved."),
    Segment(7, "Uh great, thanks."),
    Segment(3, "Um let's ship it."),
]
CLEANED = (
    "SPEAKER_0: so the, budget is approved.\nSPEAKER_1: great, thanks.\nSPEAKER_0: let's ship it."
)


#: The production policy's shape (2 retries, exponential, Retry-After up to a cap), in milliseconds.
FAST = RetryPolicy(first_delay=0.001, max_delay=0.05)


def make(
    standin: OpenAIStandIn,
    *,
    key: str | None = None,
    max_words: int = 500,
    **settings: object,
) -> OpenAICleaner:
    """The cleaner pointed at `standin`, retrying with tiny delays."""
    config = Settings(
        cleaner="openai",
        openai_api_key=key or standin.api_key,
        openai_base_url=standin.base_url,
        **settings,  # type: ignore[arg-type]
    )
    return OpenAICleaner(config, retry=FAST, max_words=max_words)


def clean(cleaner: OpenAICleaner, segments: list[Segment]) -> CleaningResult:
    async def run() -> CleaningResult:
        try:
            return await cleaner.clean(Transcript.from_engine(segments, 1.0, "test"))
        finally:
            await cleaner.aclose()

    return asyncio.run(run())


def raw_text(segments: list[Segment]) -> str:
    return Transcript.from_engine(segments, 1.0, "test").raw_text


def test_cleans_through_chat_completions_with_json_answers(openai_standin: OpenAIStandIn) -> None:
    result = clean(make(openai_standin), RAW)

    assert result.text == CLEANED
    assert result.as_response() == {"engine": "openai", "degraded": False}
    [request] = openai_standin.requests
    assert (request.method, request.path) == ("POST", CHAT)
    assert request.headers["authorization"] == "Bearer sk-test-key"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert body["model"] == "gpt-4o"
    assert body["temperature"] == 0.0
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"] == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": raw_text(RAW)},
    ]


def test_system_prompt_asks_for_labels_kept_turns_unmerged_and_json() -> None:
    assert "SPEAKER_0:" in SYSTEM_PROMPT
    assert "Never merge two lines" in SYSTEM_PROMPT
    assert "disfluencies" in SYSTEM_PROMPT
    assert '{"cleaned_text"' in SYSTEM_PROMPT


def test_model_and_temperature_follow_settings(openai_standin: OpenAIStandIn) -> None:
    clean(make(openai_standin, openai_model="llama-3.3-70b", openai_temperature=0.3), RAW)
    body = openai_standin.requests[0].json()
    assert (body["model"], body["temperature"]) == ("llama-3.3-70b", 0.3)


def test_built_from_settings_by_the_cleaner_factory(openai_standin: OpenAIStandIn) -> None:
    settings = Settings(
        cleaner="openai",
        openai_api_key=openai_standin.api_key,
        openai_base_url=openai_standin.base_url,
    )
    cleaner = build_cleaner(settings)
    assert isinstance(cleaner, OpenAICleaner)
    assert clean(cleaner, RAW).text == CLEANED


def test_a_1500_word_turn_is_cleaned_in_chunks_of_at_most_500_words_in_order(
    openai_standin: OpenAIStandIn,
) -> None:
    sentences = [f"Um point {i} is w{i}a w{i}b w{i}c w{i}d w{i}e w{i}f." for i in range(150)]
    turn = Segment(0, " ".join(sentences))
    assert len(turn.text.split()) == 1500
    result = clean(make(openai_standin), [turn])

    chats = openai_standin.requests_to(CHAT)
    assert len(chats) >= 3
    sent = [OpenAIStandIn.user_message(r) for r in chats]
    for message in sent:
        assert message.startswith("SPEAKER_0: ")
        assert len(message.removeprefix("SPEAKER_0: ").split()) <= 500
    # Every word went out exactly once, in pieces cut at sentence ends.
    pieces = sorted((m.removeprefix("SPEAKER_0: ") for m in sent), key=lambda m: int(m.split()[2]))
    assert " ".join(pieces) == turn.text
    assert all(piece.endswith(".") for piece in pieces)
    # The cleaned turn is one line, in the original order, fillers gone.
    expected = " ".join(w for w in turn.text.split() if w != "Um")
    assert result.text == f"SPEAKER_0: {expected}"
    assert not result.degraded


def test_chunks_run_concurrently_within_the_limit(openai_standin: OpenAIStandIn) -> None:
    openai_standin.reply_delay = 0.2
    turns = [Segment(i % 2, f"Sentence number {i} is here.") for i in range(8)]
    result = clean(make(openai_standin, max_words=5, openai_max_concurrency=2), turns)

    assert len(openai_standin.requests) == 8
    assert 1 < openai_standin.peak_in_flight <= 2
    assert result.text == raw_text(turns)  # nothing to clean; order kept across chunks


def test_wrong_key_keeps_raw_text_marked_degraded(openai_standin: OpenAIStandIn) -> None:
    result = clean(make(openai_standin, key="sk-wrong-999"), RAW)
    assert result.text == raw_text(RAW)
    assert result.degraded
    assert result.reason is not None
    assert "api_key_refused" in result.reason
    assert "sk-wrong-999" not in result.reason
    assert len(openai_standin.requests) == 1


def test_rate_limit_then_success_is_retried_once(openai_standin: OpenAIStandIn) -> None:
    openai_standin.queue(CHAT, Reply.error(429))
    result = clean(make(openai_standin), RAW)
    assert result.text == CLEANED
    assert not result.degraded
    assert len(openai_standin.requests) == 2
    assert result.details["requests"] == 2


def test_retry_after_is_honoured_up_to_the_cap(
    openai_standin: OpenAIStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    openai_standin.queue(CHAT, Reply.error(429, retry_after=1), Reply.error(500))
    caplog.set_level(logging.WARNING, logger="batchscribe")
    assert clean(make(openai_standin), RAW).text == CLEANED
    delays = [r.delay_s for r in caplog.records if r.getMessage() == "openai cleaning retry"]
    assert delays[0] == FAST.max_delay  # asked for 1 s: waited as long as the cap allows
    assert delays[1] < FAST.max_delay  # no Retry-After: the exponential backoff alone
    assert len(openai_standin.requests) == 3


def test_persistent_server_error_is_retried_twice_then_raw_text(
    openai_standin: OpenAIStandIn,
) -> None:
    openai_standin.queue(CHAT, *[Reply.error(500)] * 3)
    result = clean(make(openai_standin), RAW)
    assert len(openai_standin.requests) == 3
    assert result.text == raw_text(RAW)
    assert result.as_response() == {
        "engine": "openai",
        "degraded": True,
        "reason": "1 of 1 chunks kept their raw text (server_error: 1)",
    }


def test_timeout_keeps_raw_text_without_retry(openai_standin: OpenAIStandIn) -> None:
    openai_standin.queue(CHAT, Reply.slow(30))
    result = clean(make(openai_standin, openai_timeout_seconds=0.3), RAW)
    assert len(openai_standin.requests) == 1
    assert result.text == raw_text(RAW)
    assert result.degraded
    assert result.reason is not None
    assert "timeout" in result.reason


@pytest.mark.parametrize(
    "content",
    [
        "Sure! Here is the cleaned transcript: ...",
        json.dumps({"text": "SPEAKER_0: fine"}),
        json.dumps(["SPEAKER_0: fine"]),
    ],
    ids=["prose", "wrong-key", "not-an-object"],
)
def test_invalid_json_from_the_model_keeps_raw_text(
    openai_standin: OpenAIStandIn, content: str
) -> None:
    openai_standin.chat_content = lambda _text: content
    result = clean(make(openai_standin), RAW)
    assert len(openai_standin.requests) == 1
    assert result.text == raw_text(RAW)
    assert result.reason == "1 of 1 chunks kept their raw text (invalid_json: 1)"


@pytest.mark.parametrize(
    "rewrite",
    [
        lambda t: t.replace("SPEAKER_1: ", "", 1),  # dropped label (line kept)
        lambda t: "\n".join(
            line for line in t.splitlines() if "SPEAKER_1" not in line
        ),  # dropped turn
        lambda t: t.replace("SPEAKER_1", "SPEAKER_2"),  # changed label
        lambda t: t.replace("\nSPEAKER_1: ", " "),  # merged turns
    ],
    ids=["dropped-label", "dropped-turn", "changed-label", "merged-turns"],
)
def test_reply_that_breaks_speaker_labels_keeps_raw_text(
    openai_standin: OpenAIStandIn, rewrite: object
) -> None:
    assert callable(rewrite)
    openai_standin.chat_content = lambda text: json.dumps({"cleaned_text": rewrite(text)})
    result = clean(make(openai_standin), RAW)
    assert result.text == raw_text(RAW)
    assert result.reason == "1 of 1 chunks kept their raw text (speaker_label_mismatch: 1)"


def test_only_the_failed_chunk_falls_back(openai_standin: OpenAIStandIn) -> None:
    turns = [
        Segment(0, "Um first part."),
        Segment(1, "Uh BROKEN part."),
        Segment(0, "Um last part."),
    ]

    def content(text: str) -> str:
        if "BROKEN" in text:
            return "{oops"
        return json.dumps({"cleaned_text": text.replace("Um ", "")})

    openai_standin.chat_content = content
    result = clean(make(openai_standin, max_words=3), turns)
    assert len(openai_standin.requests) == 3
    assert (
        result.text == "SPEAKER_0: first part.\nSPEAKER_1: Uh BROKEN part.\nSPEAKER_0: last part."
    )
    assert result.reason == "1 of 3 chunks kept their raw text (invalid_json: 1)"
    assert result.details == {"chunks": 3, "failed_chunks": 1, "requests": 3}


def test_empty_transcript_sends_nothing(openai_standin: OpenAIStandIn) -> None:
    result = clean(make(openai_standin), [])
    assert result.text == ""
    assert not result.degraded
    assert openai_standin.requests == []


def test_logs_carry_counts_never_text_or_key(
    openai_standin: OpenAIStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    secret_words = [
        Segment(0, "Zanzibarquux confidential merger."),
        Segment(1, "Xylophonic reply."),
    ]
    openai_standin.queue(CHAT, Reply.error(500), Reply.error(500), Reply.error(500))
    caplog.set_level(logging.DEBUG, logger="batchscribe")
    result = clean(make(openai_standin), secret_words)
    assert result.degraded

    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert any("kept raw text" in line for line in lines)
    for line in lines:
        assert "Zanzibarquux" not in line
        assert "Xylophonic" not in line
        assert openai_standin.api_key not in line


def test_standin_reset_forgets_requests_and_scripted_failures(
    openai_standin: OpenAIStandIn,
) -> None:
    clean(make(openai_standin), RAW)
    openai_standin.queue(CHAT, *[Reply.error(500)] * 3)
    openai_standin.reset()
    assert openai_standin.requests == []
    assert clean(make(openai_standin), RAW).text == CLEANED
    assert len(openai_standin.requests) == 1


def test_every_utterance_gets_its_cleaned_text_beside_its_times_so_subtitles_show_it(
    openai_standin: OpenAIStandIn,
) -> None:
    utterances = [
        Segment(0, "um so the budget", 0.5, 1.8, (Word("um", 0.5, 0.7), Word("so", 0.7, 0.9))),
        Segment(0, "uh is approved", 2.4, 3.5),
        Segment(1, "um", 4.0, 4.3),
        Segment(1, "great thanks", 4.6, 5.4),
    ]
    transcript = Transcript.from_engine(utterances, 6.0, "sphinx", "en")
    cleaner = make(openai_standin)

    async def run() -> CleaningResult:
        try:
            return await cleaner.clean(transcript)
        finally:
            await cleaner.aclose()

    result = asyncio.run(run())

    # One line per utterance went to the model, consecutive lines of one speaker kept apart.
    [request] = openai_standin.requests_to(CHAT)
    assert OpenAIStandIn.user_message(request).splitlines() == [
        "SPEAKER_0: um so the budget",
        "SPEAKER_0: uh is approved",
        "SPEAKER_1: um",
        "SPEAKER_1: great thanks",
    ]
    assert [(s.speaker, s.text, s.start, s.end) for s in result.segments] == [
        (0, "so the budget", 0.5, 1.8),
        (0, "is approved", 2.4, 3.5),
        (1, "", 4.0, 4.3),
        (1, "great thanks", 4.6, 5.4),
    ]
    assert result.segments[0].words == utterances[0].words  # the engine's words, as heard
    assert result.text == "SPEAKER_0: so the budget is approved\nSPEAKER_1: great thanks"
    # A cue per utterance with cleaned text; the one that held only a filler has none.
    assert [(c.start_ms, c.text) for c in cues(transcript, result)] == [
        (500, "so the budget"),
        (2400, "is approved"),
        (4600, "great thanks"),
    ]
