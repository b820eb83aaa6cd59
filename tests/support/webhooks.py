"""Webhook test infrastructure: a Standard Webhooks verifier written from the specification, a
local receiver (HTTP or HTTPS) that records what it gets, and network backends for the sender
that record where it connects.

The verifier is deliberately independent of `standardwebhooks` (which the sender signs with):
HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`, base64, compared in constant time
with every `v1,` signature of the space-separated `webhook-signature` header.

    with WebhookReceiver() as receiver:            # http://127.0.0.1:<port>
        receiver.queue(ReceiverReply(status=500))   # the next request gets a 500
        result = send(receiver.url_for("hooks.test"), body, headers, allow_private=True,
                      resolver=receiver.resolver)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ssl
import threading
import time
import typing
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import httpcore

# -- verifying -----------------------------------------------------------------------------


def verify_signature(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: int | None = None,
    tolerance_seconds: int = 300,
) -> bool:
    """True when one `v1` signature of `headers` is the HMAC of this body under `secret`
    (`whsec_...`), and the timestamp is within the tolerance of `now` when `now` is given."""
    lower = {name.lower(): value for name, value in headers.items()}
    msg_id = lower.get("webhook-id", "")
    timestamp = lower.get("webhook-timestamp", "")
    signatures = lower.get("webhook-signature", "")
    if not msg_id or not timestamp.isdigit() or not signatures:
        return False
    if now is not None and abs(now - int(timestamp)) > tolerance_seconds:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    for item in signatures.split(" "):
        version, _, signature = item.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return True
    return False


# -- a local receiver ----------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedWebhook:
    """One request as the receiver got it; header names lower-cased."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    #: The TLS server name the client asked for (SNI), None over plain HTTP.
    sni: str | None
    #: The local address the connection arrived on.
    local_address: str


@dataclass(frozen=True)
class ReceiverReply:
    """How the receiver answers one request."""

    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    #: Bytes of response body (`x`s), announced with Content-Length.
    body_size: int = 0
    #: Seconds to wait before answering.
    delay: float = 0.0
    #: Seconds between single bytes of the status line and headers (a slow-drip receiver).
    drip: float = 0.0


