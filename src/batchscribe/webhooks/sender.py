"""One webhook delivery attempt: resolve, check every address, POST to a checked one.

    validate URL -> resolve host (once) -> every address public? -> connect to one of them
    (pinned: no second lookup) -> POST body -> read the status and at most
    `max_response_bytes` of the body -> DeliveryResult

Outcomes, per the Standard Webhooks guidance:
- `delivered`: any 2xx.
- `gone`: 410; the receiver wants no more webhooks, stop retrying.
- `retry`: any other status (3xx included: redirects are never followed), a timeout, a network
  or TLS error, a failed DNS lookup.
- `refused_address`: the host resolved to at least one non-public address. Retried like
  `retry` (the tenant may fix their DNS), but shown apart so the user can see why.
- `invalid_url`: the URL does not pass `validate_callback_url` (for example a literal private
  address after CALLBACK_ALLOW_PRIVATE_NETWORKS was turned off); retrying cannot help.

`send` never raises for anything the receiver or the network does. It blocks for at most
`timeout` seconds in all (DNS, connect, TLS, request, response), so it runs in a worker thread;
an asyncio caller uses `asyncio.to_thread(send, ...)`.

The log line of an attempt names the host, status, outcome and duration: never the body, the
path or query (they may carry tokens), nor the signature headers. Error messages meant for
the tenant never contain the addresses a name resolved to (that would turn the sender into an
oracle for the internal DNS); the operator's log has them.
"""

from __future__ import annotations

import concurrent.futures
import email.utils
import functools
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import httpcore
import httpx

from batchscribe import __version__
from batchscribe.webhooks.addresses import IPAddress, address_problem, canonical
from batchscribe.webhooks.exceptions import InvalidCallbackUrl
from batchscribe.webhooks.transport import PinnedBackend
from batchscribe.webhooks.urls import CallbackUrl, validate_callback_url

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_RESPONSE_BYTES = 4096
#: Room for the status line and headers of a response, on top of the body limit. h11 refuses
#: a head longer than this anyway.
RESPONSE_HEAD_BYTES = 16 * 1024
USER_AGENT = f"batchscribe-webhooks/{__version__}"

#: host, port -> the addresses the host resolves to.
Resolver = Callable[[str, int], Iterable[IPAddress | str]]

# DNS lookups run here so a hung resolver cannot stretch an attempt past its deadline
# (getaddrinfo has no timeout of its own); the lookup finishes in the background.
_DNS_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="webhook-dns")


class Outcome(StrEnum):
    """What one delivery attempt ended in."""

    DELIVERED = "delivered"
    GONE = "gone"
    RETRY = "retry"
    REFUSED_ADDRESS = "refused_address"
    INVALID_URL = "invalid_url"


@dataclass(frozen=True)
class DeliveryResult:
    """The result of one attempt. `error` is safe to show the tenant."""

    outcome: Outcome
    status_code: int | None = None
    error: str | None = None
    duration_seconds: float = 0.0
    #: The receiver's `Retry-After` (429, 503...), in seconds, when it sent one.
    retry_after_seconds: float | None = None
    #: The start of the response body, at most `max_response_bytes`.
    response_body: bytes = field(default=b"", repr=False)

    @property
    def retryable(self) -> bool:
        """True when another attempt later may succeed."""
        return self.outcome in (Outcome.RETRY, Outcome.REFUSED_ADDRESS)


def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The addresses `host` resolves to, from the operating system's resolver."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


@functools.lru_cache(maxsize=1)
def default_ssl_context() -> ssl.SSLContext:
    """Certificate and host name verification against the same CA bundle as httpx. Built
    once: loading the bundle costs more than a whole attempt to a fast receiver."""
    return httpx.create_ssl_context()


def _resolve(resolver: Resolver, callback: CallbackUrl, deadline: float) -> list[IPAddress] | str:
    """The distinct addresses of the callback's host, or an error message for the tenant."""
    if callback.ip is not None:
        return [callback.ip]
    future = _DNS_POOL.submit(lambda: list(resolver(callback.host, callback.port)))
    try:
        answers = future.result(timeout=max(0.0, deadline - time.monotonic()))
    except concurrent.futures.TimeoutError:
        return f"looking up {callback.host} took too long"
    except (OSError, UnicodeError) as exc:
        logger.info(
            "Webhook host lookup failed", extra={"webhook_host": callback.host, "error": str(exc)}
        )
        return f"could not resolve {callback.host}"
    addresses: list[IPAddress] = []
    for answer in answers:
        try:
            address = canonical(ipaddress.ip_address(answer) if isinstance(answer, str) else answer)
        except ValueError:
            return f"{callback.host} resolved to something that is not an IP address"
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        return f"could not resolve {callback.host}"
    return addresses


