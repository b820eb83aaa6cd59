"""Which IP addresses a webhook may be sent to: public unicast addresses only.

The rule is an explicit list of special-purpose ranges (IANA's IPv4 and IPv6 special-purpose
address registries) rather than `ipaddress`'s `is_global`, whose answers changed between
Python patch releases; the list below is the same on every interpreter and is a superset of
what `is_global` rejects, so a test can check that one against the other.

Addresses that embed an IPv4 address are judged by the address they lead to:
- IPv4-mapped (`::ffff:a.b.c.d`): the same socket reaches `a.b.c.d`, so it is that address
  (`::ffff:127.0.0.1` is loopback). The sender also connects to the plain IPv4 form.
- NAT64 (`64:ff9b::/96`): a NAT64 gateway forwards to the embedded IPv4 address.
- 6to4 (`2002::/16`): a 6to4 relay forwards to the embedded IPv4 address.
Deprecated or opaque embeddings are refused whole: IPv4-compatible (`::/96`, deprecated by
RFC 4291 and never valid on the wire) and Teredo (`2001::/32`, inside `2001::/23`; the client
address is obfuscated and nobody hosts a webhook receiver on one). Outside these, an IPv6
address must be global unicast (`2000::/3`), which leaves out unique-local `fc00::/7`,
link-local `fe80::/10`, multicast `ff00::/8` and every unassigned or reserved block.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address

# (network, what a reader or an operator's log line calls it)
_IPV4_SPECIAL: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), label)
    for net, label in (
        ("0.0.0.0/8", "unspecified"),  # "this network"; 0.0.0.0 reaches the local host
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (cloud metadata service)"),  # 169.254.169.254
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "deprecated 6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),  # includes the broadcast address 255.255.255.255
    )
)

_IPV6_GLOBAL_UNICAST = IPv6Network("2000::/3")
_IPV6_SPECIAL: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), label)
    for net, label in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible (deprecated)"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignments (includes Teredo)"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("3ffe::/16", "reserved (former 6bone)"),
        ("fc00::/7", "unique-local (private)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
    )
)
_NAT64 = IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = IPv6Network("2002::/16")


def canonical(ip: IPAddress) -> IPAddress:
    """The address a socket really reaches: an IPv4-mapped IPv6 address becomes its IPv4 form."""
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address a NAT64 or 6to4 address forwards to, if it is one."""
    if ip in _NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR:
        return ip.sixtofour
    return None


def address_problem(ip: IPAddress) -> str | None:
    """Why `ip` is not a public unicast address (a short label for logs), or None if it is."""
    ip = canonical(ip)
    if isinstance(ip, IPv4Address):
        return next((label for net, label in _IPV4_SPECIAL if ip in net), None)
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        problem = address_problem(embedded)
        return f"embeds a {problem} IPv4 address" if problem else None
    special = next((label for net, label in _IPV6_SPECIAL if ip in net), None)
    if special:
        return special
    if ip not in _IPV6_GLOBAL_UNICAST:
        return "reserved"
    if ip.scope_id:
        return "scoped (zone index)"
    return None


def is_public_address(ip: IPAddress | str) -> bool:
    """True when a webhook may be sent to `ip`: a public unicast address on the internet.

    False for loopback, private (RFC 1918, `fc00::/7`), link-local (including the metadata
    address 169.254.169.254 and `fe80::/10`), carrier-grade NAT `100.64.0.0/10`, multicast,
    unspecified, reserved and documentation ranges, and for IPv6 addresses that embed one of
    those IPv4 addresses (`::ffff:127.0.0.1`, `64:ff9b::a00:1`, `2002:a00:1::`).
    """
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    return address_problem(address) is None
