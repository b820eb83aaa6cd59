"""LLM cleaning through an OpenAI-compatible chat completions API (`CLEANER=openai`).

The model cleans the engine's utterances (a VAD utterance for sphinx, a sentence for Deepgram, a
segment for OpenAI-compatible servers), one `SPEAKER_<n>:` line each, so every utterance gets
its own cleaned text beside its times (`CleaningResult.segments`: what a subtitle cue shows),
exactly as with the rules cleaner; a turn of the cleaned transcript is its utterances' cleaned
texts joined by spaces. Utterances go through `split_long_lines` (at most 500 words a piece);
consecutive pieces are packed into chunks of at most 500 words, each piece its own line. Chunks
are cleaned concurrently (at most `OPENAI_MAX_CONCURRENCY` at once), each within
`OPENAI_TIMEOUT_SECONDS`, and joined back in order; pieces of one long utterance become one
text again. The model sees a whole chunk, so the context of neighbouring lines is there.

A model is never trusted blindly: a chunk whose request fails, times out, answers something
other than `{"cleaned_text": "..."}`, or changes, drops, adds or merges a speaker line keeps its
raw text, and the result is marked degraded with a reason. The request itself never fails
because of the cleaner.

Retries: 429, 5xx and connection failures of a chunk go through the hosted engines' one policy
(`batchscribe.pipeline.retry`, tenacity), not the SDK's `max_retries` (switched off): the SDK
would also retry a timeout, which here means the chunk's time (`OPENAI_TIMEOUT_SECONDS`, the
whole budget including waits) is spent, and it would wait by numbers of its own (a Retry-After
of up to two minutes). With the shared policy the transcribers and the cleaner retry alike, and
a chunk that exhausts its attempts falls back to its raw text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass

import openai

from batchscribe.config import Settings
from batchscribe.pipeline.openai_client import openai_client_options
from batchscribe.pipeline.retry import RetryableProblem, RetryPolicy, parse_retry_after
from batchscribe.pipeline.segments import DEFAULT_MAX_WORDS, split_long_lines
from batchscribe.pipeline.types import CleaningResult, Segment, Transcript

log = logging.getLogger(__name__)

SYSTEM_PROMPT = """\
You clean up speech-to-text transcripts of spoken conversations.

The user message is part of a transcript. Every line is one stretch of a speaker's talk and \
starts with a speaker label such as SPEAKER_0: or SPEAKER_1:. Consecutive lines may have the \
same label: they are still separate lines.

Clean each line:
- Remove disfluencies: filler words (um, uh, er, ah, hmm, mm-hmm, you know, I mean, like when \
used as filler), false starts, stutters and words repeated by accident.
- Fix capitalisation, punctuation and obvious transcription spacing.
- Never change the meaning. Never add, summarise, translate or reorder content. Keep names, \
numbers and technical terms exactly.

Structure rules, which you must never break:
- Answer with exactly as many lines as the input, in the same order.
- Each line starts with exactly the same speaker label as the matching input line, followed by \
a colon and a space.
- Never merge two lines, never split a line, never change or drop a label. A line that held \
only fillers becomes its label alone (for example SPEAKER_0:).

Answer only with a JSON object of the form {"cleaned_text": "<the cleaned lines joined by \\n>"}.\
"""

_LINE = re.compile(r"^SPEAKER_(\d+):(.*)$")


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Consecutive pieces sent in one request; `owners[i]` is the utterance piece `i` belongs
    to."""

    pieces: list[Segment]
    owners: list[int]

    @property
    def text(self) -> str:
        return "\n".join(piece.line() for piece in self.pieces)

    @property
    def words(self) -> int:
        return sum(len(piece.text.split()) for piece in self.pieces)


class _ChunkFailed(Exception):
    """One chunk could not be cleaned; `reason` is a short word for the response."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _chunks(utterances: list[Segment], max_words: int) -> list[_Chunk]:
    """Pieces of at most `max_words` words, packed in order into chunks of at most `max_words`."""
    chunks: list[_Chunk] = []
    pieces: list[Segment] = []
    owners: list[int] = []
    size = 0
    for index, utterance in enumerate(utterances):
        for piece in split_long_lines([Segment(utterance.speaker, utterance.text)], max_words):
            words = len(piece.text.split())
            if pieces and size + words > max_words:
                chunks.append(_Chunk(pieces, owners))
                pieces, owners, size = [], [], 0
            pieces.append(piece)
            owners.append(index)
            size += words
    if pieces:
        chunks.append(_Chunk(pieces, owners))
    return chunks


def parse_reply(content: str | None, expected: list[Segment]) -> list[str]:
    """The cleaned text of each expected line, or `_ChunkFailed` when the reply breaks the
    contract (not JSON, no `cleaned_text`, lines or labels that do not match)."""
    try:
        data = json.loads(content or "")
    except ValueError as exc:
        raise _ChunkFailed("invalid_json") from exc
    cleaned = data.get("cleaned_text") if isinstance(data, dict) else None
    if not isinstance(cleaned, str):
        raise _ChunkFailed("invalid_json")
    lines = [line.strip() for line in cleaned.splitlines() if line.strip()]
    if len(lines) != len(expected):
        raise _ChunkFailed("speaker_label_mismatch")
    texts: list[str] = []
    for line, piece in zip(lines, expected, strict=True):
        match = _LINE.match(line)
        if match is None or int(match.group(1)) != piece.speaker:
            raise _ChunkFailed("speaker_label_mismatch")
        texts.append(" ".join(match.group(2).split()))
    return texts


def _turns_text(segments: tuple[Segment, ...]) -> str:
    """`SPEAKER_<n>: text` lines: a speaker's consecutive utterances joined into one turn."""
    turns: list[tuple[int, list[str]]] = []
    for seg in segments:
        if turns and turns[-1][0] == seg.speaker:
            turns[-1][1].append(seg.text)
        else:
            turns.append((seg.speaker, [seg.text]))
    return "\n".join(
        Segment(speaker, " ".join(t for t in texts if t)).line().rstrip()
        for speaker, texts in turns
    )