def _retry_after(value: bytes | None) -> float | None:
    """Seconds from a `Retry-After` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    text = value.decode("latin-1").strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _outcome_for(status: int) -> tuple[Outcome, str | None]:
    if 200 <= status < 300:
        return Outcome.DELIVERED, None
    if status == 410:
        return Outcome.GONE, "the receiver answered 410 Gone: it wants no more webhooks"
    if 300 <= status < 400:
        return Outcome.RETRY, (
            f"the receiver answered {status}, a redirect; redirects are not followed, so set "
            "callback_url to the final address"
        )
    return Outcome.RETRY, f"the receiver answered {status}"


def _describe(exc: Exception, timeout: float) -> str:
    if isinstance(exc, httpcore.TimeoutException):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, httpcore.ConnectError):
        return f"could not connect: {exc}" if str(exc) else "could not connect"
    if isinstance(exc, httpcore.ProtocolError):
        return "the receiver's answer is not valid HTTP/1.1"
    return f"the connection failed: {exc}" if str(exc) else "the connection failed"


def _post(
    callback: CallbackUrl,
    address: IPAddress,
    body: bytes,
    headers: Mapping[str, str],
    *,
    deadline: float,
    ssl_context: ssl.SSLContext,
    max_response_bytes: int,
    network_backend: httpcore.NetworkBackend | None,
) -> DeliveryResult:
    """POST to `address` with the URL's host name for Host, SNI and the certificate."""
    backend = PinnedBackend(
        callback.host,
        address,
        deadline=deadline,
        max_read_bytes=max_response_bytes + RESPONSE_HEAD_BYTES,
        inner=network_backend,
    )
    request_headers = [
        (name, value)
        for name, value in headers.items()
        if name.lower() not in ("host", "content-length", "transfer-encoding")
    ]
    request_headers += [
        ("Host", callback.host_header),
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("User-Agent", USER_AGENT),
    ]
    left = max(0.001, deadline - time.monotonic())
    url = httpcore.URL(
        scheme=callback.scheme, host=callback.host, port=callback.port, target=callback.target
    )
    with (
        httpcore.ConnectionPool(
            ssl_context=ssl_context, network_backend=backend, http1=True, http2=False, retries=0
        ) as pool,
        pool.stream(
            "POST",
            url,
            headers=request_headers,
            content=body,
            extensions={"timeout": {"connect": left, "read": left, "write": left, "pool": left}},
        ) as response,
    ):
        status = response.status
        outcome, error = _outcome_for(status)
        received = bytearray()
        try:
            for chunk in response.iter_stream():
                received += chunk
                if len(received) >= max_response_bytes:
                    break
        except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError):
            pass  # the status decides the outcome; the body is only for troubleshooting
        retry_after = _retry_after(
            next((v for k, v in response.headers if k.lower() == b"retry-after"), None)
        )
    return DeliveryResult(
        outcome,
        status_code=status,
        error=error,
        retry_after_seconds=retry_after,
        response_body=bytes(received[:max_response_bytes]),
    )


def send(
    url: str | CallbackUrl,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    allow_private: bool = False,
    resolver: Resolver | None = None,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ssl_context: ssl.SSLContext | None = None,
    network_backend: httpcore.NetworkBackend | None = None,
) -> DeliveryResult:
    """Make one delivery attempt of a signed webhook (see the module docstring).

    `headers` are the `webhook-*` headers from `sign()`; Host, Content-Type, Content-Length and
    User-Agent are set here. `resolver` defaults to the system resolver, `ssl_context` to
    certificate verification with certifi's CA bundle, `network_backend` to real sockets.
    """
    started = time.monotonic()
    deadline = started + timeout
    # Checked again at every attempt: the setting may have changed since submission.
    text = url.url if isinstance(url, CallbackUrl) else url
    try:
        callback = validate_callback_url(text, allow_private=allow_private)
    except InvalidCallbackUrl as exc:
        return _finish(None, DeliveryResult(Outcome.INVALID_URL, error=str(exc)), started, headers)

    resolved = _resolve(resolver or system_resolver, callback, deadline)
    if isinstance(resolved, str):
        return _finish(callback, DeliveryResult(Outcome.RETRY, error=resolved), started, headers)
    if not allow_private:
        refused = {str(a): p for a in resolved if (p := address_problem(a)) is not None}
        if refused:
            logger.warning(
                "Webhook host resolves to non-public addresses; not sending",
                extra={"webhook_host": callback.host, "refused_addresses": refused},
            )
            error = (
                f"{callback.host} resolves to an address that is not public (private, "
                "loopback, link-local or reserved); webhooks go only to public addresses"
            )
            return _finish(
                callback, DeliveryResult(Outcome.REFUSED_ADDRESS, error=error), started, headers
            )

    context = ssl_context if ssl_context is not None else default_ssl_context()
    result = DeliveryResult(Outcome.RETRY, error="no address could be tried")
    for address in resolved:
        if time.monotonic() >= deadline:
            break
        try:
            result = _post(
                callback,
                address,
                body,
                headers,
                deadline=deadline,
                ssl_context=context,
                max_response_bytes=max_response_bytes,
                network_backend=network_backend,
            )
        except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
            # This address does not answer; the host's next address may.
            result = DeliveryResult(Outcome.RETRY, error=_describe(exc, timeout))
            continue
        except (
            httpcore.TimeoutException,
            httpcore.NetworkError,
            httpcore.ProtocolError,
            OSError,
        ) as exc:
            result = DeliveryResult(Outcome.RETRY, error=_describe(exc, timeout))
        break
    return _finish(callback, result, started, headers)


def _finish(
    callback: CallbackUrl | None,
    result: DeliveryResult,
    started: float,
    headers: Mapping[str, str],
) -> DeliveryResult:
    """Stamp the duration on `result` and log the attempt (never the body or signatures)."""
    duration = time.monotonic() - started
    result = DeliveryResult(
        result.outcome,
        status_code=result.status_code,
        error=result.error,
        duration_seconds=duration,
        retry_after_seconds=result.retry_after_seconds,
        response_body=result.response_body,
    )
    logger.info(
        "Webhook attempt %s",
        result.outcome.value,
        extra={
            "webhook_host": callback.host if callback else None,
            "webhook_id": next((v for k, v in headers.items() if k.lower() == "webhook-id"), None),
            "status": result.status_code,
            "outcome": result.outcome.value,
            "duration_ms": round(duration * 1000, 1),
            "error": result.error,
        },
    )
    return result
