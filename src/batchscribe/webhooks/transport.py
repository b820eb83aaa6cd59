"""An httpcore network backend that connects to one checked address and keeps to a deadline.

httpcore asks its network backend to `connect_tcp(host, port)` with the URL's host name; the
backend here ignores the name and connects to the IP address the sender checked, so no second
DNS lookup can happen between the check and the connection (DNS rebinding). The URL keeps the
host name, so the `Host` header, TLS SNI and certificate verification all use the name.

Every stream it returns also enforces, below httpcore:
- one deadline for the whole attempt: each connect, TLS handshake, read and write gets at most
  the time left, so a receiver that drips one byte every few seconds cannot stretch an attempt
  (httpcore's own timeouts are per operation);
- a read budget: at most `max_read_bytes` are ever read from the socket (response head and
  body together), whatever the receiver sends.
"""

from __future__ import annotations

import ssl
import time
import typing
from collections.abc import Iterable

import httpcore

from batchscribe.webhooks.addresses import IPAddress

SocketOption = typing.Any  # httpcore's SOCKET_OPTION union, passed through untouched


class _Budget:
    """Bytes still allowed to be read on one attempt (shared by a stream and its TLS form)."""

    def __init__(self, limit: int) -> None:
        self.left = limit


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every operation ends by `deadline` and whose reads stop at a
    byte budget."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float, budget: _Budget) -> None:
        self._inner = inner
        self._deadline = deadline
        self._budget = budget

    def _time_left(self, timeout: float | None, error: type[httpcore.TimeoutException]) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise error("the attempt's time limit was reached")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._budget.left <= 0:
            raise httpcore.ReadError("the response is longer than the sender reads")
        seconds = self._time_left(timeout, httpcore.ReadTimeout)
        data = self._inner.read(min(max_bytes, self._budget.left), seconds)
        self._budget.left -= len(data)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        seconds = self._time_left(timeout, httpcore.ConnectTimeout)
        tls = self._inner.start_tls(ssl_context, server_hostname, seconds)
        return DeadlineStream(tls, self._deadline, self._budget)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    """Connects every request for `host` to `address`, through `inner` (the real socket
    backend unless a test records connections instead)."""

    def __init__(
        self,
        host: str,
        address: IPAddress,
        *,
        deadline: float,
        max_read_bytes: int,
        inner: httpcore.NetworkBackend | None = None,
    ) -> None:
        self._host = host
        self._address = address
        self._deadline = deadline
        self._budget = _Budget(max_read_bytes)
        self._inner = inner if inner is not None else httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        if host != self._host:
            # httpcore only ever asks for the URL's host; anything else is refused, not resolved.
            raise httpcore.ConnectError(f"connection to unexpected host {host!r} refused")
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ConnectTimeout("the attempt's time limit was reached")
        stream = self._inner.connect_tcp(
            str(self._address),
            port,
            timeout=left if timeout is None else min(timeout, left),
            local_address=local_address,
            socket_options=socket_options,
        )
        return DeadlineStream(stream, self._deadline, self._budget)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("webhooks are never sent over a unix socket")

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, min(seconds, self._deadline - time.monotonic())))
