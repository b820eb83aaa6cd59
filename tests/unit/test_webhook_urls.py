"""Where a webhook may go: `callback_url` checked at submission, and the public-address rule
applied to every address a host resolves to."""

from __future__ import annotations

import ipaddress

import pytest

from batchscribe.webhooks import InvalidCallbackUrl, is_public_address, validate_callback_url
from batchscribe.webhooks.addresses import address_problem

# -- addresses -------------------------------------------------------------------------------

NOT_PUBLIC = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),  # the cloud metadata service
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("192.0.0.8", "IETF"),
    ("192.0.2.10", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.99", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("224.0.0.251", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "unique-local"),
    ("fd12:3456::1", "unique-local"),
    ("fe80::1", "link-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:10.0.0.1", "private"),
    ("::127.0.0.1", "IPv4-compatible"),
    ("::8.8.8.8", "IPv4-compatible"),  # deprecated form, refused whatever it embeds
    ("64:ff9b::7f00:1", "embeds a loopback"),  # NAT64 of 127.0.0.1
    ("64:ff9b::a9fe:a9fe", "embeds a link-local"),  # NAT64 of 169.254.169.254
    ("64:ff9b:1::1", "local-use NAT64"),
    ("2002:7f00:1::1", "embeds a loopback"),  # 6to4 of 127.0.0.1
    ("2002:c0a8:101::1", "embeds a private"),  # 6to4 of 192.168.1.1
    ("2001::1", "IETF"),  # Teredo
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("100::1", "discard-only"),
    ("4000::1", "reserved"),
    ("fe80::1%eth0", "link-local"),
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "172.32.0.1",  # just past 172.16.0.0/12
    "100.128.0.1",  # just past 100.64.0.0/10
    "2606:4700:4700::1111",
    "2a00:1450:4001:82b::200e",
    "::ffff:8.8.8.8",  # IPv4-mapped public address: the same as 8.8.8.8
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "2002:808:808::1",  # 6to4 of 8.8.8.8
]


@pytest.mark.parametrize(("address", "label"), NOT_PUBLIC)
def test_non_public_addresses_are_refused_with_a_reason(address: str, label: str) -> None:
    assert not is_public_address(address)
    problem = address_problem(ipaddress.ip_address(address))
    assert problem is not None
    assert label in problem


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public_address(address)


# -- callback URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.example.com/batchscribe", "https://hooks.example.com/batchscribe"),
        ("HTTPS://Hooks.Example.COM", "https://hooks.example.com/"),
        ("https://hooks.example.com:8443/a?b=c&d=e", "https://hooks.example.com:8443/a?b=c&d=e"),
        ("https://hooks.example.com:443/x", "https://hooks.example.com/x"),
        ("https://hooks.example.com./x", "https://hooks.example.com/x"),
        ("https://bücher.example/hook", "https://xn--bcher-kva.example/hook"),
        ("https://hooks.example.com/caf\u00e9", "https://hooks.example.com/caf%C3%A9"),
        ("https://8.8.8.8/hook", "https://8.8.8.8/hook"),
        ("https://[2606:4700:4700::1111]:8443/h", "https://[2606:4700:4700::1111]:8443/h"),
        ("https://[::ffff:8.8.8.8]/h", "https://8.8.8.8/h"),
        ("https://\uff18.8.8.8/h", "https://8.8.8.8/h"),
    ],
)
def test_accepted_urls_are_normalised(url: str, expected: str) -> None:
    checked = validate_callback_url(url)
    assert checked.url == expected
    assert validate_callback_url(checked.url) == checked


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hooks.example.com/", "'http' scheme"),
        ("ftp://hooks.example.com/", "'ftp' scheme"),
        ("hooks.example.com/path", "no scheme"),
        ("javascript:alert(1)", "'javascript' scheme"),
        ("https://", "no host"),
        ("https:///path", "no host"),
        ("https://user:pass@hooks.example.com/", "credentials"),
        ("https://token@hooks.example.com/", "credentials"),
        ("https://hooks.example.com@127.0.0.1/", "credentials"),
        ("https://hooks.example.com:0/", "invalid port"),
        ("https://hooks.example.com:65536/", "invalid port"),
        ("https://hooks.example.com:abc/", "invalid port"),
        ("https://hooks.example.com:/", "empty port"),
        ("https://hooks.example.com/a b", "spaces"),
        ("https://hooks.example.com/\n", "control characters"),
        ("https://hooks.example.com\\@evil.example/", "backslashes"),
        ("https://hooks.example.com/#frag", "fragment"),
        ("https://" + "a" * 2040 + ".com/", "2053 characters long"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://10.0.0.8/", "private"),
        ("https://[::1]/", "loopback"),
        ("https://[::ffff:127.0.0.1]/", "loopback"),
        ("https://[fe80::1%25eth0]/", "zone index"),
        ("https://[::1/", "not a valid URL"),
        ("https://[v1.fe]/", "invalid IPv6"),
        ("https://2130706433/", "not a dotted-quad"),  # 127.0.0.1 as one number
        ("https://0x7f.1/", "not a dotted-quad"),
        ("https://127.1/", "not a dotted-quad"),
        ("https://0177.0.0.1/", "not a dotted-quad"),
        ("https://\uff10x7f.1/", "not a dotted-quad"),  # full-width digits
        ("https://\uff11\uff12\uff17.0.0.1/", "loopback"),
        ("https://localhost/", "localhost"),
        ("https://api.localhost:8000/", "localhost"),
        ("https://metadata/computeMetadata", "single-label"),
        ("https://exa mple.com/", "spaces"),
        ("https://exa_mple..com/", "not a valid domain name"),
        ("https://-bad.example.com/", "not a valid domain name"),
        ("", "is empty"),
    ],
)
def test_refused_urls_say_what_is_wrong_and_what_is_accepted(url: str, problem: str) -> None:
    with pytest.raises(InvalidCallbackUrl) as info:
        validate_callback_url(url)
    message = str(info.value)
    assert problem in message
    assert "expected an https:// URL of at most 2048 characters" in message


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost:9000/",
        "https://10.0.0.8/",
        "http://receiver/hook",
        "http://[::1]:8080/",
    ],
)
def test_private_networks_setting_allows_http_and_local_addresses(url: str) -> None:
    assert validate_callback_url(url, allow_private=True).url.rstrip("/") == url.rstrip("/")
    with pytest.raises(InvalidCallbackUrl):
        validate_callback_url(url)


def test_private_networks_setting_still_refuses_other_schemes_and_credentials() -> None:
    for url in ("ftp://127.0.0.1/", "http://u:p@127.0.0.1/", "file:///etc/passwd"):
        with pytest.raises(InvalidCallbackUrl, match="http:// or https://"):
            validate_callback_url(url, allow_private=True)


def test_the_checked_parts_are_what_a_request_is_built_from() -> None:
    checked = validate_callback_url("https://Hooks.Example.com:8443/in?x=1")
    assert (checked.scheme, checked.host, checked.port, checked.target) == (
        "https",
        "hooks.example.com",
        8443,
        "/in?x=1",
    )
    assert checked.host_header == "hooks.example.com:8443"
    assert checked.ip is None
    v6 = validate_callback_url("https://[2606:4700:4700::1111]/")
    assert v6.host == "2606:4700:4700::1111"
    assert v6.host_header == "[2606:4700:4700::1111]"
