"""The Genviral Partner API client: one pooled session, timeouts, bounded retries, typed errors.

Every documented failure of `GET /posts/{id}` (and of the list and `GET /accounts`) becomes its own
error type (see `errors.py`), so callers decide by type: retry later, stop calling, or end the watch.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests
from pydantic import ValidationError
from requests.adapters import HTTPAdapter

from genviral_relay import __version__
from genviral_relay.checking.ports import AccountSource, PostPage, PostSource, TokenSource
from genviral_relay.clock import format_ts
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
)
from genviral_relay.models.upstream import Account, Envelope, Post
from genviral_relay.observability import logger

USER_AGENT = f"genviral-relay/{__version__}"
_DELAY_SECONDS = re.compile(r"^-?\d+(\.\d+)?$")


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


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date); None when unusable."""
    if value is None:
        return None
    text = value.strip()
    if _DELAY_SECONDS.match(text):
        return max(0.0, float(text))
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def build_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
    return session


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
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._tokens = tokens
        self._settings = settings or ClientSettings()
        self._session = session or build_session(self._settings.pool_size)
        self._sleep = sleep
        self._clock = clock

    def get_post(self, post_id: str) -> Post:
        data = self._get("/posts/{id}", f"/posts/{quote(post_id, safe='')}")
        try:
            return Post.model_validate(data)
        except ValidationError as error:
            raise GenviralContractError(
                f"post {post_id} does not match the documented shape: {_brief(error)}"
            ) from None

    def posts_in_status(self, status: str, *, limit: int) -> PostPage:
        return _page(self._list({"status": status, "limit": str(limit)}))

    def posts_created(self, since: datetime, until: datetime, *, limit: int) -> PostPage:
        return _page(self._list({"since": format_ts(since), "until": format_ts(until), "limit": str(limit)}))

    def list_accounts(self) -> list[Account]:
        """The listed accounts; an item that does not match the documented shape is left out (logged).

        One attempt, no backoff: the listing only enriches events, so a check about to emit must not wait
        for its retries (a failed listing is tried again at the next refresh)."""
        data = self._get("/accounts", "/accounts", attempts=1)
        items = data.get("accounts") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise GenviralContractError("the account list has no accounts array")
        accounts: list[Account] = []
        for item in items:
            try:
                accounts.append(Account.model_validate(item))
            except ValidationError as error:
                logger.warning("A listed account does not match the documented shape", extra={"problem": _brief(error)})
        return accounts

    def _list(self, params: dict[str, str]) -> list[Any]:
        data = self._get("/posts", "/posts", params)
        posts = data.get("posts") if isinstance(data, dict) else None
        if not isinstance(posts, list):
            raise GenviralContractError("the post list has no posts array")
        return posts

    def _get(self, route: str, path: str, params: dict[str, str] | None = None, *, attempts: int | None = None) -> Any:
        """GET with retries (at most `attempts`, default the settings'); `route` is the path template used in logs."""
        token = self._tokens.token()
        refreshed = False
        attempt = 1
        while True:
            try:
                return self._get_once(path, params, token)
            except GenviralAuthError:
                if refreshed:
                    raise
                # The secret may have rotated since it was cached: read it again, once.
                logger.info("Genviral answered 401; re-reading the token", extra={"route": route})
                token = self._tokens.token(refresh=True)
                refreshed = True
            except GenviralError as error:
                delay = self._retry_delay(error, attempt, attempts or self._settings.max_attempts)
                if delay is None:
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

    def _get_once(self, path: str, params: dict[str, str] | None, token: str) -> Any:
        try:
            response = self._session.get(
                self._base_url + path,
                params=params,
                headers={"Authorization": f"Bearer {token}"},
                timeout=(self._settings.connect_timeout, self._settings.read_timeout),
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            raise GenviralUnavailableError("Genviral did not answer in time") from None
        except requests.RequestException as error:
            raise GenviralUnavailableError(f"Genviral could not be reached ({type(error).__name__})") from None
        with response:
            body = self._read_body(response)
        return self._interpret(response.status_code, response.headers.get("Retry-After"), body)

    def _read_body(self, response: requests.Response) -> bytes:
        limit = self._settings.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=64 * 1024):
                size += len(chunk)
                if size > limit:
                    raise GenviralContractError(f"answer body is over {limit} bytes")
                chunks.append(chunk)
        except requests.RequestException as error:
            raise GenviralUnavailableError(f"Genviral's answer was cut off ({type(error).__name__})") from None
        return b"".join(chunks)

    def _interpret(self, status: int, retry_after: str | None, body: bytes) -> Any:
        envelope = _envelope(body)
        message = envelope.message if envelope and envelope.message else f"HTTP {status}"
        code = envelope.error_code if envelope else None
        if 200 <= status < 300:
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


def _envelope(body: bytes) -> Envelope | None:
    try:
        document = json.loads(body)
        return Envelope.model_validate(document)
    except (ValueError, ValidationError):
        return None


def _brief(error: ValidationError) -> str:
    """Where and what, without the offending values (they are upstream data, possibly large)."""
    problems = [f"{'.'.join(str(part) for part in issue['loc'])}: {issue['msg']}" for issue in error.errors()[:5]]
    more = error.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def _page(items: list[Any]) -> PostPage:
    """A list answer as posts; an item that does not match the documented shape is kept by its id."""
    posts: list[Post] = []
    unreadable: list[str] = []
    for item in items:
        try:
            posts.append(Post.model_validate(item))
        except ValidationError as error:
            post_id = item.get("id") if isinstance(item, dict) else None
            logger.warning(
                "A listed post does not match the documented shape",
                extra={"post_id": post_id if isinstance(post_id, str) else None, "problem": _brief(error)},
            )
            if isinstance(post_id, str) and post_id:
                unreadable.append(post_id)
    return PostPage(posts=tuple(posts), unreadable_ids=tuple(unreadable), size=len(items))
