"""The HTTP/1.1 connection handler: uvicorn's h11 protocol with header limits and JSON errors.

What uvicorn 0.54 does, and what it does not:
- Its default parser, httptools, has no limit on the size or number of request headers: it
  buffers a header value until the value ends (one 150 MB header grew the process from 99 MB
  to 393 MB). The h11 implementation bounds what it buffers of an incomplete request head with
  the public option `h11_max_incomplete_event_size`, so `batchscribe serve` runs `http=` this h11
  subclass with that option set to MAX_HEADER_BYTES. Neither parser limits the number of
  headers; the byte limit bounds it (a header line takes at least 4 bytes).
- `timeout_keep_alive` closes a connection idle *between* requests, but the first byte of a
  request cancels it, and nothing bounds a fresh connection or a request head sent one byte at a
  time. There is no header timeout, and no body timeout at all.
- `limit_concurrency` counts every connection and task, answers a plain-text 503 to all of them
  (`/healthz` included) and cannot tell an upload from a probe, so it is not used: uploads are
  counted by the upload reader (MAX_CONCURRENT_UPLOADS, http/upload.py), which also holds the
  body timeouts and the body size limit.
- A request its parser refuses gets a plain-text 400 from uvicorn; no public option changes it.

What this subclass adds, each at the protocol level because no request reaches the app before
its head is complete:
- MAX_HEADER_BYTES counted over the request line and headers *before* h11 buffers them: the read
  that would pass the limit is refused with 431 and the connection closed. (h11's own bound stays
  behind it for pipelined requests, which arrive while the previous one is answered.)
- HEADER_TIMEOUT_SECONDS: from the moment a connection opens, or the first byte of the next
  request on a kept-alive one, the head must be complete within it, else the connection is
  closed without an answer (a client this slow would not read one).
- Line breaks are strict: a bare LF or a folded header line (obs-fold) is refused with 400, as
  httptools did; h11 would accept both (the RFC allows it), and a proxy in front that reads them
  differently could be fooled about where a header ends. Bytes that follow a complete request
  and cannot start a valid one are refused at once, before the first request is answered.
- Every refusal the server can still answer carries our JSON error body
  `{"error": {"code", "message"}}` instead of uvicorn's plain text (`send_400_response`, the only
  uvicorn method overridden besides the asyncio.Protocol callbacks).
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
import re
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from batchscribe.config import Settings
from batchscribe.metrics import CONNECTIONS_REFUSED

logger = logging.getLogger(__name__)

# A LF without its CR, or a line break followed by whitespace (a folded header line).
_LOOSE_LINE_BREAK = re.compile(rb"(?<!\r)\n|\r\n[ \t]")
_END_OF_HEAD = b"\r\n\r\n"

MALFORMED_REQUEST_MESSAGE = (
    "The request is not valid HTTP: a header contains a forbidden character "
    "(CR, LF, NUL or another control byte) or is malformed. Fix the request and "
    "send it again."
)


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":")).encode(
        "ascii"
    )


#: After an answer that leaves part of a request unread (a 408, a 413, a refused upload), the
#: connection is half-closed and what the client still sends is read and dropped for this long
#: before the socket closes. Closing at once with unread bytes makes the kernel send a reset,
#: which can destroy the answer before the client reads it.
LINGER_SECONDS = 2.0
#: ... or until this much more arrived (a client still pushing a huge body is cut at once).
LINGER_MAX_BYTES = 64 * 1024


class _LingeringTransport:
    """The connection's transport, whose `close()` first sends the answer's end (FIN) and closes
    only after `LINGER_SECONDS` (or when the client closes first)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self.lingering = False
        self._dropped = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def close(self) -> None:
        if self.lingering or self._transport.is_closing():
            return
        self.lingering = True
        if not self._transport.can_write_eof():
            self._transport.close()
            return
        try:
            self._transport.write_eof()
        except OSError:
            self._transport.close()
            return
        self._loop.call_later(LINGER_SECONDS, self._transport.close)

    def drop(self, size: int) -> None:
        """Count bytes that arrived after the answer; close for good past the budget."""
        self._dropped += size
        if self._dropped > LINGER_MAX_BYTES:
            self._transport.close()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's `H11Protocol` with a header size limit enforced before buffering, a header
    timeout, strict line breaks and JSON errors. Configure it with `configured(settings)`."""

    max_header_bytes: ClassVar[int] = 16384
    header_timeout: ClassVar[float] = 10.0

    @classmethod
    def configured(cls, settings: Settings) -> type[GuardedH11Protocol]:
        """A subclass carrying the limits of `settings` (uvicorn builds one instance per
        connection from the class it is given)."""
        return type(
            cls.__name__,
            (cls,),
            {
                "max_header_bytes": settings.max_header_bytes,
                "header_timeout": settings.header_timeout_seconds,
            },
        )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._header_timer: asyncio.TimerHandle | None = None
        # Bytes of the current request head received so far, and the last of them, so that
        # its end and a bare LF are found across reads.
        self._head_bytes = 0
        self._head_tail = b""

    # -- asyncio.Protocol callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        lingering = _LingeringTransport(transport, asyncio.get_running_loop())
        super().connection_made(lingering)  # type: ignore[arg-type]
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if isinstance(self.transport, _LingeringTransport) and self.transport.lingering:
            self.transport.drop(len(data))  # answered and half-closed: dropped
            return
        # IDLE: h11 waits for a request head (a new connection, or after a finished exchange).
        if self.conn.their_state is h11.IDLE:
            if self._header_timer is None:
                self._arm_header_timer()
            if not self._screen_head(data):
                return
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head is complete
            self._cancel_header_timer()
            self._head_bytes = 0
            self._head_tail = b""
        if self.conn.their_state is h11.DONE and not self.transport.is_closing():
            self._check_pipelined()

    def _check_pipelined(self) -> None:
        """Bytes after a complete request wait in h11 until it is answered. When they cannot
        start a valid request (a header injected with a CR LF, a proxy and this server
        disagreeing on where a request ends), refuse the connection now rather than answer
        the first request as if nothing followed it (httptools, which parses eagerly, did the
        same)."""
        # Old clients send a stray CR LF after a POST body (RFC 9112, section 2.2): not a request.
        pending = self.conn.trailing_data[0].lstrip(b"\r\n")
        if not pending:
            return
        probe = h11.Connection(h11.SERVER, max(len(pending), self.max_header_bytes) + 1)
        probe.receive_data(pending)
        end = pending.find(_END_OF_HEAD)
        head = pending if end < 0 else pending[: end + len(_END_OF_HEAD)]
        try:
            probe.next_event()
        except h11.RemoteProtocolError:
            self._refuse(400, "malformed_request", MALFORMED_REQUEST_MESSAGE)
            return
        if _LOOSE_LINE_BREAK.search(head):
            self._refuse(400, "malformed_request", MALFORMED_REQUEST_MESSAGE)

    # -- the request head -------------------------------------------------------------------

    def _screen_head(self, data: bytes) -> bool:
        """Check the part of `data` that belongs to the request head; refuse the request and
        return False when it passes the size limit or breaks lines loosely."""
        window = self._head_tail + data
        end = window.find(_END_OF_HEAD)
        head_end = len(window) if end < 0 else end + len(_END_OF_HEAD)
        size = self._head_bytes - len(self._head_tail) + head_end
        if size > self.max_header_bytes:
            self._refuse(
                431,
                "headers_too_large",
                f"The request headers are larger than {self.max_header_bytes} bytes. Send "
                "fewer or shorter headers.",
            )
            return False
        # The first byte of the tail was checked with what came before it; it only gives the
        # next byte its context.
        start = 1 if self._head_bytes > len(self._head_tail) else 0
        if _LOOSE_LINE_BREAK.search(window, start, head_end):
            self._refuse(400, "malformed_request", MALFORMED_REQUEST_MESSAGE)
            return False
        if end < 0:
            self._head_bytes = size
            self._head_tail = window[-4:]
        return True

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            CONNECTIONS_REFUSED.labels("header_timeout").inc()
            logger.info(
                "closed a connection whose request headers were not complete in time",
                extra={"header_timeout_seconds": self.header_timeout},
            )
            self.transport.close()

    # -- answers ----------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        """h11 refused the request (a control byte in a header, a malformed line, or a
        pipelined head over h11's own bound): answer in our JSON shape."""
        if len(self.conn.trailing_data[0]) > self.max_header_bytes:
            self._refuse(
                431,
                "headers_too_large",
                f"The request headers are larger than {self.max_header_bytes} bytes. Send "
                "fewer or shorter headers.",
            )
        else:
            self._refuse(400, "malformed_request", MALFORMED_REQUEST_MESSAGE)

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer `status` with the JSON error body and close the connection."""
        CONNECTIONS_REFUSED.labels(code).inc()
        logger.info("refused a request before reading it", extra={"error_code": code})
        self._cancel_header_timer()
        body = _error_body(code, message)
        head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode("ascii")]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(b"content-type: application/json\r\n")
        head.append(b"content-length: " + str(len(body)).encode("ascii") + b"\r\n")
        head.append(b"connection: close\r\n\r\n")
        if not self.transport.is_closing():
            self.transport.write(b"".join(head) + body)
            self.transport.close()
