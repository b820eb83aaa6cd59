"""Webhook delivery over real sockets to a local receiver: signatures a Standard Webhooks
consumer accepts, every outcome (2xx, 410, 5xx, redirect, timeout, refused connection), the
response size limit, and HTTPS where the socket goes to the checked address while SNI, Host
and the certificate check use the host name.

Everything listens on 127.0.0.1, so these tests run with allow_private=True; a resolver maps the
test host names (which exist in no DNS) to the receiver, so any second lookup would fail.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from standardwebhooks import Webhook

from batchscribe.webhooks import generate_secret, new_message_id, sign
from batchscribe.webhooks.sender import RESPONSE_HEAD_BYTES, DeliveryResult, Outcome, send
from tests.support.webhooks import (
    CountingBackend,
    ReceiverReply,
    WebhookReceiver,
    now,
    verify_signature,
)

BODY = json.dumps(
    {"type": "batch.job.completed", "data": {"job_id": "4b8d", "text": "Hello there."}},
    separators=(",", ":"),
).encode()
HOST = "hooks.batchscribe.test"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def _headers(*secrets: str) -> dict[str, str]:
    from batchscribe.webhooks import parse_secret

    return sign(new_message_id(), now(), BODY, [parse_secret(s) for s in secrets])


def _send_to(
    receiver: WebhookReceiver, headers: dict[str, str] | None = None, **options: Any
) -> DeliveryResult:
    """One attempt to `receiver` under the test's host name (resolved to the receiver, private
    addresses allowed), signed with a fresh secret unless `headers` are given."""
    return send(
        receiver.url_for(HOST),
        BODY,
        headers or _headers(generate_secret().encoded),
        allow_private=True,
        resolver=receiver.resolver,
        **options,
    )


def test_a_delivered_webhook_verifies_for_the_receiver(receiver: WebhookReceiver) -> None:
    secret = generate_secret().encoded
    result = _send_to(receiver, _headers(secret))
    assert result.outcome is Outcome.DELIVERED
    assert result.status_code == 204
    [got] = receiver.requests
    assert got.method == "POST"
    assert got.target == "/hooks/batchscribe"
    assert got.body == BODY
    assert got.headers["host"] == f"{HOST}:{receiver.port}"
    assert got.headers["content-type"] == "application/json"
    assert verify_signature(secret, got.headers, got.body, now=now())
    # A consumer using the specification's reference library accepts it too.
    assert Webhook(secret).verify(got.body, got.headers) == json.loads(BODY)
    assert not verify_signature(generate_secret().encoded, got.headers, got.body)
    assert not verify_signature(secret, got.headers, got.body.replace(b"Hello", b"Howdy"))


def test_during_rotation_both_the_old_and_the_new_secret_verify(
    receiver: WebhookReceiver,
) -> None:
    old, new = generate_secret().encoded, generate_secret().encoded
    _send_to(receiver, _headers(new, old))
    [got] = receiver.requests
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert verify_signature(old, got.headers, got.body, now=now())
    assert verify_signature(new, got.headers, got.body, now=now())
    assert not verify_signature(generate_secret().encoded, got.headers, got.body)


def test_retries_keep_the_webhook_id_and_are_signed_anew(receiver: WebhookReceiver) -> None:
    from batchscribe.webhooks import parse_secret

    secret = generate_secret().encoded
    msg_id = new_message_id()
    receiver.queue(ReceiverReply(status=503, headers={"Retry-After": "30"}))
    first = _send_to(receiver, sign(msg_id, now() - 60, BODY, [parse_secret(secret)]))
    second = _send_to(receiver, sign(msg_id, now(), BODY, [parse_secret(secret)]))
    assert (first.outcome, first.status_code, first.retry_after_seconds) == (
        Outcome.RETRY,
        503,
        30.0,
    )
    assert second.outcome is Outcome.DELIVERED
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert ids == {msg_id}
    stamps = [r.headers["webhook-timestamp"] for r in receiver.requests]
    assert stamps[0] != stamps[1]
    assert all(verify_signature(secret, r.headers, r.body) for r in receiver.requests)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (202, Outcome.DELIVERED),
        (299, Outcome.DELIVERED),
        (410, Outcome.GONE),
        (400, Outcome.RETRY),
        (404, Outcome.RETRY),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (502, Outcome.RETRY),
    ],
)
def test_status_codes_map_to_outcomes(
    receiver: WebhookReceiver, status: int, outcome: Outcome
) -> None:
    receiver.queue(ReceiverReply(status=status, body_size=10))
    result = _send_to(receiver)
    assert (result.outcome, result.status_code) == (outcome, status)
    assert result.retryable is (outcome is Outcome.RETRY)
    assert result.response_body == b"x" * 10


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(receiver: WebhookReceiver) -> None:
    with WebhookReceiver() as elsewhere:
        receiver.queue(
            ReceiverReply(status=307, headers={"Location": elsewhere.url_for("127.0.0.1")})
        )
        result = _send_to(receiver)
        assert elsewhere.requests == []
    assert (result.outcome, result.status_code) == (Outcome.RETRY, 307)
    assert result.error is not None
    assert "redirect" in result.error


def test_a_receiver_slower_than_the_timeout_is_retried(receiver: WebhookReceiver) -> None:
    receiver.queue(ReceiverReply(delay=5))
    result = _send_to(receiver, timeout=0.5)
    assert result.outcome is Outcome.RETRY
    assert result.status_code is None
    assert result.error == "no answer within 0.5 s"


def test_a_receiver_dripping_its_answer_cannot_stretch_the_attempt(
    receiver: WebhookReceiver,
) -> None:
    # One byte of the status line every 0.1 s: no single read waits long, and the full answer
    # (a 200) would take several seconds; the attempt's overall limit ends it first.
    receiver.queue(ReceiverReply(status=200, drip=0.1))
    result = _send_to(receiver, timeout=1.0)
    assert result.outcome is Outcome.RETRY
    assert result.status_code is None


def test_a_refused_connection_is_retried() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    result = send(
        f"http://{HOST}:{port}/hook",
        BODY,
        _headers(generate_secret().encoded),
        allow_private=True,
        resolver=WebhookReceiver.resolver,
    )
    assert result.outcome is Outcome.RETRY
    assert result.error is not None
    assert result.error.startswith("could not connect")


def test_a_huge_response_is_not_read_beyond_the_limit(receiver: WebhookReceiver) -> None:
    receiver.queue(ReceiverReply(status=200, body_size=64 * 2**20))
    backend = CountingBackend()
    result = _send_to(receiver, max_response_bytes=4096, network_backend=backend)
    assert result.outcome is Outcome.DELIVERED
    assert result.response_body == b"x" * 4096
    assert backend.bytes_read <= 4096 + RESPONSE_HEAD_BYTES
    receiver.stop()  # the receiver learns the sender hung up
    assert receiver.unsent_bytes > 32 * 2**20


def test_without_private_networks_the_local_receiver_is_refused(
    receiver: WebhookReceiver,
) -> None:
    url = receiver.url_for(HOST).replace("http://", "https://")
    result = send(url, BODY, _headers(generate_secret().encoded), resolver=receiver.resolver)
    assert result.outcome is Outcome.REFUSED_ADDRESS
    assert "127.0.0.1" not in (result.error or "")
    assert receiver.requests == []


# -- HTTPS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _tls_receiver(ca: trustme.CA, *names: str) -> WebhookReceiver:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return WebhookReceiver(ssl_context=context)


def _client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_https_connects_to_the_checked_address_with_the_host_name_for_tls(
    ca: trustme.CA,
) -> None:
    with _tls_receiver(ca, HOST) as receiver:
        backend = CountingBackend()
        result = _send_to(receiver, ssl_context=_client_context(ca), network_backend=backend)
    assert result.outcome is Outcome.DELIVERED
    assert backend.connected == [("127.0.0.1", receiver.port)]
    [got] = receiver.requests
    assert got.sni == HOST
    assert got.headers["host"] == f"{HOST}:{receiver.port}"
    assert got.body == BODY


def test_https_refuses_a_certificate_for_another_name(ca: trustme.CA) -> None:
    # The certificate is valid, for the address connected to even, but not for the URL's host.
    with _tls_receiver(ca, "other.batchscribe.test", "127.0.0.1") as receiver:
        result = _send_to(receiver, ssl_context=_client_context(ca))
    assert result.outcome is Outcome.RETRY
    assert result.error is not None
    assert "certificate" in result.error.lower()
    assert receiver.requests == []


def test_https_refuses_a_certificate_from_an_unknown_authority(ca: trustme.CA) -> None:
    with _tls_receiver(trustme.CA(), HOST) as receiver:
        result = _send_to(receiver, ssl_context=_client_context(ca))
    assert result.outcome is Outcome.RETRY
    assert result.error is not None
    assert "certificate verify failed" in result.error
    assert receiver.requests == []
