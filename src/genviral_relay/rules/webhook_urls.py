"""Where a webhook may be sent: the rules for its URL, checked at registration and again before every attempt
against the addresses the name resolves to then (a name that resolved to a public address at registration may
resolve to the instance-metadata address later: DNS rebinding). The attempt connects to the address checked here.

Allowed by default: `https://` to a global unicast address. Refused: loopback (127.0.0.0/8, ::1), private
(10/8, 172.16/12, 192.168/16, fc00::/7), shared (100.64/10), link-local (169.254/16 with the instance-metadata
address, fe80::/10), unspecified, multicast, reserved and documentation ranges, and IPv4 addresses carried in IPv6
(::ffff:127.0.0.1). `allow_private` (the template's AllowPrivateWebhookUrls) permits all of these and `http://`,
for local runs and private networks. A URL with credentials is refused either way (they would travel in clear
in every log of the receiver's proxy, and the signature already authenticates the relay).
"""

from __future__ import annotations

import ipaddress
from abc import ABC, abstractmethod
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefusedError(ValueError):
    """The URL may not receive webhooks; the message says why, for the caller."""


class HostResolver(ABC):
    """Names to addresses (the system's DNS in a deployment): a port so the URL rules are tested on any answer."""

    @abstractmethod
    def addresses(self, host: str, port: int) -> list[str]:
        """Every address `host` resolves to now; raises OSError when it does not resolve."""


@dataclass(frozen=True)
class Destination:
    """Where one attempt goes: the URL's parts, and the address it connects to."""

    scheme: str
    host: str
    port: int
    target: str
    """The path and query, as sent in the request line."""
    address: str


def parse_url(url: str, *, allow_private: bool) -> SplitResult:
    """The URL's parts, or UrlRefusedError for anything but an absolute http(s) URL the rules allow."""
    try:
        parts = urlsplit(url)
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
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    if mapped is not None:
        return address_problem(mapped)
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (the instance-metadata address among them)"
    if address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if address.is_unspecified or address.is_multicast:
        return "not a public address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "not a public address"
    return None


_SHARED = ipaddress.ip_network("100.64.0.0/10")


def destination(url: str, resolver: HostResolver, *, allow_private: bool) -> Destination:
    """The address one attempt (or the registration's check) may connect to; UrlRefusedError when the URL, or
    any address its name resolves to, is not allowed. Every address is checked, not just the one used: a name
    with one public and one private address is refused."""
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
    return Destination(scheme=parts.scheme, host=host, port=port, target=target, address=str(addresses[0]))
