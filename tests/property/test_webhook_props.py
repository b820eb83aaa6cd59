"""Properties of the webhook sender's safety rules, over generated hosts, DNS answers and URLs:
- no connection ever goes to a non-public address, and every connection goes to an address that
  was checked, even when DNS answers differently on a second lookup (rebinding);
- the public-address rule is never looser than Python's own `is_global`;
- `validate_callback_url` either refuses with InvalidCallbackUrl or returns a URL meeting every
  rule, for any input text;
- signatures verify with an independent implementation, with every secret of a rotation;
- a job's stored webhook, attempted by the sender, reaches only checked public addresses
  whatever URL was stored and whatever its host resolves to.
"""

from __future__ import annotations

import functools
import ipaddress
import tempfile
from ipaddress import IPv4Address, IPv6Address

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchscribe.db import Database
from batchscribe.jobs.store import JobStore
from batchscribe.webhooks import (
    InvalidCallbackUrl,
    SigningSecret,
    is_public_address,
    sign,
    validate_callback_url,
)
from batchscribe.webhooks.addresses import canonical
from batchscribe.webhooks.deliveries import DeliveryStatus
from batchscribe.webhooks.sender import Outcome, send
from tests.strategies import (
    IPAddress,
    callback_urls,
    host_names,
    message_ids,
    non_public_addresses,
    public_addresses,
    resolved_sets,
    secret_keys,
)
from tests.support.jobs import job_store
from tests.support.webhook_jobs import finish_with_callback, sender, webhook_settings
from tests.support.webhooks import RecordingBackend, verify_signature

BODY = b'{"type":"batch.job.completed"}'
HEADERS = {"webhook-id": "msg_prop", "webhook-timestamp": "1", "webhook-signature": "v1,x"}
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _checked(answers: list[str | IPAddress]) -> set[IPAddress]:
    return {canonical(ipaddress.ip_address(a) if isinstance(a, str) else a) for a in answers}


@FAST
@given(host=host_names(), answers=resolved_sets(), port=st.integers(1, 65535))
def test_no_connection_ever_goes_to_a_non_public_address(
    host: str, answers: list[str | IPAddress], port: int
) -> None:
    backend = RecordingBackend()
    result = send(
        f"https://{host}:{port}/hook",
        BODY,
        HEADERS,
        resolver=lambda h, p: answers,
        network_backend=backend,
    )
    connected = {ipaddress.ip_address(address) for address, _ in backend.connected}
    assert connected <= _checked(answers)
    assert all(is_public_address(address) for address in connected)
    if all(is_public_address(a) for a in _checked(answers)):
        assert result.outcome is Outcome.DELIVERED
        assert len(connected) == 1
    else:
        assert result.outcome is Outcome.REFUSED_ADDRESS
        assert connected == set()


@FAST
@given(
    host=host_names(),
    first=st.lists(public_addresses(), min_size=1, max_size=3),
    later=st.lists(non_public_addresses(), min_size=1, max_size=3),
)
def test_dns_rebinding_cannot_move_the_connection(
    host: str, first: list[IPAddress], later: list[IPAddress]
) -> None:
    """The resolver answers public addresses once, then private ones: the connection still
    goes to a first-answer address, because the sender never looks the name up again."""
    lookups: list[str] = []

    def rebinding(name: str, port: int) -> list[IPAddress]:
        lookups.append(name)
        return first if len(lookups) == 1 else later

    backend = RecordingBackend()
    result = send(
        f"https://{host}/hook", BODY, HEADERS, resolver=rebinding, network_backend=backend
    )
    assert result.outcome is Outcome.DELIVERED
    assert lookups == [host]
    [(address, port)] = backend.connected
    assert ipaddress.ip_address(address) in _checked(list(first))
    assert port == 443
    assert backend.tls_server_names == [host]


@FAST
@given(answers=resolved_sets())
def test_private_networks_setting_still_connects_only_to_checked_addresses(
    answers: list[str | IPAddress],
) -> None:
    backend = RecordingBackend()
    result = send(
        "http://receiver.test:8080/hook",
        BODY,
        HEADERS,
        allow_private=True,
        resolver=lambda h, p: answers,
        network_backend=backend,
    )
    assert result.outcome is Outcome.DELIVERED
    [(address, port)] = backend.connected
    assert ipaddress.ip_address(address) in _checked(answers)
    assert port == 8080


def _effective(address: IPAddress) -> IPAddress:
    """The address a packet really ends at, for embeddings that forward to IPv4."""
    address = canonical(address)
    if isinstance(address, IPv6Address):
        if address in ipaddress.ip_network("64:ff9b::/96"):
            return IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


