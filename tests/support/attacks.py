"""Hostile and broken HTTP clients over raw sockets, for the attack corpus: what HTTP libraries
refuse to send (trickled heads, stalled bodies, oversize headers, bytes after the closing
boundary). Every client is bounded in bytes and seconds and stops by itself."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx

BOUNDARY = "corpus-boundary-7d1f"


@dataclass
class RawResponse:
    """What a raw client read back: the status (None when the server closed without an
    answer), headers (lower-case names) and body."""

    status: int | None
    headers: dict[str, str]
    body: bytes

    @staticmethod
    def parse(data: bytes) -> RawResponse:
        if not data:
            return RawResponse(None, {}, b"")
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return RawResponse(int(lines[0].split()[1]), headers, body)


def multipart_head(filename: str = "speech.wav", field_name: str = "file") -> bytes:
    return (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="{field_name}"; filename="{filename}"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()


def closing_boundary() -> bytes:
    return f"\r\n--{BOUNDARY}--\r\n".encode()


def request_head(port: int, content_length: int | None, extra: bytes = b"") -> bytes:
    length = b"" if content_length is None else b"Content-Length: %d\r\n" % content_length
    return (
        b"POST /batch/process HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{port}\r\n".encode()
        + f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n".encode()
        + length
        + extra
        + b"\r\n"
    )


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_answer(sock: socket.socket, timeout: float = 30.0) -> RawResponse:
    """Everything the server sends until it closes (or `timeout` passes without a byte)."""
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(OSError):  # a reset after the answer still leaves the answer
        while chunk := sock.recv(65536):
            data += chunk
    return RawResponse.parse(data)


def stream_until_refused(
    sock: socket.socket, pieces: Iterator[bytes], max_bytes: int
) -> tuple[int, RawResponse]:
    """Send `pieces` until the server answers or closes, at most `max_bytes`; return how many
    bytes were sent and the answer."""
    sent = 0
    sock.settimeout(30)
    try:
        for piece in pieces:
            if sent >= max_bytes:
                break
            sock.sendall(piece)
            sent += len(piece)
    except OSError:
        pass  # the server closed the connection: read what it answered
    return sent, read_answer(sock)


@dataclass
class SlowClient:
    """A connection that sends its request one `step` bytes at a time (heads that never
    complete, bodies that trickle), or nothing more after `opening` when `step` is 0."""

    sock: socket.socket
    rest: bytes
    step: int = 1
    received: bytes = b""
    closed: bool = False
    closed_at: float | None = None

    @classmethod
    def open(cls, port: int, opening: bytes, rest: bytes = b"", step: int = 1) -> SlowClient:
        sock = connect(port)
        sock.sendall(opening)
        return cls(sock, rest, step)

    def tick(self) -> None:
        """Send the next `step` bytes, then read whatever the server answered."""
        if self.closed:
            return
        try:
            if self.step and self.rest:
                self.sock.sendall(self.rest[: self.step])
                self.rest = self.rest[self.step :]
            self._read_available()
        except OSError:  # reset or broken pipe: the server closed it
            self._close()

    def _read_available(self) -> None:
        self.sock.setblocking(False)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:  # orderly close
                    self._close()
                    return
                self.received += chunk
        except BlockingIOError:
            pass
        finally:
            if not self.closed:
                self.sock.setblocking(True)

    def _close(self) -> None:
        self.closed, self.closed_at = True, time.monotonic()
        self.sock.close()

    @property
    def response(self) -> RawResponse:
        return RawResponse.parse(self.received)


@dataclass
class SlowFleet:
    """Drives `clients` from a background thread: every `interval` seconds each sends its next
    bytes, until all are closed or `give_up` seconds have passed."""

    clients: list[SlowClient]
    interval: float
    give_up: float
    started: float = field(default_factory=time.monotonic)
    _thread: threading.Thread | None = None

    def __enter__(self) -> SlowFleet:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        deadline = self.started + self.give_up
        while time.monotonic() < deadline and not all(c.closed for c in self.clients):
            for client in self.clients:
                client.tick()
            time.sleep(self.interval)

    def wait(self) -> list[SlowClient]:
        assert self._thread is not None
        self._thread.join(self.give_up + 30)
        return self.clients

    def __exit__(self, *exc: object) -> None:
        self.wait()
        for client in self.clients:
            if not client.closed:
                client.sock.close()


@dataclass
class HonestUpload:
    """An ordinary client's upload, sent from a background thread while an attack runs."""

    url: str
    audio: bytes
    result: httpx.Response | None = None
    error: Exception | None = None
    _thread: threading.Thread | None = None

    def start(self) -> HonestUpload:
        self._thread = threading.Thread(target=self._send, daemon=True)
        self._thread.start()
        return self

    def _send(self) -> None:
        try:
            self.result = httpx.post(
                self.url + "/batch/process",
                files={"file": ("speech.wav", self.audio, "audio/wav")},
                timeout=120,
            )
        except httpx.HTTPError as exc:
            self.error = exc

    def response(self) -> httpx.Response:
        assert self._thread is not None
        self._thread.join(180)
        assert self.error is None, f"the honest upload failed: {self.error!r}"
        assert self.result is not None
        return self.result
