"""A fault-injecting HTTP reverse proxy in front of the local AWS emulator.

The service is pointed at the proxy (`AWS_ENDPOINT_URL=proxy.url`) and the test switches its
mode while requests flow, to play an EventBridge that is healthy, down, failing, throttling or
slow. The chaos test, the log audit and the benchmark share it.

Modes (`FaultProxy.set_mode`):
- `pass`: forward to the emulator unchanged.
- `refuse`: the listening socket is closed, so new connections get ECONNREFUSED; a client's
  kept-alive connection is reset at its next request. The same port is bound again on the way
  back to another mode.
- `reset`: keep listening but reset every connection at its first request (a broken load
  balancer; botocore sees `ConnectionClosedError`).
- `error500`: answer 500 with an AWS JSON error body (`InternalException`).
- `throttle`: answer 400 with `{"__type": "ThrottlingException", ...}`, which is how
  EventBridge throttles: botocore's JSON parser takes the error code from `__type`, so the caller
  sees `ClientError` code `ThrottlingException`.
- `slow`: wait `delay` seconds, then forward.
- `deny`: answer 400 `AccessDeniedException`, a terminal error (a publisher without
  `events:PutEvents`): the event is marked failed, never retried.

Loopback only, one thread per connection, HTTP/1.1 keep-alive like the real endpoint.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

from batchscribe.infra.emulator import free_port

Mode = Literal["pass", "refuse", "reset", "error500", "throttle", "slow", "deny"]
MODES: tuple[Mode, ...] = ("pass", "refuse", "reset", "error500", "throttle", "slow", "deny")

# Headers that describe one hop, never forwarded (RFC 9110 section 7.6.1).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
_AWS_JSON = "application/x-amz-json-1.1"


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a TCP RST instead of an orderly FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultProxy

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that gave up (read timeout, killed server) is normal here: stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    # Every method the SDKs use goes through one path.
    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read the proxy's counters, not its access log."""

    def _handle(self) -> None:
        proxy = self.server.proxy
        mode, delay = proxy.mode, proxy.delay
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        proxy.count(mode)
        if mode in ("refuse", "reset"):
            self.close_connection = True
            _reset(self.connection)
            return
        if mode == "error500":
            self._aws_error(500, "InternalException", "Internal error (injected by the proxy)")
            return
        if mode == "throttle":
            self._aws_error(400, "ThrottlingException", "Rate exceeded")
            return
        if mode == "deny":
            self._aws_error(400, "AccessDeniedException", "User is not authorized (injected)")
            return
        if mode == "slow":
            time.sleep(delay)
        self._forward(body)

    def _aws_error(self, status: int, code: str, message: str) -> None:
        payload = json.dumps({"__type": code, "message": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", _AWS_JSON)
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _forward(self, body: bytes) -> None:
        proxy = self.server.proxy
        upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            payload = answer.read()
            status, reason, answer_headers = answer.status, answer.reason, answer.getheaders()
        except OSError:
            self._aws_error(502, "ServiceUnavailable", "The emulator behind the proxy failed")
            return
        finally:
            upstream.close()
        self.send_response(status, reason)
        for name, value in answer_headers:
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


class FaultProxy:
    """The proxy on 127.0.0.1:`port`, forwarding to `upstream_url`; modes switch at runtime.

    >>> with FaultProxy(emulator.endpoint_url) as proxy:
    ...     env["AWS_ENDPOINT_URL"] = proxy.url
    ...     proxy.set_mode("throttle")
    """

    def __init__(self, upstream_url: str, port: int | None = None) -> None:
        parts = urlsplit(upstream_url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fault proxy forwards to loopback addresses only")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.port = port or free_port()
        self.mode: Mode = "pass"
        self.delay = 1.0
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        with self._lock:
            self._listen()
        return self

    def stop(self) -> None:
        with self._lock:
            self._unlisten()

    def _listen(self) -> None:
        if self._server is not None:
            return
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _unlisten(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    # -- control -----------------------------------------------------------------------------

    def set_mode(self, mode: Mode, delay: float | None = None) -> None:
        """Switch behaviour for every following request; `delay` (seconds) is for `slow`."""
        if mode not in MODES:
            raise ValueError(f"unknown proxy mode {mode!r}; one of {', '.join(MODES)}")
        with self._lock:
            if delay is not None:
                self.delay = delay
            self.mode = mode
            if mode == "refuse":
                self._unlisten()
            else:
                self._listen()

    def count(self, mode: str) -> None:
        with self._lock:
            self._counts[mode] += 1

    @property
    def counts(self) -> dict[str, int]:
        """Requests seen per mode (`refuse` counts kept-alive connections reset)."""
        with self._lock:
            return dict(self._counts)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
