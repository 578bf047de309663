"""The pooled requests session Genviral's client calls through, each connection's socket bounded by the deadline
of the call using it (`deadlines.call_budget`, which the client sets for each call).

requests' timeouts are per socket step: a status line and headers trickled a byte within each read timeout
would outlive any deadline checked between steps, so the bound is on the socket itself (`BoundedSocket`). Not
bounded by the deadline: an HTTPS proxy's CONNECT answer, read inside urllib3's `connect` before the socket is
wrapped (its per-read timeouts still hold; the stack configures no proxy).
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from genviral_relay import __version__
from genviral_relay.bounded_socket import BoundedSocket
from genviral_relay.deadlines import call_budget

USER_AGENT = f"genviral-relay/{__version__}"


class _BoundedHttp(HTTPConnection):
    def connect(self) -> None:
        super().connect()  # connecting is bounded by the connect timeout, which the client cuts to the time left
        self.sock = BoundedSocket(self.sock, call_budget)


class _BoundedHttps(HTTPSConnection):
    def connect(self) -> None:
        super().connect()  # the TLS handshake as a whole is bounded by the connect timeout (CPython's SSL)
        self.sock = BoundedSocket(self.sock, call_budget)


class _BoundedPool(HTTPConnectionPool):
    ConnectionCls = _BoundedHttp


class _BoundedTlsPool(HTTPSConnectionPool):
    ConnectionCls = _BoundedHttps


BOUNDED_POOLS: dict[str, type[HTTPConnectionPool]] = {"http": _BoundedPool, "https": _BoundedTlsPool}


class BoundedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections, direct or through an HTTP(S) proxy, are `BoundedSocket`s."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = BOUNDED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS has connection classes of its own
            manager.pool_classes_by_scheme = BOUNDED_POOLS
        return manager


def build_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    adapter = BoundedAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
    return session
