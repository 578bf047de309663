"""Where webhooks may go: the URL rules on a hostile list, with the resolver a double (no DNS)."""

from __future__ import annotations

import inspect
import ipaddress
import re
from pathlib import Path

import pytest

from genviral_relay.rules import webhook_urls
from genviral_relay.rules.webhook_urls import (
    FORBIDDEN_NETWORKS,
    UrlRefusedError,
    address_problem,
    destination,
    encoded_url,
)
from tests.support.doubles import StaticResolver

RESOLVER = StaticResolver(
    {
        "hooks.example.com": ["93.184.216.34"],
        "loopback.example.com": ["127.0.0.1"],
        "metadata.example.com": ["169.254.169.254"],
        "mixed.example.com": ["93.184.216.34", "10.0.0.1"],
        "v6.example.com": ["2606:2800:220:1:248:1893:25c8:1946"],
        "mapped.example.com": ["::ffff:127.0.0.1"],
    }
)

HOSTILE = {
    "https://127.0.0.1/hook": "127.0.0.1: it is a loopback address",
    "https://127.1.2.3:8443/hook": "a loopback address",
    "https://[::1]/hook": "::1: it is a loopback address",
    "https://10.0.0.7/hook": "a private address",
    "https://172.16.0.1/hook": "a private address",
    "https://192.168.1.1/hook": "a private address",
    "https://100.64.0.1/hook": "a shared (carrier-grade NAT) address",
    "https://169.254.169.254/latest/meta-data/": "a link-local address (the instance-metadata address among them)",
    "https://[fd00::1]/hook": "a private address",
    "https://[fe80::1]/hook": "a link-local address",
    "https://[::ffff:127.0.0.1]/hook": "a loopback address",
    "https://0.0.0.0/hook": "not a public address",
    "https://224.0.0.1/hook": "not a public address",
    "https://loopback.example.com/hook": "loopback.example.com: it resolves to 127.0.0.1, a loopback address",
    "https://metadata.example.com/hook": "it resolves to 169.254.169.254, a link-local address",
    "https://mixed.example.com/hook": "it resolves to 10.0.0.1, a private address",
    "https://mapped.example.com/hook": "it resolves to ::ffff:7f00:1, a loopback address",
    "https://nowhere.example.com/hook": "the host nowhere.example.com does not resolve",
    "http://hooks.example.com/hook": "url must use https:// (http:// needs AllowPrivateWebhookUrls)",
    "https://user:pw@hooks.example.com/hook": "must not carry credentials",
    "https://token@hooks.example.com/hook": "must not carry credentials",
    "not a url": "must be an absolute https:// URL",
    "hooks.example.com/hook": "must be an absolute https:// URL",
    "ftp://hooks.example.com/hook": "must be an absolute https:// URL",
    "https:///hook": "must be an absolute https:// URL",
    "https://hooks.example.com:99999/hook": "is not a valid URL",
    "https://[::1/hook": "is not a valid URL",
}


@pytest.mark.parametrize(("url", "why"), sorted(HOSTILE.items()))
def test_the_default_refuses_each_hostile_url_saying_why(url: str, why: str) -> None:
    with pytest.raises(UrlRefusedError) as refused:
        destination(url, RESOLVER, allow_private=False)
    assert why in str(refused.value)


def test_a_public_https_url_is_allowed_and_pinned_to_the_address_checked() -> None:
    where = destination("https://hooks.example.com/in/genviral?team=7", RESOLVER, allow_private=False)
    assert (where.scheme, where.host, where.port) == ("https", "hooks.example.com", 443)
    assert where.target == "/in/genviral?team=7"
    assert where.address == "93.184.216.34"
    assert destination("https://v6.example.com", RESOLVER, allow_private=False).target == "/"
    assert destination("https://93.184.216.34:8443/x", RESOLVER, allow_private=False).port == 8443


def test_allowing_private_urls_permits_http_and_private_addresses_but_never_credentials() -> None:
    for url in ("http://127.0.0.1:8080/hook", "https://[::1]/hook", "https://loopback.example.com", "http://10.0.0.7"):
        assert destination(url, RESOLVER, allow_private=True).address
    with pytest.raises(UrlRefusedError, match="credentials"):
        destination("http://user:pw@127.0.0.1/hook", RESOLVER, allow_private=True)
    with pytest.raises(UrlRefusedError, match="absolute"):
        destination("not a url", RESOLVER, allow_private=True)


def test_a_name_rebound_to_a_forbidden_address_is_refused_at_the_next_check() -> None:
    resolver = StaticResolver({"hooks.example.com": ["93.184.216.34"]})
    assert destination("https://hooks.example.com/hook", resolver, allow_private=False).address == "93.184.216.34"
    resolver.names["hooks.example.com"] = ["169.254.169.254"]
    with pytest.raises(UrlRefusedError, match=r"169\.254\.169\.254"):
        destination("https://hooks.example.com/hook", resolver, allow_private=False)


