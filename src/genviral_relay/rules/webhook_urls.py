"""Where a webhook may be sent: the rules for its URL, checked at registration and again before every attempt
against the addresses the name resolves to then (a name that resolved to a public address at registration may
resolve to the instance-metadata address later: DNS rebinding). The attempt connects to the addresses checked here.

Allowed by default: `https://` to a global unicast address, decided by the relay's own table of forbidden
networks (`FORBIDDEN_NETWORKS`, from IANA's IPv4 and IPv6 special-purpose address registries), not by
`ipaddress`'s is_private/is_global, whose answers changed between Python versions (2002::/16 was allowed on 3.11
and refused on 3.13): the same URL is allowed or refused on every runtime. `allow_private` (the template's
AllowPrivateWebhookUrls) permits every address and `http://`, for local runs and private networks. A URL with
credentials is refused either way (they would travel in clear in every log of the receiver's proxy, and the
signature already authenticates the relay), and so is one with a control character (it would split the
request line, or make every attempt raise).
"""

from __future__ import annotations

import ipaddress
import unicodedata
from abc import ABC, abstractmethod
from dataclasses import dataclass
from urllib.parse import SplitResult, quote, urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_NOT_PUBLIC = "not a public address"
_PRIVATE = "a private address"
_LOOPBACK = "a loopback address"


def _table(*rows: tuple[str, str]) -> tuple[tuple[Network, str], ...]:
    return tuple((ipaddress.ip_network(network), reason) for network, reason in rows)


FORBIDDEN_NETWORKS = _table(
    ("0.0.0.0/8", f"{_NOT_PUBLIC} (this network)"),
    ("10.0.0.0/8", _PRIVATE),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("127.0.0.0/8", _LOOPBACK),
    ("169.254.0.0/16", "a link-local address (the instance-metadata address among them)"),
    ("172.16.0.0/12", _PRIVATE),
    ("192.0.0.0/24", f"{_NOT_PUBLIC} (IETF protocol assignments)"),
    ("192.0.2.0/24", f"{_NOT_PUBLIC} (documentation)"),
    ("192.88.99.0/24", f"{_NOT_PUBLIC} (the retired 6to4 relay anycast)"),
    ("192.168.0.0/16", _PRIVATE),
    ("198.18.0.0/15", f"{_NOT_PUBLIC} (benchmarking)"),
    ("198.51.100.0/24", f"{_NOT_PUBLIC} (documentation)"),
    ("203.0.113.0/24", f"{_NOT_PUBLIC} (documentation)"),
    ("224.0.0.0/4", f"{_NOT_PUBLIC} (multicast)"),
    ("255.255.255.255/32", f"{_NOT_PUBLIC} (the limited broadcast)"),
    ("240.0.0.0/4", f"{_NOT_PUBLIC} (reserved)"),
    ("::/128", f"{_NOT_PUBLIC} (unspecified)"),
    ("::1/128", _LOOPBACK),
    ("64:ff9b:1::/48", f"{_NOT_PUBLIC} (local-use NAT64)"),
    ("100::/64", f"{_NOT_PUBLIC} (discard-only)"),
    ("2001::/23", f"{_NOT_PUBLIC} (IETF protocol assignments, Teredo's 2001::/32 among them)"),
    ("2001:db8::/32", f"{_NOT_PUBLIC} (documentation)"),
    ("2002::/16", f"{_NOT_PUBLIC} (6to4)"),
    ("3fff::/20", f"{_NOT_PUBLIC} (documentation)"),
    ("fc00::/7", _PRIVATE),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", f"{_NOT_PUBLIC} (site-local)"),
    ("ff00::/8", f"{_NOT_PUBLIC} (multicast)"),
)
"""Where webhooks may not go by default, and why (the reason completes "url may not point to <host>: it is …"; the
first network that holds an address says why).
IANA's special-purpose registries, refused whole even where a few addresses inside are globally reachable (the
anycast ones in 192.0.0.0/24 and 2001::/23): no webhook endpoint lives there. IPv6 outside 2000::/3, the only
block IANA allocates as global unicast, is refused too (`address_problem`)."""

_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
"""Both carry an IPv4 address in their last 32 bits, and are allowed when it is (NAT64's well-known prefix may
only carry global IPv4 addresses, RFC 6052, and reaches exactly that one)."""
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")


class UrlRefusedError(ValueError):
    """The URL may not receive webhooks; the message says why, for the caller."""


class HostResolver(ABC):
    """Names to addresses (the system's DNS in a deployment): a port so the URL rules are tested on any answer."""

    @abstractmethod
    def addresses(self, host: str, port: int) -> list[str]:
        """Every address `host` resolves to now; raises OSError when it does not resolve."""


