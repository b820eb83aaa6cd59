"""The connection handler over random request heads, cut into random pieces: a well-formed head
within MAX_HEADER_BYTES always reaches the app, one byte more is 431 before it is buffered, a bare
LF or a folded line is 400, and a head that does not complete in HEADER_TIMEOUT_SECONDS closes the
connection. Each case runs the real protocol on a real socket pair; the pieces are handed to the
protocol one by one, as the event loop would after each read."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass

import uvicorn
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.types import Receive, Scope, Send

from batchscribe.config import Settings
from batchscribe.http.protocol import GuardedH11Protocol
from tests.strategies import chunkings, request_heads

LIMIT = 1024
CALLS: list[Scope] = []


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers 200 with the number of headers it received, and closes the connection unless
    the path is `/keep`."""
    CALLS.append(scope)
    body = json.dumps({"headers": len(scope["headers"])}).encode()
    headers = [] if scope["path"] == "/keep" else [(b"connection", b"close")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass
class Outcome:
    status: int | None  # None: closed without an answer
    body: bytes
    app_called: bool
    most_buffered: int  # the most bytes h11 held at once
    closed: bool  # the server closed the connection


def _protocol_class(header_timeout: float = 30.0) -> type[GuardedH11Protocol]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        max_header_bytes=LIMIT,
        header_timeout_seconds=header_timeout,
    )
    return GuardedH11Protocol.configured(settings)


async def _exchange(
    pieces: list[bytes], header_timeout: float = 30.0, wait: float = 0.0
) -> Outcome:
    config = uvicorn.Config(
        app, lifespan="off", log_config=None, h11_max_incomplete_event_size=LIMIT
    )
    state = uvicorn.server.ServerState()
    protocol_class = _protocol_class(header_timeout)
    loop = asyncio.get_running_loop()
    server_end, client_end = socket.socketpair()
    client_end.setblocking(False)
    CALLS.clear()
    transport, protocol = await loop.connect_accepted_socket(
        lambda: protocol_class(config=config, server_state=state, app_state={}), server_end
    )
    most_buffered = 0
    try:
        for piece in pieces:
            if transport.is_closing():
                break
            protocol.data_received(piece)
            most_buffered = max(most_buffered, len(protocol.conn.trailing_data[0]))
            await asyncio.sleep(0)
        await asyncio.sleep(wait)
        answer, closed = b"", False
        while True:
            try:
                chunk = await asyncio.wait_for(loop.sock_recv(client_end, 65536), 1.0)
            except TimeoutError:
                break
            if not chunk:
                closed = True
                break
            answer += chunk
    finally:
        transport.close()
        client_end.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split()[1]) if head else None
    return Outcome(status, body, bool(CALLS), most_buffered, closed)


def run(pieces: list[bytes], **kwargs: float) -> Outcome:
    return asyncio.run(_exchange(pieces, **kwargs))


SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(data=st.data(), head=request_heads())
def test_a_head_within_the_limit_reaches_the_app_and_one_past_it_is_431(
    data: st.DataObject, head: bytes
) -> None:
    pieces = data.draw(chunkings(head))
    outcome = run(pieces)
    event("within the limit" if len(head) <= LIMIT else "over the limit")
    if len(head) <= LIMIT:
        assert outcome.status == 200, outcome
        assert outcome.app_called
    else:
        assert outcome.status == 431, outcome
        assert json.loads(outcome.body)["error"]["code"] == "headers_too_large"
        assert not outcome.app_called
    # Refused before buffering: h11 never holds more of a head than the limit.
    assert outcome.most_buffered <= LIMIT


@SETTINGS
@given(data=st.data(), size=st.sampled_from([LIMIT - 1, LIMIT, LIMIT + 1]))
def test_the_limit_is_exact(data: st.DataObject, size: int) -> None:
    start = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: "
    head = start + b"p" * (size - len(start) - 4) + b"\r\n\r\n"
    assert len(head) == size
    outcome = run(data.draw(chunkings(head)))
    assert outcome.status == (200 if size <= LIMIT else 431)


@SETTINGS
@given(
    data=st.data(),
    head=request_heads(max_headers=8),
    breaker=st.sampled_from([b"\n", b"\r\n ", b"\r\n\t"]),
)
def test_a_bare_lf_or_a_folded_line_is_400(
    data: st.DataObject, head: bytes, breaker: bytes
) -> None:
    # Replace the CRLF that ends one of the head's lines (not the blank line) with `breaker`
    # followed by a header line.
    line_ends = [i for i in range(len(head) - 4) if head[i : i + 2] == b"\r\n"]
    at = data.draw(st.sampled_from(line_ends))
    broken = head[:at] + breaker + b"X-Injected: 1" + head[at:]
    outcome = run(data.draw(chunkings(broken)))
    assert outcome.status == 400, outcome
    assert json.loads(outcome.body)["error"]["code"] == "malformed_request"
    assert not outcome.app_called


def test_a_head_that_never_completes_is_closed_after_the_header_timeout() -> None:
    outcome = run([b"GET / HTTP/1.1\r\n", b"Host: x\r\n"], header_timeout=0.2, wait=0.6)
    assert outcome.closed
    assert outcome.status is None  # no answer: a client this slow would not read it
    assert not outcome.app_called


def test_a_complete_head_is_not_closed_by_the_header_timeout() -> None:
    outcome = run([b"GET /keep HTTP/1.1\r\nHost: x\r\n\r\n"], header_timeout=0.2, wait=0.6)
    assert outcome.status == 200
    assert not outcome.closed  # kept alive for the next request


def test_the_parser_own_refusals_answer_in_json() -> None:
    outcome = run([b"GET / HTTP/1.1\r\nHost: x\r\nX-User: a\x00b\r\n\r\n"])
    assert outcome.status == 400
    assert json.loads(outcome.body)["error"]["code"] == "malformed_request"


def test_bytes_after_a_request_that_cannot_start_another_are_refused_at_once() -> None:
    # A CR LF injected into a header value ends the head early; the rest is not a request.
    outcome = run([b"GET /keep HTTP/1.1\r\nX-User: a\r\n\r\nContent-Length: 5\r\n\r\nabcde"])
    assert outcome.status == 400
    assert json.loads(outcome.body)["error"]["code"] == "malformed_request"
    assert outcome.closed


def test_pipelined_requests_are_each_answered() -> None:
    one = b"GET /keep HTTP/1.1\r\nHost: x\r\n\r\n"
    outcome = run([one + one.replace(b"/keep", b"/last") + b"\r\n"])
    assert outcome.status == 200
    assert outcome.body.count(b"HTTP/1.1 200 OK") == 1  # the second answer follows the first
    assert outcome.closed  # the second one asked to close
