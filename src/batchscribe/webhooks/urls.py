"""`callback_url` validation at submission: the URL a job's webhook will be sent to.

Checked here, without any network access: the scheme (`https`; `http` too when private networks
are allowed), the length, a host name or literal IP address, no credentials, a valid port. Host
names are normalised to their ASCII (IDNA) form; a literal IP address must be public right away
(a host name is resolved, and each of its addresses checked, at every delivery attempt, since
DNS answers change). Names that always mean this machine (`localhost`, `*.localhost`) are
refused like loopback addresses, and so are single-label names (`intranet`), which the resolver
completes with its search domains into internal names.

The result keeps the parts the sender uses as they were checked (scheme, ASCII host, port,
request target), so no second parser can read the URL differently later.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import idna

from batchscribe.webhooks.addresses import IPAddress, address_problem, canonical
from batchscribe.webhooks.exceptions import InvalidCallbackUrl

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"https": 443, "http": 80}
# Characters left as they are in the path and query; anything else (spaces are refused
# earlier, non-ASCII letters) is percent-encoded. `%` stays so existing escapes survive.
_TARGET_SAFE = "/?:@!$&'()*+,;=-._~%"
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def accepted(*, allow_private: bool) -> str:
    """One sentence saying which callback URLs are accepted, for error messages and docs."""
    if allow_private:
        return (
            f"an http:// or https:// URL of at most {MAX_URL_LENGTH} characters with a host "
            "name or IP address, an optional port, and no user:password@ part"
        )
    return (
        f"an https:// URL of at most {MAX_URL_LENGTH} characters with a public host name or "
        "public IP address, an optional port, and no user:password@ part"
    )


@dataclass(frozen=True)
class CallbackUrl:
    """A checked callback URL, split into the parts a request is built from."""

    scheme: str
    #: ASCII host: an IDNA-encoded, lower-case name without a trailing dot, or an IP address
    #: (IPv6 without brackets).
    host: str
    port: int
    #: Path and query as sent on the request line, never empty.
    target: str
    #: The host as an address when the URL names one literally.
    ip: IPAddress | None = None

    @property
    def host_header(self) -> str:
        """The `Host` header value: the host, in brackets for IPv6, with a non-default port."""
        host = f"[{self.host}]" if isinstance(self.ip, ipaddress.IPv6Address) else self.host
        return host if DEFAULT_PORTS[self.scheme] == self.port else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The normalised URL, to store with the job and show back to the user."""
        return f"{self.scheme}://{self.host_header}{self.target}"

    def __str__(self) -> str:
        return self.url


def _refuse(problem: str, *, allow_private: bool) -> InvalidCallbackUrl:
    return InvalidCallbackUrl(
        f"callback_url {problem}; expected {accepted(allow_private=allow_private)}"
    )


def _normalise_name(name: str, *, allow_private: bool) -> str:
    """The ASCII form of a host name, or InvalidCallbackUrl."""
    name = name[:-1] if name.endswith(".") else name
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii") if name else ""
    except idna.IDNAError:
        raise _refuse(
            "has a host name that is not a valid domain name", allow_private=allow_private
        ) from None
    if not ascii_name or len(ascii_name) > 253:
        raise _refuse("has no valid host name", allow_private=allow_private)
    if not all(_LABEL.match(label) for label in ascii_name.split(".")):
        raise _refuse(
            "has a host name with characters a domain name cannot have",
            allow_private=allow_private,
        )
    return ascii_name


def _is_legacy_ipv4(host: str) -> bool:
    """True for a host the C library reads as an IPv4 address though it is not dotted-quad
    (`2130706433`, `0x7f.1`, `127.1`): refused rather than guessed at."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def validate_callback_url(url: str, *, allow_private: bool = False) -> CallbackUrl:
    """Check a `callback_url` given with a job and return its normalised parts.

    `allow_private` (CALLBACK_ALLOW_PRIVATE_NETWORKS) also accepts `http` and private, loopback
    and other non-public literal addresses, for tests and private deployments. Raises
    `InvalidCallbackUrl` with a message saying what is wrong and what is accepted.
    """
    if not isinstance(url, str) or not url:
        raise _refuse("is empty", allow_private=allow_private)
    if len(url) > MAX_URL_LENGTH:
        raise _refuse(f"is {len(url)} characters long", allow_private=allow_private)
    if _CONTROL_OR_SPACE.search(url) or "\\" in url:
        raise _refuse(
            "contains spaces, control characters or backslashes", allow_private=allow_private
        )
    try:
        parts = urlsplit(url)
    except ValueError:  # unbalanced brackets around an IPv6 address
        raise _refuse("is not a valid URL", allow_private=allow_private) from None
    scheme = parts.scheme.lower()
    allowed_schemes = ("https", "http") if allow_private else ("https",)
    if scheme not in allowed_schemes:
        shown = f"'{scheme}'" if scheme else "no"
        raise _refuse(f"has {shown} scheme", allow_private=allow_private)
    if "@" in parts.netloc:
        raise _refuse("contains credentials (user@ or user:password@)", allow_private=allow_private)
    if parts.fragment or url.endswith("#"):
        raise _refuse("contains a fragment (#...)", allow_private=allow_private)
    try:
        port = parts.port
    except ValueError:
        raise _refuse(
            "has an invalid port (1-65535 allowed)", allow_private=allow_private
        ) from None
    if port == 0:
        raise _refuse("has an invalid port (1-65535 allowed)", allow_private=allow_private)
    if parts.netloc.endswith(":"):
        raise _refuse("has an empty port", allow_private=allow_private)
    raw_host = parts.hostname or ""
    if not raw_host:
        raise _refuse("has no host", allow_private=allow_private)

    bracketed = parts.netloc.startswith("[")
    if bracketed:
        try:
            ip: IPAddress | None = ipaddress.IPv6Address(raw_host)
        except ValueError:
            raise _refuse("has an invalid IPv6 address", allow_private=allow_private) from None
        host = raw_host
    else:
        # Normalised first, so full-width digits cannot dress an address up as a name.
        host = _normalise_name(raw_host, allow_private=allow_private)
        try:
            ip = ipaddress.IPv4Address(host)
        except ValueError:
            ip = None
        if ip is None and _is_legacy_ipv4(host):
            raise _refuse(
                "has a numeric host that is not a dotted-quad IPv4 address",
                allow_private=allow_private,
            )
    if ip is not None:
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            raise _refuse("has an IPv6 zone index (%...)", allow_private=allow_private)
        ip = canonical(ip)
        problem = address_problem(ip)
        if problem and not allow_private:
            raise _refuse(f"points to a {problem} address", allow_private=allow_private)
        host = str(ip)
    elif not allow_private:
        if host == "localhost" or host.endswith(".localhost"):
            raise _refuse("points to this machine (localhost)", allow_private=allow_private)
        if "." not in host:
            # A single label is completed by the resolver's search domains: an internal name.
            raise _refuse(
                "has a single-label host name (use the fully qualified name)",
                allow_private=allow_private,
            )

    target = quote(parts.path or "/", safe=_TARGET_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_TARGET_SAFE)
    if not target.startswith("/"):
        raise _refuse("has a path that does not start with /", allow_private=allow_private)
    return CallbackUrl(
        scheme=scheme,
        host=host,
        port=port if port is not None else DEFAULT_PORTS[scheme],
        target=target,
        ip=ip,
    )
