"""Where webhooks may go: the URL rules on a hostile list, with the resolver a double (no DNS)."""

from __future__ import annotations

import pytest

from genviral_relay.rules.webhook_urls import UrlRefusedError, destination
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
