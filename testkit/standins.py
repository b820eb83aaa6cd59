"""Local HTTP stand-ins for the hosted APIs: Deepgram's pre-recorded API and OpenAI's
transcription and chat completion APIs, answering in their real JSON formats.

Each stand-in is a threaded `http.server` on a free loopback port. It records every request
(method, path, query, headers, body) and answers from a script: replies queued with `queue()`
are used first, in order, then the stand-in's normal behaviour. Failure modes are replies:
`Reply.error(401)`, `Reply.error(429, retry_after=1)`, `Reply.slow(5)`, `Reply.raw("not json")`.

    with DeepgramStandIn(words=deepgram_words([(0, "Hello there."), (1, "Hi.")])) as dg:
        settings = Settings(transcriber="deepgram", deepgram_api_key=dg.api_key,
                            deepgram_base_url=dg.base_url)
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the stand-in received it; header names are lower-cased."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, tuple[str | None, str | None, bytes]]:
        """A multipart/form-data body as {field: (filename, content type, value bytes)}."""
        raw = b"Content-Type: " + self.headers["content-type"].encode() + b"\r\n\r\n" + self.body
        message = BytesParser(policy=HTTP).parsebytes(raw)
        fields: dict[str, tuple[str | None, str | None, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            fields[str(name)] = (
                part.get_filename(),
                part.get_content_type() if part.get("content-type") else None,
                payload if isinstance(payload, bytes) else b"",
            )
        return fields


@dataclass(frozen=True)
class Reply:
    """A scripted answer: status, body, headers, and an optional delay before answering."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def json(cls, payload: Any, status: int = 200, **headers: str) -> Reply:
        return cls(
            status, json.dumps(payload).encode(), {"Content-Type": "application/json", **headers}
        )

    @classmethod
    def raw(cls, text: str, status: int = 200, content_type: str = "application/json") -> Reply:
        return cls(status, text.encode(), {"Content-Type": content_type})

    @classmethod
    def error(cls, status: int, retry_after: int | None = None) -> Reply:
        """An error in OpenAI's JSON error shape (Deepgram's `err_msg` is included too)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        payload = {
            "error": {"message": f"stand-in error {status}", "type": "stand_in", "code": None},
            "err_code": f"HTTP_{status}",
            "err_msg": f"stand-in error {status}",
        }
        return cls.json(payload, status, **headers)

    @classmethod
    def slow(cls, seconds: float) -> Reply:
        """Answer 200 only after `seconds` (or when the stand-in stops): a client timeout."""
        return cls(200, b"{}", {"Content-Type": "application/json"}, delay=seconds)


class StandIn:
    """A threaded HTTP server that records requests and answers from a script, then from
    `default(request)`. Use as a context manager, or `start()` / `stop()`."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        #: Seconds every unscripted reply waits before answering (to observe concurrency).
        self.reply_delay = 0.0
        #: The most requests that were being answered at the same moment.
        self.peak_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._script: dict[str, deque[Reply]] = {}
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting ---------------------------------------------------------------------------

    def queue(self, path: str, *replies: Reply) -> None:
        """Answer the next requests to `path` with `replies`, in order."""
        with self._lock:
            self._script.setdefault(path, deque()).extend(replies)

    def reset(self) -> None:
        """Forget recorded requests and queued replies (to share one stand-in between tests)."""
        with self._lock:
            self.requests.clear()
            self._script.clear()
            self.peak_in_flight = 0
        self.reply_delay = 0.0

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def default(self, request: RecordedRequest) -> Reply:
        return Reply.error(404)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

            def do_GET(self) -> None:
                standin._handle(self)

            do_POST = do_GET

        server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wake slow replies
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- request handling --------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        body = _read_body(handler, headers)
        request = RecordedRequest(handler.command, split.path, parse_qs(split.query), headers, body)
        with self._lock:
            self.requests.append(request)
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            script = self._script.get(split.path)
            reply = script.popleft() if script else None
        try:
            if reply is None:
                reply = self.default(request)
                if self.reply_delay:
                    self._stopping.wait(self.reply_delay)
            if reply.delay:
                self._stopping.wait(reply.delay)
            handler.send_response(reply.status)
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(reply.body)))
            handler.end_headers()
            handler.wfile.write(reply.body)
        except (ConnectionError, OSError):
            pass  # the client gave up (a timeout test); nothing to answer
        finally:
            with self._lock:
                self._in_flight -= 1