@settings(max_examples=1000, deadline=None)
@given(address=st.ip_addresses())
def test_public_is_never_looser_than_pythons_is_global(address: IPAddress) -> None:
    if is_public_address(address):
        effective = _effective(address)
        assert effective.is_global
        assert not effective.is_multicast


@settings(max_examples=500, deadline=None)
@given(address=non_public_addresses())
def test_every_special_range_is_refused(address: IPAddress) -> None:
    assert not is_public_address(address)


@settings(max_examples=500, deadline=None)
@given(url=st.one_of(callback_urls(), st.text(max_size=80)), allow_private=st.booleans())
def test_a_url_is_either_refused_clearly_or_meets_every_rule(url: str, allow_private: bool) -> None:
    try:
        checked = validate_callback_url(url, allow_private=allow_private)
    except InvalidCallbackUrl as exc:
        refusal: str | None = str(exc)
    else:
        refusal = None
    if refusal is not None:
        assert refusal.startswith("callback_url ")
        assert "expected an" in refusal
        return
    assert checked.scheme in (("https", "http") if allow_private else ("https",))
    assert len(url) <= 2048
    assert 1 <= checked.port <= 65535
    assert checked.host
    assert checked.host.isascii()
    assert "@" not in checked.host_header
    assert checked.target.startswith("/")
    assert checked.target.isascii()
    assert not any(c.isspace() for c in checked.url)
    if checked.ip is not None and not allow_private:
        assert is_public_address(checked.ip)
    if checked.ip is None and not allow_private:
        assert "." in checked.host
    assert validate_callback_url(checked.url, allow_private=allow_private) == checked


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(secret_keys(), min_size=1, max_size=3),
    msg_id=message_ids(),
    timestamp=st.integers(0, 2**33),
    body=st.text(max_size=200).map(str.encode),
)
def test_every_secret_of_a_rotation_verifies_and_tampering_does_not(
    keys: list[bytes], msg_id: str, timestamp: int, body: bytes
) -> None:
    secrets = [SigningSecret(key) for key in keys]
    headers = sign(msg_id, timestamp, body, secrets)
    for secret in secrets:
        assert verify_signature(secret.encoded, headers, body)
        assert not verify_signature(secret.encoded, headers, body + b" ")
        moved = {**headers, "webhook-timestamp": str(timestamp + 1)}
        assert not verify_signature(secret.encoded, moved, body)
    # HMAC pads keys with zero bytes, so only a key that differs after padding is an outsider.
    outsider = bytes(range(1, 33))
    if all(key.ljust(64, b"\0") != outsider.ljust(64, b"\0") for key in keys):
        assert not verify_signature(SigningSecret(outsider).encoded, headers, body)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    url=st.one_of(
        host_names().map(lambda host: f"https://{host}/hook"),
        callback_urls(),
    ),
    answers=resolved_sets(),
)
def test_a_stored_delivery_never_reaches_a_non_public_address(
    url: str, answers: list[str | IPAddress]
) -> None:
    """The whole delivery path (a job's stored webhook, leased, signed and attempted by the
    sender) with whatever URL got stored and whatever its host resolves to: connections go
    only to checked public addresses, and a refused delivery says why without addresses."""
    backend = RecordingBackend()
    store = _shared_store()
    db = store.db
    job = finish_with_callback(store, url)
    dispatcher = sender(
        db,
        settings=webhook_settings(callback_allow_private_networks=False),
        resolver=lambda host, port: answers,
        network_backend=backend,
    )
    [delivery] = dispatcher.store.claim(dispatcher.owner, 1, 60)
    assert delivery.job_id == job.id
    status = dispatcher.attempt(delivery)
    attempts = dispatcher.store.attempts(delivery.id)
    connected = {ipaddress.ip_address(address) for address, _ in backend.connected}
    assert all(is_public_address(address) for address in connected)
    assert connected <= _checked(answers) | _literal(url)
    outcome = attempts[-1].outcome
    if status is DeliveryStatus.DELIVERED:
        assert len(connected) == 1
    else:
        assert connected == set()
        assert outcome in ("refused_address", "invalid_url")
        for answer in answers:
            assert str(answer) not in (attempts[-1].error or "")


@functools.cache
def _shared_store() -> JobStore:
    """One migrated SQLite database for every example (migrating per example is slow), whose
    deliveries are not retried (a window of 0), so each example finds only its own due."""
    directory = tempfile.mkdtemp(prefix="webhook-props-")
    return job_store(Database(f"sqlite:///{directory}/app.db"), callback_window_seconds=0.0)


def _literal(url: str) -> set[IPAddress]:
    """The address a URL names literally, if it passes the rules."""
    try:
        checked = validate_callback_url(url)
    except InvalidCallbackUrl:
        return set()
    return {checked.ip} if checked.ip is not None else set()
