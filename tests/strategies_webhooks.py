"""Hypothesis strategies for the webhook tests: addresses a host may resolve to, host names,
callback URLs assembled from good and bad parts, and signing inputs."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from hypothesis import strategies as st

from batchscribe.webhooks import is_public_address

IPAddress = IPv4Address | IPv6Address

#: Ranges no webhook may reach, written independently of the sender's own list.
NON_PUBLIC_V4 = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
)
NON_PUBLIC_V6 = ("::1/128", "::/128", "fc00::/7", "fe80::/10", "ff00::/8")


@st.composite
def non_public_addresses(draw: st.DrawFn) -> IPAddress:
    """An address in a loopback, private, link-local, CGNAT, multicast or reserved range, or
    one of those IPv4 addresses dressed as IPv6 (IPv4-mapped, NAT64, 6to4)."""
    v4 = draw(st.sampled_from(NON_PUBLIC_V4).flatmap(lambda net: st.ip_addresses(network=net)))
    v6 = draw(st.sampled_from(NON_PUBLIC_V6).flatmap(lambda net: st.ip_addresses(network=net)))
    dressed = [
        v4,
        v6,
        IPv6Address(f"::ffff:{v4}"),
        IPv6Address(int(IPv6Address("64:ff9b::")) | int(v4)),
        IPv6Address((0x2002 << 112) | (int(v4) << 80)),
    ]
    return draw(st.sampled_from(dressed))


@st.composite
def public_addresses(draw: st.DrawFn) -> IPAddress:
    """A public unicast address (IPv4, IPv6, or IPv4-mapped IPv6 of a public IPv4)."""
    address = draw(st.ip_addresses().filter(is_public_address))
    if isinstance(address, IPv4Address) and draw(st.booleans()):
        return IPv6Address(f"::ffff:{address}")
    return address


@st.composite
def resolved_sets(draw: st.DrawFn) -> list[str | IPAddress]:
    """What a DNS lookup may answer: one to four addresses, public or not, as text or objects,
    sometimes repeated."""
    addresses = draw(
        st.lists(st.one_of(public_addresses(), non_public_addresses()), min_size=1, max_size=4)
    )
    return [draw(st.sampled_from([a, str(a)])) for a in addresses]


_LABEL = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\Z")


@st.composite
def host_names(draw: st.DrawFn) -> str:
    """A fully qualified, public-looking host name (two to four labels, alphabetic TLD)."""
    labels = draw(st.lists(_LABEL, min_size=1, max_size=3))
    tld = draw(st.from_regex(r"\A[a-z]{2,6}\Z"))
    return ".".join([*labels, tld])


@st.composite
def callback_urls(draw: st.DrawFn) -> str:
    """A URL assembled from parts that are sometimes wrong: scheme, credentials, host (name,
    IPv4, bracketed IPv6, bare number), port, path, query and fragment."""
    scheme = draw(st.sampled_from(["https", "https", "http", "ftp", "HTTPS", ""]))
    userinfo = draw(st.sampled_from(["", "", "", "user@", "user:pw@"]))
    host = draw(
        st.one_of(
            host_names(),
            st.ip_addresses(v=4).map(str),
            st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
            st.integers(0, 2**32 - 1).map(str),
            st.sampled_from(["localhost", "intranet", "", "a..b", "-x.com", "[::1", "[v1.x]"]),
        )
    )
    port = draw(st.one_of(st.just(""), st.integers(-1, 70000).map(lambda p: f":{p}")))
    path = draw(st.text(st.characters(codec="utf-8"), max_size=30).map(lambda p: "/" + p))
    query = draw(st.sampled_from(["", "?a=1", "?token=x&y=%20"]))
    fragment = draw(st.sampled_from(["", "", "#f"]))
    prefix = f"{scheme}://" if scheme else ""
    return f"{prefix}{userinfo}{host}{port}{path}{query}{fragment}"


@st.composite
def secret_keys(draw: st.DrawFn) -> bytes:
    """Raw signing-secret bytes of an allowed length (24 to 64)."""
    return draw(st.binary(min_size=24, max_size=64))


@st.composite
def message_ids(draw: st.DrawFn) -> str:
    """A `webhook-id`: letters, digits, `_` and `-`."""
    return draw(st.from_regex(r"\A[A-Za-z0-9_-]{1,40}\Z"))
