"""The Genviral Partner API client: one pooled session, timeouts, bounded retries, typed errors, and one deadline
per call (its own, or sooner the caller's budget: `deadlines.calls_until`) that no hang or trickle outlives: the
session's sockets give each step only what is left of it (`session.py`), from connecting to the body's last byte.

Every documented failure of `GET /posts/{id}` (and of the list and `GET /accounts`) becomes its own
error type (see `errors.py`), so callers decide by type: retry later, stop calling, or end the watch.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests
from pydantic import ValidationError
from urllib3.exceptions import HTTPError as TransportError

from genviral_relay.checking.ports import AccountSource, PostPage, PostSource, TokenSource
from genviral_relay.clock import format_ts
from genviral_relay.deadlines import Deadline, Monotonic, call_budget, calls_until
from genviral_relay.errors import (
    GenviralAuthError,
    GenviralBadResponseError,
    GenviralContractError,
    GenviralError,
    GenviralNotFoundError,
    GenviralRateLimitedError,
    GenviralServerError,
    GenviralSubscriptionRequiredError,
    GenviralTierNotAllowedError,
    GenviralUnavailableError,
    echoed,
)
from genviral_relay.genviral.answers import brief, page, parse_body, post_of
from genviral_relay.genviral.session import USER_AGENT, build_session
from genviral_relay.models.upstream import Account, AccountListing, Post
from genviral_relay.observability import logger
from genviral_relay.rules.retry_after import parse_retry_after

__all__ = ["USER_AGENT", "ClientSettings", "GenviralClient", "StaticToken", "build_session", "parse_retry_after"]


class StaticToken(TokenSource):
    """A key given directly (the operations CLI's `GENVIRAL_TOKEN`, tests): re-reading it after a 401
    gives the same key."""

    def __init__(self, token: str) -> None:
        self._token = token

    def token(self, *, refresh: bool = False) -> str:
        return self._token

    def __repr__(self) -> str:
        return "StaticToken(<hidden>)"


@dataclass(frozen=True)
class ClientSettings:
    connect_timeout: float = 3.05
    read_timeout: float = 10.0
    max_attempts: int = 3
    backoff_base: float = 0.5
    backoff_cap: float = 4.0
    retry_after_cap: float = 5.0
    """A longer `Retry-After` is not slept through inside a Lambda: the post is left for a later tick."""
    max_body_bytes: int = 2 * 1024 * 1024
    pool_size: int = 10
    call_deadline: float = 20.0
    """One call as a whole (connecting, attempts, back-offs, a trickled head or body; not the name's lookup, which
    has the resolver's own timeouts) ends by then; the API's budget may end it sooner
    (`deadlines.calls_until`). Three 10 s read timeouts would otherwise take 30 s."""


class GenviralClient(PostSource, AccountSource):
    def __init__(
        self,
        base_url: str,
        tokens: TokenSource,
        *,
        settings: ClientSettings | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._tokens = tokens
        self._settings = settings or ClientSettings()
        self._session = session or build_session(self._settings.pool_size)
        self._sleep = sleep
        self._clock = clock
        self._monotonic = monotonic

    def get_post(self, post_id: str) -> Post:
        return post_of(self._get("/posts/{id}", f"/posts/{quote(post_id, safe='')}"), f"post {post_id}")

    def posts_in_status(self, status: str, *, limit: int) -> PostPage:
        return page(self._list({"status": status, "limit": str(limit)}))

    def posts_created(self, since: datetime, until: datetime, *, limit: int) -> PostPage:
        return page(self._list({"since": format_ts(since), "until": format_ts(until), "limit": str(limit)}))

    def list_accounts(self) -> AccountListing:
        """The listed accounts; an item that does not match the documented shape is left out (logged) but counted:
        by its id when it has one, so that account health does not read it as gone.

        One attempt, no backoff: the listing only enriches events, so a check about to emit must not wait
        for its retries (a failed listing is tried again at the next refresh)."""
        data = self._get("/accounts", "/accounts", attempts=1)
        items = data.get("accounts") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise GenviralContractError("the account list has no accounts array")
        accounts: list[Account] = []
        unreadable: list[str] = []
        unidentified = 0
        for item in items:
            try:
                accounts.append(Account.model_validate(item))
            except ValidationError as error:
                account_id = item.get("id") if isinstance(item, dict) else None
                readable = account_id if isinstance(account_id, str) and account_id else None
                logger.warning(
                    "A listed account does not match the documented shape",
                    extra={"account_id": echoed(readable) if readable else None, "problem": brief(error)},
                )
                if readable:
                    unreadable.append(readable)
                else:
                    unidentified += 1
        return AccountListing(
            accounts=tuple(accounts),
            unreadable_ids=tuple(unreadable),
            unidentified=unidentified,
            scope=_text(data, "scope"),
            workspace_id=_text(data, "workspace_id"),
        )

    def _list(self, params: dict[str, str]) -> list[Any]:
        data = self._get("/posts", "/posts", params)
        posts = data.get("posts") if isinstance(data, dict) else None
        if not isinstance(posts, list):
            raise GenviralContractError("the post list has no posts array")
        return posts

    def _get(self, route: str, path: str, params: dict[str, str] | None = None, *, attempts: int | None = None) -> Any:
        """GET with retries (at most `attempts`, default the settings'), all by one deadline; `route` is the path
        template used in logs."""
        deadline = Deadline.after(self._settings.call_deadline, self._monotonic).sooner(call_budget())
        with calls_until(deadline):  # what the session's sockets read: each step gets only what is left
            token = self._tokens.token()
            refreshed = False
            attempt = 1
            while True:
                try:
                    return self._get_once(path, params, token, deadline)
                except GenviralAuthError:
                    if refreshed:
                        raise
                    # The secret may have rotated since it was cached: read it again, once.
                    logger.info("Genviral answered 401; re-reading the token", extra={"route": route})
                    token = self._tokens.token(refresh=True)
                    refreshed = True
                except GenviralError as error:
                    delay = self._retry_delay(error, attempt, attempts or self._settings.max_attempts)
                    if delay is None or delay >= deadline.remaining():  # a back-off past the deadline is no retry
                        raise
                    logger.info(
                        "Retrying a Genviral call",
                        extra={
                            "route": route,
                            "attempt": attempt,
                            "error_type": type(error).__name__,
                            "status": error.status,
                            "delay_seconds": round(delay, 3),
                        },
                    )
                    self._sleep(delay)
                    attempt += 1

    def _retry_delay(self, error: GenviralError, attempt: int, attempts: int) -> float | None:
        if not error.transient or attempt >= attempts:
            return None
        ceiling = min(self._settings.backoff_cap, self._settings.backoff_base * 2 ** (attempt - 1))
        backoff = random.uniform(0, ceiling)  # noqa: S311 - jitter, not security
        if isinstance(error, GenviralRateLimitedError) and error.retry_after is not None:
            if error.retry_after > self._settings.retry_after_cap:
                return None
            return max(error.retry_after, backoff)
        return backoff

    def _get_once(self, path: str, params: dict[str, str] | None, token: str, deadline: Deadline) -> Any:
        left = deadline.remaining()
        if left <= 0:
            raise GenviralUnavailableError("no time left before the call's deadline: Genviral was not asked")
        try:
            response = self._session.get(
                self._base_url + path,
                params=params,
                headers={"Authorization": f"Bearer {token}"},
                timeout=(min(self._settings.connect_timeout, left), min(self._settings.read_timeout, left)),
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException as error:
            # past the deadline, whatever step it cut (a send cut is a ConnectionError to requests), it is time
            if isinstance(error, requests.Timeout) or deadline.remaining() <= 0:
                raise GenviralUnavailableError("Genviral did not answer in time") from None
            raise GenviralUnavailableError(f"Genviral could not be reached ({type(error).__name__})") from None
        with response:
            body = self._read_body(response, deadline)
        return self._interpret(response.status_code, response.headers.get("Retry-After"), body)

    def _read_body(self, response: requests.Response, deadline: Deadline) -> bytes:
        """The body as it arrives (`read1`: whatever came, not a full buffer), up to the size limit; the socket
        gives each read only the time left, so a body trickled a byte at a time is cut at the deadline."""
        limit = self._settings.max_body_bytes
        raw = response.raw
        chunks: list[bytes] = []
        size = 0
        try:
            while deadline.remaining() > 0:
                chunk = raw.read1(64 * 1024, decode_content=True)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > limit:
                    raise GenviralContractError(f"answer body is over {limit} bytes")
                chunks.append(chunk)
        except (requests.RequestException, TransportError, OSError) as error:
            if deadline.remaining() > 0:
                raise GenviralUnavailableError(f"Genviral's answer was cut off ({type(error).__name__})") from None
        raise GenviralUnavailableError("Genviral's answer did not arrive whole before the call's deadline")

    def _interpret(self, status: int, retry_after: str | None, body: bytes) -> Any:
        parsed = parse_body(body)
        envelope, code = parsed.envelope, parsed.error_code
        message = parsed.message or f"HTTP {status}"
        if 200 <= status < 300:
            if parsed.too_deep:  # the same answer would come again: the post's answer breaks the contract
                raise GenviralContractError(f"HTTP {status} with JSON nested too deeply to read", status=status)
            if envelope is None:
                raise GenviralBadResponseError(
                    f"HTTP {status} with a body that is not a Genviral envelope", status=status
                )
            if not envelope.ok:
                raise GenviralBadResponseError(
                    f"HTTP {status} but ok is false: {message}", status=status, error_code=code
                )
            return envelope.data
        error_type: type[GenviralError] | None = {
            401: GenviralAuthError,
            402: GenviralSubscriptionRequiredError,
            403: GenviralTierNotAllowedError,
            404: GenviralNotFoundError,
        }.get(status)
        if error_type is not None:
            raise error_type(message, status=status, error_code=code)
        if status == 429:
            raise GenviralRateLimitedError(message, retry_after=parse_retry_after(retry_after, self._clock()))
        if status >= 500:
            raise GenviralServerError(message, status=status, error_code=code)
        raise GenviralBadResponseError(f"unexpected HTTP {status}: {message}", status=status, error_code=code)


def _text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    return value if isinstance(value, str) else None