# ---------------------------------------------------------------- the relay's own table of forbidden networks
# Decided by the relay's table, not by `ipaddress`'s is_private/is_global (whose answers changed between Python
# 3.11, 3.12 and 3.13): the same answers on every runtime.

TABLE = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
    "3fff::/20",
]

REFUSED_EVERYWHERE = {
    "2002::1": "6to4",
    "2002:c000:0204::1": "6to4",
    "fec0::1": "site-local",
    "2001::1": "Teredo",
    "2001:20::1": "IETF protocol assignments",
    "2001:db8::1": "documentation",
    "3fff::1": "documentation",
    "100::1": "discard-only",
    "64:ff9b:1::1": "NAT64",
    "64:ff9b::a00:1": "a private address",
    "64:ff9b::7f00:1": "a loopback address",
    "::ffff:10.0.0.1": "a private address",
    "::8.8.8.8": "not a global unicast address",
    "192.0.0.9": "IETF protocol assignments",
    "192.88.99.1": "6to4",
    "198.18.0.1": "benchmarking",
    "240.0.0.1": "reserved",
    "255.255.255.255": "broadcast",
    "fd00:ec2::254": "a private address",
}

PUBLIC_NEIGHBOURS = [
    "1.1.1.1",
    "8.8.8.8",
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "126.255.255.255",
    "128.0.0.0",
    "169.253.255.255",
    "169.255.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "191.255.255.255",
    "192.0.1.0",
    "192.0.3.0",
    "192.88.98.255",
    "192.88.100.0",
    "192.167.255.255",
    "192.169.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "198.51.99.255",
    "198.51.101.0",
    "203.0.112.255",
    "203.0.114.0",
    "223.255.255.255",
    "2001:200::",
    "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
    "2001:db9::",
    "2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "2003::",
    "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "3fff:1000::",
    "2001:4860:4860::8888",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
]


def test_the_table_holds_every_special_purpose_network() -> None:
    held = {str(network) for network, _ in FORBIDDEN_NETWORKS}
    assert set(TABLE) <= held


@pytest.mark.parametrize(("network", "reason"), [(str(n), r) for n, r in FORBIDDEN_NETWORKS])
def test_each_forbidden_network_is_refused_from_its_first_to_its_last_address(network: str, reason: str) -> None:
    block = ipaddress.ip_network(network)
    assert address_problem(block.network_address) == reason
    last = block.broadcast_address  # 255.255.255.255 ends 240/4 too: the first row holding it says why
    assert address_problem(last) == next(r for n, r in FORBIDDEN_NETWORKS if n.version == last.version and last in n)
    assert address_problem(last) is not None


@pytest.mark.parametrize(("address", "why"), sorted(REFUSED_EVERYWHERE.items()))
def test_special_addresses_are_refused_on_every_python(address: str, why: str) -> None:
    problem = address_problem(ipaddress.ip_address(address))
    assert problem is not None
    assert why in problem


@pytest.mark.parametrize("address", PUBLIC_NEIGHBOURS)
def test_the_public_addresses_next_to_each_forbidden_network_are_allowed(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


def test_the_rules_never_ask_ipaddress_whether_an_address_is_private_or_global() -> None:
    source = inspect.getsource(webhook_urls)
    assert not re.search(r"\.is_(private|global|reserved|link_local|loopback)\b", source)


def test_a_url_names_every_address_checked_in_the_order_resolved() -> None:
    resolver = StaticResolver({"two.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]})
    where = destination("https://two.example.com/x", resolver, allow_private=False)
    assert where.addresses == ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
    assert where.address == "93.184.216.34"


# ---------------------------------------------------------------- what a URL may hold


def test_a_non_ascii_path_and_query_are_percent_encoded_as_utf8_and_the_rest_kept() -> None:
    assert encoded_url("https://example.com/ünïcode?q=é") == "https://example.com/%C3%BCn%C3%AFcode?q=%C3%A9"
    assert encoded_url("https://example.com/a%20b?x=1#ü") == "https://example.com/a%20b?x=1#%C3%BC"
    assert encoded_url("https://example.com") == "https://example.com"
    where = destination("https://hooks.example.com/ünïcode?q=é", RESOLVER, allow_private=False)
    assert where.target == "/%C3%BCn%C3%AFcode?q=%C3%A9"


@pytest.mark.parametrize(
    "character", ["\x00", "\x01", "\t", "\n", "\r", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x9f"]
)
def test_a_control_character_anywhere_is_refused_naming_it(character: str) -> None:
    for url in (
        f"https://hooks.example.com/a{character}b",
        f"https://hooks{character}.example.com/",
        f"https://hooks.example.com/?q={character}",
    ):
        with pytest.raises(UrlRefusedError) as refused:
            destination(url, RESOLVER, allow_private=True)
        assert f"control character U+{ord(character):04X}" in str(refused.value)
        assert url not in str(refused.value)


def test_the_docs_table_lists_every_forbidden_network() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    assert [str(n) for n, _ in FORBIDDEN_NETWORKS if f"`{n}`" not in docs] == []