@dataclass(frozen=True)
class Destination:
    """Where one attempt goes: the URL's parts, and the addresses it may connect to, in order."""

    scheme: str
    host: str
    port: int
    target: str
    """The path and query, as sent in the request line (ASCII: see `encoded_url`)."""
    addresses: tuple[str, ...]
    """Every address the name resolved to, each checked: the attempt tries the next when one does not connect."""

    @property
    def address(self) -> str:
        return self.addresses[0]


def encoded_url(url: str) -> str:
    """`url` with each non-ASCII character after its host percent-encoded as UTF-8 (RFC 3986, 2.5): the form
    stored and sent, since a request line is ASCII. Everything else is kept as given, `%` escapes included; the
    scheme and host are not touched (a non-ASCII host is refused: its xn-- form is the one to give)."""
    if url.isascii():
        return url
    authority = url.find("://")
    if authority < 0:
        return url  # not an absolute URL: parse_url says so
    start = authority + 3
    end = next((index for index in range(start, len(url)) if url[index] in "/?#"), len(url))
    rest = "".join(quote(character, safe="") if not character.isascii() else character for character in url[end:])
    return url[:end] + rest


def _control_character(url: str) -> str | None:
    """The first C0 or C1 control character, or DEL, in `url` (NUL, TAB, CR and LF among them)."""
    return next((character for character in url if unicodedata.category(character) == "Cc"), None)


def parse_url(url: str, *, allow_private: bool) -> SplitResult:
    """The parts of the URL as sent (`encoded_url`), or UrlRefusedError for anything but an absolute http(s) URL
    the rules allow."""
    control = _control_character(url)
    if control is not None:
        # The code point and where, never the URL: some URLs are secrets themselves.
        raise UrlRefusedError(
            f"url must not contain a control character U+{ord(control):04X} (at character {url.index(control) + 1})"
        )
    try:
        parts = urlsplit(encoded_url(url))
        port = parts.port
    except ValueError as error:
        raise UrlRefusedError(f"url is not a valid URL: {error}") from None
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise UrlRefusedError("url must be an absolute https:// URL, such as https://example.com/hooks/genviral")
    if parts.scheme == "http" and not allow_private:
        raise UrlRefusedError("url must use https:// (http:// needs AllowPrivateWebhookUrls)")
    if parts.username is not None or parts.password is not None:
        raise UrlRefusedError("url must not carry credentials (user:password@); deliveries are signed instead")
    if not parts.hostname:
        raise UrlRefusedError("url has no host")
    if not parts.hostname.isascii():
        raise UrlRefusedError("url's host must be ASCII: write an international name in its xn-- form")
    if port == 0:
        raise UrlRefusedError("url has port 0")
    if any(character.isspace() for character in url):
        raise UrlRefusedError("url must not contain whitespace")
    return parts


def address_problem(address: IpAddress) -> str | None:
    """Why webhooks may not go to this address by default; None for a global unicast one."""
    if isinstance(address, ipaddress.IPv6Address) and (address in _IPV4_MAPPED or address in _NAT64):
        carried = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        problem = address_problem(carried)
        return None if problem is None else f"{problem} ({carried}, carried in IPv6)"
    for network, reason in FORBIDDEN_NETWORKS:
        if address.version == network.version and address in network:
            return reason
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST:
        return f"{_NOT_PUBLIC}: not a global unicast address (outside 2000::/3)"
    return None


def destination(url: str, resolver: HostResolver, *, allow_private: bool) -> Destination:
    """The addresses one attempt (or the registration's check) may connect to; UrlRefusedError when the URL, or
    any address its name resolves to, is not allowed. Every address is checked, not just the first: a name with
    one public and one private address is refused, and the attempt may fall back to any of them."""
    parts = parse_url(url, allow_private=allow_private)
    host = str(parts.hostname)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        literal: IpAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            found = resolver.addresses(host, port)
        except OSError:
            raise UrlRefusedError(f"the host {host} does not resolve") from None
        addresses = []
        for text in found:
            try:
                addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
            except ValueError:
                continue
        if not addresses:
            raise UrlRefusedError(f"the host {host} does not resolve")
    if not allow_private:
        for address in addresses:
            problem = address_problem(address)
            if problem is not None:
                where = "it is" if literal is not None else f"it resolves to {address},"
                raise UrlRefusedError(f"url may not point to {host}: {where} {problem}")
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    return Destination(scheme=parts.scheme, host=host, port=port, target=target, addresses=tuple(map(str, addresses)))