class OpenAICleaner:
    """Cleans transcripts with a chat model; never raises for a model problem.

    `retry` governs retries of 429, 5xx and connection failures (2 retries by default); a
    timeout is not retried, since the chunk's time is up. `max_words` is the chunk size.
    """

    name = "openai"

    def __init__(
        self,
        settings: Settings,
        client: openai.AsyncOpenAI | None = None,
        *,
        retry: RetryPolicy | None = None,
        max_words: int = DEFAULT_MAX_WORDS,
    ) -> None:
        key = settings.openai_api_key
        if client is None and key is None:
            raise ValueError("CLEANER=openai needs OPENAI_API_KEY")
        self._model = settings.openai_model
        self._temperature = settings.openai_temperature
        self._timeout = settings.openai_timeout_seconds
        self._concurrency = settings.openai_max_concurrency
        self._owns_client = client is None
        self._client = (
            client if client is not None else openai.AsyncOpenAI(**openai_client_options(settings))
        )
        self._retry = retry or RetryPolicy()
        self._max_words = max_words

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            await self._client.close()

    async def clean(self, transcript: Transcript) -> CleaningResult:
        """Clean every chunk concurrently; failed chunks keep their raw text."""
        utterances = [seg for seg in transcript.utterances if seg.text.split()]
        if not utterances:
            return CleaningResult("", self.name, details={"chunks": 0})
        chunks = _chunks(utterances, self._max_words)
        limit = asyncio.Semaphore(self._concurrency)
        outcomes = await asyncio.gather(*(self._clean_chunk(chunk, limit) for chunk in chunks))

        cleaned: list[list[str]] = [[] for _ in utterances]
        failures: dict[str, int] = {}
        requests = 0
        for chunk, (texts, reason, sent) in zip(chunks, outcomes, strict=True):
            requests += sent
            if reason is not None:
                failures[reason] = failures.get(reason, 0) + 1
            for owner, text in zip(chunk.owners, texts, strict=True):
                cleaned[owner].append(text)
        segments = tuple(
            utterance.with_text(" ".join(t for t in parts if t))
            for utterance, parts in zip(utterances, cleaned, strict=True)
        )
        text = _turns_text(segments)
        failed = sum(failures.values())
        details = {"chunks": len(chunks), "failed_chunks": failed, "requests": requests}
        log.info("openai cleaning done", extra=details)
        if not failed:
            return CleaningResult(text, self.name, details=details, segments=segments)
        reason = (
            f"{failed} of {len(chunks)} chunks kept their raw text ("
            + ", ".join(f"{name}: {count}" for name, count in sorted(failures.items()))
            + ")"
        )
        return CleaningResult(text, self.name, True, reason, details, segments)

    async def _clean_chunk(
        self, chunk: _Chunk, limit: asyncio.Semaphore
    ) -> tuple[list[str], str | None, int]:
        """(texts, failure reason or None, requests sent). Falls back to the raw pieces."""
        sent = [0]
        async with limit:
            try:
                async with asyncio.timeout(self._timeout):
                    texts = await self._request_with_retries(chunk, sent)
                return texts, None, sent[0]
            except _ChunkFailed as exc:
                reason = exc.reason
            except TimeoutError:
                reason = "timeout"
        log.warning(
            "openai cleaning chunk kept raw text",
            extra={"reason": reason, "words": chunk.words, "requests": sent[0]},
        )
        return [piece.text for piece in chunk.pieces], reason, sent[0]

    async def _request_with_retries(self, chunk: _Chunk, sent: list[int]) -> list[str]:
        return await self._retry.call_async(
            lambda: self._request_once(chunk, sent),
            exhausted=lambda problem, attempts, retry_after: _ChunkFailed(problem),
            logger=log,
            message="openai cleaning retry",
        )

    async def _request_once(self, chunk: _Chunk, sent: list[int]) -> list[str]:
        """One request; overload answers and network failures raise `RetryableProblem`."""
        sent[0] += 1
        try:
            reply = await self._client.chat.completions.create(
                model=self._model,
                temperature=self._temperature,
                response_format={"type": "json_object"},
                messages=[
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": chunk.text},
                ],
                timeout=self._timeout,
            )
        except openai.RateLimitError as exc:
            raise RetryableProblem("rate_limited", parse_retry_after(exc.response.headers)) from exc
        except openai.InternalServerError as exc:
            raise RetryableProblem("server_error") from exc
        except openai.APITimeoutError as exc:
            raise _ChunkFailed("timeout") from exc
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise _ChunkFailed("api_key_refused") from exc
        except openai.APIConnectionError as exc:
            raise RetryableProblem("connection_error") from exc
        except openai.APIStatusError as exc:
            raise _ChunkFailed(f"http_{exc.status_code}") from exc
        except (openai.OpenAIError, ValueError) as exc:
            raise _ChunkFailed("invalid_response") from exc
        choices = getattr(reply, "choices", None) or []
        content = choices[0].message.content if choices else None
        return parse_reply(content, chunk.pieces)