class _QuietServer(ThreadingHTTPServer):
    """Handler threads never block shutdown; clients that hang up are not an error."""

    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def _read_body(handler: BaseHTTPRequestHandler, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(parts)
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(headers.get("content-length") or 0)
    return handler.rfile.read(length) if length else b""


# -- Deepgram ------------------------------------------------------------------------------


def deepgram_words(turns: Iterable[tuple[int, str]]) -> list[dict[str, Any]]:
    """Deepgram word objects for `(speaker, "Smart formatted text.")` turns: `word` is the
    lower-cased bare word, `punctuated_word` the text as written, with made-up timings."""
    words: list[dict[str, Any]] = []
    clock = 0.0
    for speaker, text in turns:
        for shown in text.split():
            bare = shown.strip(".,?!;:\"'").lower() or shown
            words.append(
                {
                    "word": bare,
                    "start": round(clock, 2),
                    "end": round(clock + 0.3, 2),
                    "confidence": 0.98,
                    "speaker": speaker,
                    "speaker_confidence": 0.9,
                    "punctuated_word": shown,
                }
            )
            clock += 0.35
    return words


def deepgram_response(words: list[dict[str, Any]]) -> dict[str, Any]:
    """A pre-recorded API answer in Deepgram's format with these words."""
    transcript = " ".join(str(w.get("punctuated_word") or w["word"]) for w in words)
    duration = words[-1]["end"] if words else 0.0
    return {
        "metadata": {
            "transaction_key": "deprecated",
            "request_id": str(uuid.uuid4()),
            "sha256": "0" * 64,
            "created": "2026-01-01T00:00:00.000Z",
            "duration": duration,
            "channels": 1,
            "models": [str(uuid.uuid4())],
            "model_info": {},
        },
        "results": {
            "channels": [
                {"alternatives": [{"transcript": transcript, "confidence": 0.97, "words": words}]}
            ]
        },
    }


class DeepgramStandIn(StandIn):
    """`POST /v1/listen` like Deepgram: 401 for a wrong `Token`, else the configured words."""

    path = "/v1/listen"

    def __init__(
        self, words: list[dict[str, Any]] | None = None, api_key: str = "dg-test-key"
    ) -> None:
        super().__init__()
        self.words = (
            words if words is not None else deepgram_words([(0, "Hello there."), (1, "Hi!")])
        )
        self.api_key = api_key

    @property
    def base_url(self) -> str:
        return self.url

    def default(self, request: RecordedRequest) -> Reply:
        if request.path != self.path or request.method != "POST":
            return Reply.error(404)
        if request.headers.get("authorization") != f"Token {self.api_key}":
            return Reply.json(
                {"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials.", "request_id": "x"},
                401,
            )
        return Reply.json(deepgram_response(self.words))


# -- OpenAI ---------------------------------------------------------------------------------


def strip_fillers(text: str) -> str:
    """The stand-in 'model': drops um/uh fillers from every line, keeping labels."""
    fillers = {"um", "uh", "um,", "uh,"}
    out = []
    for line in text.splitlines():
        label, _, rest = line.partition(": ")
        kept = [w for w in rest.split() if w.lower() not in fillers]
        out.append(f"{label}: {' '.join(kept)}")
    return "\n".join(out)


def chat_completion(content: str, model: str) -> dict[str, Any]:
    """A chat completion answer in OpenAI's format."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": 1767225600,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


def verbose_transcription(text: str, language: str = "english") -> dict[str, Any]:
    """OpenAI's `verbose_json` answer for `text`: one segment per sentence and every word,
    with made-up times (0.35 s a word) and Whisper's full language name."""
    words: list[dict[str, Any]] = []
    segments: list[dict[str, Any]] = []
    clock = 0.0
    sentence: list[str] = []
    sentence_start = 0.0
    for shown in text.split():
        if not sentence:
            sentence_start = clock
        words.append({"word": shown.strip(".,?!"), "start": round(clock, 2),
                      "end": round(clock + 0.3, 2)})  # fmt: skip
        sentence.append(shown)
        clock += 0.35
        if shown.endswith((".", "?", "!")):
            segments.append(_verbose_segment(len(segments), sentence, sentence_start, clock))
            sentence = []
    if sentence:
        segments.append(_verbose_segment(len(segments), sentence, sentence_start, clock))
    return {
        "task": "transcribe",
        "language": language,
        "duration": round(clock, 2),
        "text": text,
        "segments": segments,
        "words": words,
        "usage": {"type": "duration", "seconds": max(1, round(clock))},
    }


def _verbose_segment(index: int, words: list[str], start: float, end: float) -> dict[str, Any]:
    return {
        "id": index,
        "seek": 0,
        "start": round(start, 2),
        "end": round(end - 0.05, 2),
        "text": " " + " ".join(words),
        "tokens": [50364],
        "temperature": 0.0,
        "avg_logprob": -0.2,
        "compression_ratio": 1.2,
        "no_speech_prob": 0.01,
    }


class OpenAIStandIn(StandIn):
    """`/v1/audio/transcriptions` and `/v1/chat/completions` like OpenAI.

    A wrong `Bearer` key gets 401. Transcription answers `{"text": transcription_text}`, or with
    `response_format=verbose_json` OpenAI's verbose answer (`verbose_transcription`); set
    `verbose_supported = False` to answer that with a 400, as OpenAI does for models without
    timestamps. Chat
    answers `{"cleaned_text": clean(user message)}` as the assistant content; set `clean` to
    change how the stand-in model rewrites text, or `chat_content` to return any content at all
    (invalid JSON, a dropped label).
    """

    transcription_path = "/v1/audio/transcriptions"
    chat_path = "/v1/chat/completions"

    def __init__(
        self, api_key: str = "sk-test-key", transcription_text: str = "Hello from the stand-in."
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.transcription_text = transcription_text
        self.verbose_supported = True
        self.clean: Callable[[str], str] = strip_fillers
        self.chat_content: Callable[[str], str] | None = None

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @staticmethod
    def user_message(request: RecordedRequest) -> str:
        messages = request.json()["messages"]
        return str(next(m["content"] for m in reversed(messages) if m["role"] == "user"))

    def default(self, request: RecordedRequest) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Reply.json(
                {
                    "error": {
                        "message": "Incorrect API key provided.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
                401,
            )
        if request.path == self.transcription_path:
            form = request.form()
            wanted = form.get("response_format", (None, None, b"json"))[2].decode()
            if wanted == "verbose_json":
                if not self.verbose_supported:
                    return Reply.json(
                        {
                            "error": {
                                "message": "response_format 'verbose_json' is not compatible "
                                "with this model. Use 'json' or 'text' instead.",
                                "type": "invalid_request_error",
                                "param": "response_format",
                                "code": "unsupported_value",
                            }
                        },
                        400,
                    )
                return Reply.json(verbose_transcription(self.transcription_text))
            return Reply.json({"text": self.transcription_text})
        if request.path == self.chat_path:
            text = self.user_message(request)
            if self.chat_content is not None:
                content = self.chat_content(text)
            else:
                content = json.dumps({"cleaned_text": self.clean(text)})
            return Reply.json(chat_completion(content, request.json()["model"]))
        return Reply.error(404)