class WebhookReceiver:
    """A threaded HTTP(S) server on 127.0.0.1 that records webhooks and answers from a
    script of `ReceiverReply`s (then 204). `ssl_context` makes it HTTPS; `port` binds a chosen
    port (to come up where a callback URL already points); `responder`, when given, picks the
    reply for each request instead of the script."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None = None,
        *,
        port: int = 0,
        responder: Callable[[ReceivedWebhook], ReceiverReply] | None = None,
    ) -> None:
        self.requests: list[ReceivedWebhook] = []
        self.responder = responder
        self._port = port
        #: Response body bytes the receiver could not write because the client hung up.
        self.unsent_bytes = 0
        self._ssl_context = ssl_context
        self._script: deque[ReceiverReply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._sni: dict[tuple[str, int], str | None] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def queue(self, *replies: ReceiverReply) -> None:
        with self._lock:
            self._script.extend(replies)

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the receiver first"
        return int(self._server.server_address[1])

    def url_for(self, host: str, path: str = "/hooks/batchscribe") -> str:
        """A callback URL naming `host` (mapped to this receiver by `resolver`)."""
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    @staticmethod
    def resolver(host: str, port: int) -> list[str]:
        """Every name resolves to the loopback address the receiver listens on."""
        return ["127.0.0.1"]

    def start(self) -> Self:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                receiver._handle(self)

        server = _Server(("127.0.0.1", self._port), Handler)
        if self._ssl_context is not None:
            self._ssl_context.sni_callback = self._remember_sni
            server.socket = self._ssl_context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
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

    def _remember_sni(self, sock: Any, name: str | None, _: ssl.SSLContext) -> None:
        """TLS handshake hook: the server name the client sent, by client address."""
        with self._lock:
            self._sni[sock.getpeername()[:2]] = name

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        headers = {name.lower(): value for name, value in handler.headers.items()}
        body = handler.rfile.read(int(headers.get("content-length") or 0))
        connection = handler.connection
        tls = isinstance(connection, ssl.SSLSocket)
        received = ReceivedWebhook(
            handler.command,
            handler.path,
            headers,
            body,
            self._sni.get(handler.client_address[:2]) if tls else None,
            str(connection.getsockname()[0]),
        )
        with self._lock:
            self.requests.append(received)
            if self.responder is not None:
                reply = self.responder(received)
            else:
                reply = self._script.popleft() if self._script else ReceiverReply()
        try:
            if reply.delay:
                self._stopping.wait(reply.delay)
            head = f"HTTP/1.1 {reply.status} Scripted\r\n"
            for name, value in {**reply.headers, "Content-Length": str(reply.body_size)}.items():
                head += f"{name}: {value}\r\n"
            head += "\r\n"
            if reply.drip:
                for byte in head.encode():
                    handler.wfile.write(bytes([byte]))
                    if self._stopping.wait(reply.drip):
                        return
            else:
                handler.wfile.write(head.encode())
            self._write_body(handler, reply.body_size)
        except OSError:
            pass  # the client hung up

    def _write_body(self, handler: BaseHTTPRequestHandler, size: int) -> None:
        chunk = b"x" * 65536
        left = size
        try:
            while left > 0:
                handler.wfile.write(chunk[: min(left, len(chunk))])
                left -= min(left, len(chunk))
        finally:
            with self._lock:
                self.unsent_bytes += left


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


# -- network backends that record connections ------------------------------------------------


class CountingBackend(httpcore.NetworkBackend):
    """Real sockets, recording each address connected to and every byte read."""

    def __init__(self) -> None:
        self.connected: list[tuple[str, int]] = []
        self.bytes_read = 0
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        self.connected.append((host, port))
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _CountingStream(stream, self)


class _CountingStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, backend: CountingBackend) -> None:
        self._inner = inner
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = self._inner.read(max_bytes, timeout)
        self._backend.bytes_read += len(data)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _CountingStream(
            self._inner.start_tls(ssl_context, server_hostname, timeout), self._backend
        )

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class RecordingBackend(httpcore.NetworkBackend):
    """No network at all: records where the sender would connect and what it would write,
    and answers every connection with `response` (raw HTTP/1.1 bytes). Addresses in
    `refuse` fail to connect, like a closed port."""

    def __init__(
        self,
        response: bytes = b"HTTP/1.1 204 No Content\r\n\r\n",
        *,
        refuse: Iterable[str] = (),
    ) -> None:
        self.connected: list[tuple[str, int]] = []
        self.tls_server_names: list[str | None] = []
        self.written = bytearray()
        self.response = response
        self.refuse = set(refuse)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        self.connected.append((host, port))
        if host in self.refuse:
            raise httpcore.ConnectError("[Errno 111] Connection refused")
        return _ScriptedStream(self)

    @property
    def request_head(self) -> str:
        """The request line and headers the sender wrote."""
        return bytes(self.written).split(b"\r\n\r\n", 1)[0].decode("latin-1")


class _ScriptedStream(httpcore.NetworkStream):
    def __init__(self, backend: RecordingBackend) -> None:
        self._backend = backend
        self._left = backend.response

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data, self._left = self._left[:max_bytes], self._left[max_bytes:]
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._backend.written += buffer

    def close(self) -> None:
        pass

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        self._backend.tls_server_names.append(server_hostname)
        return self

    def get_extra_info(self, info: str) -> typing.Any:
        return None


def endless_response(status: int = 200) -> bytes:
    """A response announcing a 1 GB body, of which the first 1 MB is here (enough to show the
    sender stops reading long before)."""
    return f"HTTP/1.1 {status} OK\r\nContent-Length: 1000000000\r\n\r\n".encode() + b"x" * 2**20


def now() -> int:
    return int(time.time())


def fail_first(times: int = 1, status: int = 500) -> Callable[[ReceivedWebhook], ReceiverReply]:
    """A responder that answers `status` to the first `times` requests of each webhook-id, then
    204: every message needs exactly `times + 1` attempts."""
    seen: dict[str, int] = {}

    def respond(request: ReceivedWebhook) -> ReceiverReply:
        msg_id = request.headers.get("webhook-id", "")
        seen[msg_id] = seen.get(msg_id, 0) + 1
        return ReceiverReply(status=status) if seen[msg_id] <= times else ReceiverReply()

    return respond
