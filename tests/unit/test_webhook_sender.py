"""The sender without a network: a recording backend stands in for sockets, so these tests
see exactly which address the sender would connect to and what it would write."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from batchscribe.webhooks import generate_secret, sign
from batchscribe.webhooks.sender import USER_AGENT, DeliveryResult, Outcome, send
from tests.support.webhooks import RecordingBackend, endless_response, now
from tests.unit.test_import_graph import WEB_FRAMEWORKS, _modules, _unit

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"
BODY = b'{"type":"batch.job.completed","data":{"text":"the secret meeting notes"}}'
URL = "https://hooks.example.com/in/batchscribe?token=s3cr3t-query"


def _headers() -> dict[str, str]:
    return sign("msg_test", now(), BODY, [generate_secret()])


def _send(backend: RecordingBackend, *answers: str, **kwargs: object) -> DeliveryResult:
    return send(
        URL,
        BODY,
        _headers(),
        resolver=lambda host, port: list(answers),
        network_backend=backend,
        **kwargs,  # type: ignore[arg-type]
    )


def test_connects_to_the_resolved_address_with_the_name_for_host_and_tls() -> None:
    backend = RecordingBackend()
    result = _send(backend, PUBLIC_V4)
    assert result.outcome is Outcome.DELIVERED
    assert backend.connected == [(PUBLIC_V4, 443)]
    assert backend.tls_server_names == ["hooks.example.com"]
    request_line, *lines = backend.request_head.split("\r\n")
    assert request_line == "POST /in/batchscribe?token=s3cr3t-query HTTP/1.1"
    assert {
        "Host: hooks.example.com",
        "Content-Type: application/json",
        f"Content-Length: {len(BODY)}",
        f"User-Agent: {USER_AGENT}",
        "webhook-id: msg_test",
    } <= set(lines)
    assert any(line.startswith("webhook-signature: v1,") for line in lines)
    assert bytes(backend.written).endswith(BODY)


def test_the_caller_cannot_override_host_or_length() -> None:
    backend = RecordingBackend()
    headers = {**_headers(), "Host": "169.254.169.254", "Content-Length": "1"}
    send(URL, BODY, headers, resolver=lambda h, p: [PUBLIC_V4], network_backend=backend)
    lines = backend.request_head.split("\r\n")
    assert [line for line in lines if line.startswith(("Host:", "Content-Length:"))] == [
        "Host: hooks.example.com",
        f"Content-Length: {len(BODY)}",
    ]


def test_any_non_public_answer_refuses_the_whole_host() -> None:
    backend = RecordingBackend()
    result = _send(backend, PUBLIC_V4, "10.0.0.7")
    assert result.outcome is Outcome.REFUSED_ADDRESS
    assert result.retryable
    assert backend.connected == []
    assert result.error is not None
    assert "10.0.0.7" not in result.error  # no oracle for internal DNS


def test_an_ipv4_mapped_answer_is_connected_to_as_plain_ipv4() -> None:
    backend = RecordingBackend()
    assert _send(backend, f"::ffff:{PUBLIC_V4}").outcome is Outcome.DELIVERED
    assert backend.connected == [(PUBLIC_V4, 443)]


def test_the_next_checked_address_is_tried_when_one_does_not_answer() -> None:
    backend = RecordingBackend(refuse={PUBLIC_V6})
    result = _send(backend, PUBLIC_V6, PUBLIC_V4)
    assert result.outcome is Outcome.DELIVERED
    assert backend.connected == [(PUBLIC_V6, 443), (PUBLIC_V4, 443)]


def test_when_no_address_answers_the_attempt_is_retried() -> None:
    backend = RecordingBackend(refuse={PUBLIC_V4})
    result = _send(backend, PUBLIC_V4)
    assert result.outcome is Outcome.RETRY
    assert result.error == "could not connect: [Errno 111] Connection refused"


def test_a_failed_lookup_is_retried() -> None:
    def no_such_host(host: str, port: int) -> list[str]:
        raise OSError(-2, "Name or service not known")

    result = send(URL, BODY, _headers(), resolver=no_such_host, network_backend=RecordingBackend())
    assert result.outcome is Outcome.RETRY
    assert result.error == "could not resolve hooks.example.com"


def test_a_hung_lookup_ends_with_the_attempt() -> None:
    release = threading.Event()

    def hung(host: str, port: int) -> list[str]:
        release.wait(30)
        return [PUBLIC_V4]

    backend = RecordingBackend()
    try:
        result = send(URL, BODY, _headers(), timeout=0.2, resolver=hung, network_backend=backend)
    finally:
        release.set()
    assert result.outcome is Outcome.RETRY
    assert result.error == "looking up hooks.example.com took too long"
    assert backend.connected == []


def test_a_literal_address_is_not_resolved() -> None:
    def must_not_resolve(host: str, port: int) -> list[str]:
        raise AssertionError("resolved a literal address")

    backend = RecordingBackend()
    result = send(
        f"https://{PUBLIC_V4}:8443/hook",
        BODY,
        _headers(),
        resolver=must_not_resolve,
        network_backend=backend,
    )
    assert result.outcome is Outcome.DELIVERED
    assert backend.connected == [(PUBLIC_V4, 8443)]


def test_a_url_that_no_longer_validates_is_final() -> None:
    backend = RecordingBackend()
    result = send("http://10.0.0.5/hook", BODY, _headers(), network_backend=backend)
    assert result.outcome is Outcome.INVALID_URL
    assert not result.retryable
    assert backend.connected == []


def test_the_response_body_is_read_only_up_to_the_limit() -> None:
    backend = RecordingBackend(endless_response(200))
    result = _send(backend, PUBLIC_V4, max_response_bytes=100)
    assert result.outcome is Outcome.DELIVERED
    assert result.response_body == b"x" * 100


def test_retry_after_is_reported_in_seconds() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(minutes=10), usegmt=True)
    for value, low, high in (("120", 120, 120), (later, 500, 600)):
        backend = RecordingBackend(
            f"HTTP/1.1 429 Too Many\r\nRetry-After: {value}\r\nContent-Length: 0\r\n\r\n".encode()
        )
        result = _send(backend, PUBLIC_V4)
        assert result.outcome is Outcome.RETRY
        assert result.retry_after_seconds is not None
        assert low <= result.retry_after_seconds <= high


def test_not_http_is_a_retry() -> None:
    result = _send(RecordingBackend(b"SSH-2.0-OpenSSH_9.6\r\n"), PUBLIC_V4)
    assert result.outcome is Outcome.RETRY
    assert result.error == "the receiver's answer is not valid HTTP/1.1"


def test_the_log_names_host_status_and_duration_but_not_body_path_or_signature(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = _headers()
    send(URL, BODY, headers, resolver=lambda h, p: [PUBLIC_V4], network_backend=RecordingBackend())
    [record] = [r for r in caplog.records if r.name == "batchscribe.webhooks.sender"]
    fields = vars(record)
    assert fields["webhook_host"] == "hooks.example.com"
    assert fields["status"] == 204
    assert fields["outcome"] == "delivered"
    assert fields["duration_ms"] >= 0
    text = " ".join(str(v) for v in fields.values()) + caplog.text
    for secret in ("secret meeting notes", "s3cr3t-query", headers["webhook-signature"]):
        assert secret not in text


#: The library part of `batchscribe.webhooks` (signing, URL and address rules, one attempt);
#: the delivery machinery beside it (store, hook, sender thread, CLI) uses the database.
LIBRARY = {
    f"batchscribe.webhooks{suffix}"
    for suffix in ("", ".signing", ".urls", ".addresses", ".transport", ".sender", ".exceptions")
}


def test_the_webhook_library_needs_no_framework_database_or_settings() -> None:
    modules = _modules()
    units = {_unit(name) for name in modules} - {None}
    ours = {name: imports for name, imports in modules.items() if name in LIBRARY}
    assert set(ours) == LIBRARY
    for name, imports in ours.items():
        used = {_unit(i) for i in imports} & units
        assert used <= {"webhooks"}, f"{name} uses {sorted(used - {'webhooks'})}"
        assert not any(i.startswith((*WEB_FRAMEWORKS, "sqlite3", "sqlalchemy")) for i in imports)


def test_the_webhook_machinery_sits_below_jobs_services_and_http() -> None:
    """Jobs write deliveries through the webhooks' hook and the HTTP layer shows them, so the
    webhooks package must never import those (nor a web framework) back."""
    modules = _modules()
    for name, imports in modules.items():
        if _unit(name) != "webhooks":
            continue
        used = {_unit(i) for i in imports}
        assert not used & {"jobs", "services", "http", "pipeline", "events"}, name
        assert not any(i.startswith(WEB_FRAMEWORKS) for i in imports), name
