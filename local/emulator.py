"""A local emulator of the Genviral Partner API: the read side the relay polls.

It is a real HTTP server on 127.0.0.1 (standard library only), so the relay's HTTP client, its timeouts
and its connection handling run exactly as in production. It serves:

- `GET /api/partner/v1/posts/{id}`: the post object in the shape of the documented example;
- `GET /api/partner/v1/posts`: the list, with `status`, `limit`, `since` and `until`;
- `GET /api/partner/v1/accounts`: the connected accounts, active ones only, in workspace or personal scope.

Tests script the account list (`set_account`; every account a post is created for gets an active
entry unless one exists), per-account transitions (`mark_posted`, `mark_failed`, `retry`, `set_account_state`, ...;
a posting whose URL comes later: `mark_posted(..., url_after=...)` or `resolve_url`),
key scope and plan errors, and inject transport or payload faults that matching requests consume in
first-in-first-out order.

Workspaces: a Genviral key is scoped to one workspace. `tokens=[...]` are keys of the one workspace named
`default`; `workspaces={"acme": "tok-a", ...}` adds named ones. A key sees only its workspace's posts and accounts
(another workspace's post is a 404, as an unknown one), and `revoke_key(name)` makes a workspace's key answer 401
until `restore_key(name)`.

Order of checks for every request: unknown path (404), wrong method (405), authentication (401; an
unauthorized request never consumes a fault), the next matching fault, plan error (402/403), then the
answer itself. The raw token is never logged or recorded.
"""

from __future__ import annotations

import copy
import enum
import hashlib
import json
import math
import socket
import struct
import sys
import threading
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Literal
from urllib.parse import parse_qs, unquote, urlsplit

API_PREFIX: Final = "/api/partner/v1"
DEFAULT_TOKEN: Final = "gva_live_demo.s3cr3t"  # noqa: S105 - the public demo key of the emulator
FINAL_STATUSES: Final = frozenset({"posted", "failed"})
STATE_FIELDS: Final = ("status", "published_at", "error_message", "last_attempted_at", "published_url")
PLAN_ERRORS: Final[Mapping[str, tuple[int, str]]] = {
    "subscription_required": (402, "An active Creator, Professional or Business subscription is required"),
    "tier_not_allowed": (403, "The Scheduler tier cannot use the Partner API"),
}
DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 100
_JSON: Final = "application/json"
_TIMESTAMP_FIELDS: Final = frozenset({"published_at", "last_attempted_at"})

Route = Literal["post", "list", "accounts"]
POST_ROUTES: Final[frozenset[Route]] = frozenset({"post", "list"})
ACCOUNT_FIELDS: Final = ("platform", "type", "username", "display_name", "status")
DEFAULT_WORKSPACE_ID: Final = "ws_3f9a2c71"
DEFAULT_OWNER_USER_ID: Final = "user_8d41b0e2"
DEFAULT_WORKSPACE: Final = "default"
"""The workspace `tokens` belong to (the relay's name for a single-key secret's workspace)."""
FaultKind = Literal["respond", "server_error", "truncated", "reset", "hang", "trickle", "trickle_head"]


class _Unset(enum.Enum):
    TOKEN = enum.auto()


_UNSET: Final = _Unset.TOKEN


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _to_utc_ms(value: datetime) -> datetime:
    """UTC, truncated to milliseconds (the precision Genviral answers with). Naive means UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def format_timestamp(value: datetime) -> str:
    """`2025-01-20T12:05:11.205Z`: how Genviral writes timestamps."""
    value = _to_utc_ms(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _dumps(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("Content-Type", _JSON),)
    trickle: float = 0.0
    """Seconds between the body's bytes (0: all at once)."""
    trickle_head: bool = False
    """The status line and headers trickled instead (the body then at once)."""


def _ok(message: str, data: Any) -> _Response:
    return _Response(200, _dumps({"ok": True, "code": 200, "message": message, "data": data}))


def _error(status: int, message: str, error_code: str) -> _Response:
    return _Response(status, _dumps({"ok": False, "code": status, "message": message, "error_code": error_code}))


def _check_header_value(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("header values cannot contain line breaks")
    return value


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour of the server; build it with the factories below."""

    kind: FaultKind
    status: int = 200
    content: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0

    @classmethod
    def rate_limited(cls, retry_after: str | None = "1") -> Fault:
        """429 `rate_limited`; `Retry-After` is sent verbatim when not None (any text, even invalid)."""
        headers: tuple[tuple[str, str], ...] = (("Content-Type", _JSON),)
        if retry_after is not None:
            headers += (("Retry-After", _check_header_value(retry_after)),)
        body = _error(429, "Too many requests", "rate_limited").body
        return cls("respond", 429, body, headers)

    @classmethod
    def server_error(cls) -> Fault:
        """500 envelope: `get_failed` on GET /posts/{id}, `list_failed` on GET /posts."""
        return cls("server_error", 500)

    @classmethod
    def html(cls, status: int = 502) -> Fault:
        """A gateway-style HTML page (text/html), not an envelope."""
        phrase = _phrase(status)
        page = (
            f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
            "</body>\r\n</html>\r\n"
        )
        return cls("respond", status, page.encode(), (("Content-Type", "text/html"),))

    @classmethod
    def raw(cls, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> Fault:
        """Exactly this status, body and headers; Content-Length is added unless given in `headers`."""
        if not 100 <= status <= 599:
            raise ValueError(f"HTTP status out of range: {status}")
        pairs = tuple((name, _check_header_value(value)) for name, value in (headers or {}).items())
        return cls("respond", status, bytes(body), pairs)

    @classmethod
    def not_ok(cls) -> Fault:
        """HTTP 200 whose envelope says `ok: false` (no `data`)."""
        body = _dumps({"ok": False, "code": 200, "message": "Post could not be retrieved"})
        return cls("respond", 200, body, (("Content-Type", _JSON),))

    @classmethod
    def truncated_json(cls) -> Fault:
        """HTTP 200, application/json, the normal answer cut in the middle (Content-Length matches)."""
        return cls("truncated", 200)

    @classmethod
    def reset(cls) -> Fault:
        """Abort the connection (RST) without sending any response."""
        return cls("reset", 0)

    @classmethod
    def hang(cls, seconds: float = math.inf) -> Fault:
        """Wait `seconds` (by default until `release_hangs()`) before answering normally; `release_hangs()` ends
        the wait early, `stop()` interrupts it (no answer then)."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        return cls("hang", 0, seconds=float(seconds))

    @classmethod
    def trickle(cls, interval: float, *, head: bool = False) -> Fault:
        """The normal answer, its headers at once and its body one byte every `interval` seconds (each byte
        keeps a read timeout from firing); `stop()` or the client going away ends it. `head`: the status line
        and headers one byte every `interval` seconds instead, the body then at once."""
        if interval <= 0:
            raise ValueError("interval must be > 0")
        return cls("trickle_head" if head else "trickle", 200, seconds=float(interval))

    @classmethod
    def nested(cls, depth: int, status: int = 200) -> Fault:
        """`status` with a JSON body of `depth` nested arrays (`[[[...]]]`): valid JSON, too deep for a
        recursive parser."""
        return cls.raw(status, b"[" * depth + b"]" * depth, {"Content-Type": _JSON})

    @classmethod
    def error(cls, status: int, message: str, error_code: str = "get_failed") -> Fault:
        """An error envelope with this `message` (any size: Genviral echoes what it likes)."""
        return cls.raw(status, _error(status, message, error_code).body, {"Content-Type": _JSON})

    @classmethod
    def body(cls, data: Any) -> Fault:
        """HTTP 200 `{"ok": true, "code": 200, "message": "Post retrieved", "data": <data>}`."""
        payload = {"ok": True, "code": 200, "message": "Post retrieved", "data": data}
        return cls("respond", 200, _dumps(payload), (("Content-Type", _JSON),))

    def _apply(self, normal: _Response, route: Route) -> _Response:
        if self.kind == "server_error":
            if route == "accounts":
                return _error(500, "Unexpected error while reading accounts", "accounts_failed")
            code = "list_failed" if route == "list" else "get_failed"
            return _error(500, "Unexpected error while reading posts", code)
        if self.kind == "truncated":
            return _Response(200, normal.body[: max(1, len(normal.body) // 2)])
        if self.kind == "respond":
            return _Response(self.status, self.content, self.headers)
        if self.kind in ("trickle", "trickle_head"):
            head = self.kind == "trickle_head"
            return _Response(normal.status, normal.body, normal.headers, trickle=self.seconds, trickle_head=head)
        return normal  # hang: answer normally once the wait is over


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it. Headers (and so the token) are never recorded.

    `status` is 0 when no response was sent (a `reset` fault, or a `hang` interrupted by `stop()`).
    """

    method: str
    path: str
    query: dict[str, str]
    post_id: str | None
    status: int
    authorized: bool
    workspace: str | None = None
    """The workspace whose key authorized the request (None: not authorized)."""


@dataclass
class _FaultEntry:
    fault: Fault
    post_id: str | None
    remaining: int
    routes: frozenset[Route] = POST_ROUTES
    workspace: str | None = None
    """Only this workspace's requests take the fault (None: any workspace's)."""


@dataclass
class _Post:
    id: str
    caption: str
    scheduled_at: datetime | None
    created_at: datetime
    media: dict[str, Any] | None
    music_url: str | None
    tiktok: dict[str, Any] | None
    pinterest: dict[str, Any] | None
    states: list[dict[str, Any]]
    seq: int
    workspace: str = DEFAULT_WORKSPACE
    external_id: str | None = None
    """Set at creation (the idempotency key); whether Genviral's GET echoes it is undocumented, so only
    posts created with one carry the field."""

    def status(self) -> str:
        statuses = [str(state["status"]) for state in self.states]
        if "retry" in statuses:
            return "retry"
        final = [status for status in statuses if status in FINAL_STATUSES]
        if not final:
            return "scheduled" if self.scheduled_at is not None else "pending"
        if len(final) < len(statuses):
            return "pending"
        if all(status == "posted" for status in final):
            return "posted"
        if all(status == "failed" for status in final):
            return "failed"
        return "partial"

    def state(self, account_id: str) -> dict[str, Any]:
        for state in self.states:
            if state["account_id"] == account_id:
                return state
        raise KeyError(f"post {self.id} has no account {account_id}")

    def render(self, scope: set[str] | None) -> dict[str, Any] | None:
        """The `data` object of GET /posts/{id}, or None when no account is in scope."""
        states = [copy.deepcopy(state) for state in self.states if scope is None or state["account_id"] in scope]
        if not states:
            return None
        return {
            "id": self.id,
            "caption": self.caption,
            "status": self.status(),
            "scheduled_at": format_timestamp(self.scheduled_at) if self.scheduled_at is not None else None,
            "created_at": format_timestamp(self.created_at),
            "media": copy.deepcopy(self.media),
            "music_url": self.music_url,
            "tiktok": copy.deepcopy(self.tiktok),
            "pinterest": copy.deepcopy(self.pinterest),
            "accounts": {"total": len(states), "states": states},
            **({"external_id": self.external_id} if self.external_id is not None else {}),
        }


def _wire_value(name: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value)
    if name in STATE_FIELDS and value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a str, a datetime or None, not {type(value).__name__}")
    return value


def _route(path: str) -> tuple[Route | None, str | None]:
    if path == f"{API_PREFIX}/posts":
        return "list", None
    if path == f"{API_PREFIX}/accounts":
        return "accounts", None
    prefix = f"{API_PREFIX}/posts/"
    if path.startswith(prefix):
        post_id = unquote(path[len(prefix) :])
        if post_id and "/" not in post_id:
            return "post", post_id
    return None, None


def _first_values(raw_query: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(raw_query, keep_blank_values=True).items()}


def workspace_id(workspace: str) -> str:
    """The Genviral id of a workspace (`workspace_id` in GET /accounts): the seed's for `default`, stable for others."""
    if workspace == DEFAULT_WORKSPACE:
        return DEFAULT_WORKSPACE_ID
    return "ws_" + hashlib.sha256(workspace.encode()).hexdigest()[:8]


def _parse_bound(raw: str) -> datetime:
    if not raw.strip():
        raise ValueError("empty timestamp")
    return _to_utc_ms(datetime.fromisoformat(raw.strip()))


class GenviralEmulator:
    """The Genviral Partner API on `http://127.0.0.1:<port>/api/partner/v1`.

        Mutable settings read on every request: `tokens`, `plan_error`, `scope_accounts`, `account_scope`
    (`workspace`, or `personal`: the accounts' and the answer's `workspace_id` are null), `list_inactive_accounts`
    (False, as documented: `GET /accounts` lists active accounts only and a paused or revoked one vanishes from it;
    True: it is listed with its `status`, the other way a relay may meet it).
    """

    def __init__(
        self,
        *,
        tokens: Iterable[str] | None = None,
        workspaces: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """`tokens`: the `default` workspace's keys (the demo key unless `workspaces` is given); `workspaces`: a key
        per named workspace."""
        named = dict(workspaces or {})
        self.tokens: set[str] = set(tokens if tokens is not None else () if named else (DEFAULT_TOKEN,))
        keys = [*self.tokens, *named.values()]
        if any(not key for key in keys) or len(set(keys)) != len(keys):
            raise ValueError("each workspace needs its own non-empty key")
        if any(not name for name in named):
            raise ValueError("a workspace needs a name")
        self._workspace_keys = named
        self._revoked: set[str] = set()
        self._account_workspaces: dict[str, str] = {}
        self.scope_accounts: set[str] | None = None
        self.account_scope: Literal["workspace", "personal"] = "workspace"
        self.list_inactive_accounts = False
        self._accounts: dict[str, dict[str, Any]] = {}
        self._plan_error: str | None = None
        self._clock = clock or _utc_now
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._posts: dict[str, _Post] = {}
        self._late_urls: dict[tuple[str, str], tuple[datetime, str]] = {}
        """(post, account) -> when its posting's URL appears (emulated time), and the URL."""
        self._seq = 0
        self._faults: list[_FaultEntry] = []
        self._calls: Counter[str] = Counter()
        self._connections: set[socket.socket] = set()
        self._inflight = 0
        self._stopping = threading.Event()
        self._held = threading.Condition(self._lock)
        self._releases = 0
        self._holding = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.requests_log: list[RequestRecord] = []
        self.handler_errors: list[str] = []
        self.connections_accepted = 0
        """Connections the server took (a client reusing its pooled connection opens no new one)."""

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> GenviralEmulator:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="genviral-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and interrupt hanging requests. Idempotent."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        with self._held:
            self._held.notify_all()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        with self._idle:
            self._idle.wait_for(lambda: self._inflight == 0, timeout=2.0)
        server.server_close()
        if thread is not None:
            thread.join(timeout=2.0)
        self._server = None
        self._thread = None

    def __enter__(self) -> GenviralEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}{API_PREFIX}"

    @property
    def plan_error(self) -> str | None:
        """None, "subscription_required" (402) or "tier_not_allowed" (403), on every endpoint."""
        return self._plan_error

    @plan_error.setter
    def plan_error(self, value: str | None) -> None:
        if value is not None and value not in PLAN_ERRORS:
            raise ValueError(f"plan_error must be None or one of {sorted(PLAN_ERRORS)}")
        self._plan_error = value

    # ---------------------------------------------------------------- posts

    def create_post(
        self,
        *,
        accounts: Sequence[str] | int = 1,
        scheduled_at: datetime | _Unset | None = _UNSET,
        caption: str = "Holiday drops start Monday!",
        media: Mapping[str, Any] | _Unset | None = _UNSET,
        music_url: str | None = None,
        tiktok: Mapping[str, Any] | None = None,
        pinterest: Mapping[str, Any] | None = None,
        post_id: str | None = None,
        created_at: datetime | None = None,
        external_id: str | None = None,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> str:
        """Store a post and return its id. `scheduled_at` defaults to now + 1 h (None = publish ASAP).

        `accounts` is a list of account ids, or a count of new random ones. `media` defaults to a
        video; None means a text-only post. `tiktok`/`pinterest` are echoed with exactly the keys given.
        The post and its accounts are `workspace`'s (an account belongs to one workspace).
        """
        account_ids = self._new_account_ids(accounts)
        now = self._clock()
        when = now + timedelta(hours=1) if isinstance(scheduled_at, _Unset) else scheduled_at
        post_id = post_id or str(uuid.uuid4())
        if isinstance(media, _Unset):
            media = {"type": "video", "url": f"https://cdn.example.com/videos/{post_id}.mp4"}
        initial = "scheduled" if when is not None else "pending"
        with self._lock:
            if post_id in self._posts:
                raise ValueError(f"post {post_id} already exists")
            for account_id in account_ids:
                self._claim_account(account_id, workspace)
                self._accounts.setdefault(account_id, _default_account(account_id))
            self._seq += 1
            self._posts[post_id] = _Post(
                id=post_id,
                caption=caption,
                scheduled_at=_to_utc_ms(when) if when is not None else None,
                created_at=_to_utc_ms(created_at or now),
                media=copy.deepcopy(dict(media)) if media is not None else None,
                music_url=music_url,
                tiktok=copy.deepcopy(dict(tiktok)) if tiktok is not None else None,
                pinterest=copy.deepcopy(dict(pinterest)) if pinterest is not None else None,
                external_id=external_id,
                workspace=workspace,
                states=[
                    {
                        "account_id": account_id,
                        "status": initial,
                        "published_at": None,
                        "error_message": None,
                        "last_attempted_at": None,
                        "published_url": None,
                    }
                    for account_id in account_ids
                ],
                seq=self._seq,
            )
        return post_id

    @staticmethod
    def _new_account_ids(accounts: Sequence[str] | int) -> list[str]:
        if isinstance(accounts, int):
            if accounts < 1:
                raise ValueError("a post needs at least one account")
            return [str(uuid.uuid4()) for _ in range(accounts)]
        if isinstance(accounts, str):
            raise TypeError("accounts must be a sequence of account ids or a count, not a str")
        account_ids = [str(account_id) for account_id in accounts]
        if not account_ids:
            raise ValueError("a post needs at least one account")
        if len(set(account_ids)) != len(account_ids):
            raise ValueError("account ids must be unique")
        return account_ids

    def set_account(self, account_id: str, *, workspace: str | None = None, **fields: Any) -> None:
        """Create or change a connected account: `platform`, `type` (`byo`/`hosted`), `username`,
        `display_name`, `status` (only `active` accounts are listed; `revoked`, `paused`, ... are not, unless
        `list_inactive_accounts`). A new account is `workspace`'s (default: `default`)."""
        unknown = set(fields) - set(ACCOUNT_FIELDS)
        if unknown:
            raise TypeError(f"unknown account fields: {sorted(unknown)}")
        with self._lock:
            owner = workspace or self._account_workspaces.get(account_id, DEFAULT_WORKSPACE)
            self._claim_account(account_id, owner)
            entry = self._accounts.setdefault(account_id, _default_account(account_id))
            entry.update(fields)

    def restore_account(self, account_id: str) -> None:
        """The account is connected again (`active`), after `set_account(..., status="revoked")` or `"paused"`."""
        self.set_account(account_id, status="active")

    def remove_account(self, account_id: str) -> None:
        """The account is disconnected: GET /accounts no longer lists it (posts keep its states)."""
        with self._lock:
            self._accounts.pop(account_id, None)

    def _claim_account(self, account_id: str, workspace: str) -> None:
        """`account_id` is `workspace`'s from now on; an account of another workspace is an error (under the lock)."""
        owner = self._account_workspaces.setdefault(account_id, workspace)
        if owner != workspace:
            raise ValueError(f"account {account_id} belongs to workspace {owner}, not {workspace}")

    # ---------------------------------------------------------------- workspaces and their keys

    def add_workspace(self, name: str, token: str) -> None:
        """A workspace (or a new key for one) from now on, as when the user adds a key to the relay's secret."""
        with self._lock:
            if not name or not token or token in self.tokens or token in self._others(name):
                raise ValueError("each workspace needs its own non-empty key")
            self._workspace_keys[name] = token

    def _others(self, name: str) -> set[str]:
        return {key for workspace, key in self._workspace_keys.items() if workspace != name}

    def revoke_key(self, workspace: str) -> None:
        """The workspace's key is revoked: its every call answers 401 `invalid_token` until `restore_key`."""
        with self._lock:
            if workspace not in self.workspaces():
                raise KeyError(f"unknown workspace {workspace}")
            self._revoked.add(workspace)

    def restore_key(self, workspace: str) -> None:
        """The workspace's key works again."""
        with self._lock:
            self._revoked.discard(workspace)

    def workspaces(self) -> list[str]:
        """The workspaces a key exists for, sorted (`default` when `tokens` has any)."""
        with self._lock:
            named = set(self._workspace_keys) | ({DEFAULT_WORKSPACE} if self.tokens else set())
        return sorted(named)

    def calls_by_workspace(self) -> Counter[str]:
        """Authorized requests per workspace, every route and answer counted (the benchmarks' calls per workspace)."""
        with self._lock:
            return Counter(record.workspace for record in self.requests_log if record.workspace is not None)

    def _post(self, post_id: str) -> _Post:
        try:
            return self._posts[post_id]
        except KeyError:
            raise KeyError(f"unknown post {post_id}") from None

    def post_json(self, post_id: str) -> dict[str, Any]:
        """The `data` object GET /posts/{id} would answer, ignoring scope and faults."""
        with self._lock:
            self._settle_late_urls()
            rendered = self._post(post_id).render(None)
        assert rendered is not None  # a post always has at least one account
        return rendered

    def account_ids(self, post_id: str) -> list[str]:
        with self._lock:
            return [str(state["account_id"]) for state in self._post(post_id).states]

    def mark_posted(
        self,
        post_id: str,
        account_id: str,
        *,
        published_url: str | _Unset | None = _UNSET,
        at: datetime | None = None,
        url_after: timedelta | None = None,
    ) -> None:
        """Account `posted`: published_at = last_attempted_at = `at` (default now), no error.

        `url_after`: the platform gives the public URL this long after `at` (emulated time, as TikTok often
        does): until then `published_url` is null."""
        moment = at or self._clock()
        stamp = format_timestamp(moment)
        if isinstance(published_url, _Unset):
            published_url = f"https://social.example.com/{account_id}/posts/{post_id}"
        with self._lock:
            self._post(post_id).state(account_id).update(
                status="posted",
                published_at=stamp,
                error_message=None,
                last_attempted_at=stamp,
                published_url=published_url if url_after is None else None,
            )
            self._late_urls.pop((post_id, account_id), None)
            if url_after is not None and published_url is not None:
                self._late_urls[(post_id, account_id)] = (moment + url_after, published_url)

    def resolve_url(self, post_id: str, account_id: str, url: str | None = None) -> None:
        """The platform gives the URL of the account's posting now (default: the one `mark_posted` would give)."""
        with self._lock:
            self._late_urls.pop((post_id, account_id), None)
            self._post(post_id).state(account_id)["published_url"] = (
                url or f"https://social.example.com/{account_id}/posts/{post_id}"
            )

    def _settle_late_urls(self) -> None:
        """Fill in the URLs whose moment has come, for postings that are still posted (under the lock)."""
        now = self._clock()
        for key, (due, url) in list(self._late_urls.items()):
            if due > now:
                continue
            del self._late_urls[key]
            post = self._posts.get(key[0])
            if post is not None:
                state = post.state(key[1])
                if state["status"] == "posted" and state["published_url"] is None:
                    state["published_url"] = url

    def mark_failed(
        self,
        post_id: str,
        account_id: str,
        *,
        error_message: str = "Upload rejected by the platform",
        at: datetime | None = None,
    ) -> None:
        """Account `failed`: error_message set, last_attempted_at = `at`, published_at/url cleared."""
        stamp = format_timestamp(at or self._clock())
        with self._lock:
            self._post(post_id).state(account_id).update(
                status="failed",
                published_at=None,
                error_message=error_message,
                last_attempted_at=stamp,
                published_url=None,
            )

    def retry(self, post_id: str, account_ids: Sequence[str] | None = None) -> None:
        """Like POST /posts/retry: the (selected) failed accounts become `retry`, error cleared.

        Selected accounts that are not failed are left unchanged; unknown ones raise KeyError.
        """
        with self._lock:
            post = self._post(post_id)
            selected = post.states if account_ids is None else [post.state(a) for a in account_ids]
            for state in selected:
                if state["status"] == "failed":
                    state.update(status="retry", error_message=None)

    def set_account_state(self, post_id: str, account_id: str, **fields: Any) -> None:
        """Set any state field (`status` may be any provider string). datetimes are formatted.

        Names other than the documented fields are added to the state as extra keys.
        """
        if "account_id" in fields:
            raise ValueError("account_id cannot be changed")
        values = {name: _wire_value(name, value) for name, value in fields.items()}
        if "status" in values and not values["status"]:
            raise ValueError("status must be a non-empty string")
        with self._lock:
            self._post(post_id).state(account_id).update(values)

    def reschedule(self, post_id: str, scheduled_at: datetime | None) -> None:
        """Like PATCH scheduled_at: accounts still `scheduled`/`pending` follow (None = `pending`)."""
        waiting = "scheduled" if scheduled_at is not None else "pending"
        with self._lock:
            post = self._post(post_id)
            post.scheduled_at = _to_utc_ms(scheduled_at) if scheduled_at is not None else None
            for state in post.states:
                if state["status"] in {"scheduled", "pending"}:
                    state["status"] = waiting

    def delete_post(self, post_id: str) -> None:
        """Permanently remove the post: GET then answers 404 not_found."""
        with self._lock:
            self._post(post_id)
            del self._posts[post_id]

    # ---------------------------------------------------------------- faults and observation

    def inject(
        self,
        fault: Fault,
        *,
        post_id: str | None = None,
        times: int = 1,
        accounts: bool = False,
        workspace: str | None = None,
    ) -> None:
        """Queue `fault` for the next `times` matching authorized requests.

        post_id None matches GET /posts/{any id} and GET /posts; otherwise only GET /posts/{post_id}.
        `accounts`: the fault matches GET /accounts instead (and only it). `workspace`: only that workspace's
        requests match (None: any workspace's).
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        if accounts and post_id is not None:
            raise ValueError("an accounts fault cannot target a post")
        routes: frozenset[Route] = frozenset({"accounts"}) if accounts else POST_ROUTES
        with self._lock:
            self._faults.append(_FaultEntry(fault, post_id, times, routes, workspace))

    def release_hangs(self) -> None:
        """Let every request a `hang` fault holds now answer (normally)."""
        with self._held:
            self._releases += 1
            self._held.notify_all()

    def wait_held(self, count: int = 1, timeout: float = 5.0) -> None:
        """Block until `count` requests are held by `hang` faults (synchronisation with a client on another thread)."""
        with self._held:
            if not self._held.wait_for(lambda: self._holding >= count, timeout):
                raise AssertionError(f"{self._holding} request(s) held, not {count}")

    def _hold(self, seconds: float) -> bool:
        """Hold a request `seconds` or until `release_hangs()`; False when `stop()` interrupted it."""
        with self._held:
            seen = self._releases
            self._holding += 1
            self._held.notify_all()
            try:
                self._held.wait_for(
                    lambda: self._releases != seen or self._stopping.is_set(), None if math.isinf(seconds) else seconds
                )
            finally:
                self._holding -= 1
        return not self._stopping.is_set()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> int:
        """How many fault uses are still queued."""
        with self._lock:
            return sum(entry.remaining for entry in self._faults)

    def calls(self, post_id: str | None = None) -> int:
        """GET /posts/{id} requests received (for `post_id`, or for any id), whatever the answer."""
        with self._lock:
            return self._calls[post_id] if post_id is not None else sum(self._calls.values())

    # ---------------------------------------------------------------- request side (used by _Handler)

    def _count_call(self, post_id: str) -> None:
        with self._lock:
            self._calls[post_id] += 1

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests_log.append(record)

    def _track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
                self.connections_accepted += 1
            else:
                self._connections.discard(connection)

    @contextmanager
    def _in_flight(self) -> Iterator[None]:
        with self._lock:
            self._inflight += 1
        try:
            yield
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    def _authorized_workspace(self, header: str | None) -> str | None:
        """The workspace whose live key the Authorization header carries; None when it carries none."""
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        with self._lock:
            if token in set(self.tokens):
                workspace: str | None = DEFAULT_WORKSPACE
            else:
                workspace = next((name for name, key in self._workspace_keys.items() if key == token), None)
            return None if workspace in self._revoked else workspace

    def _take_fault(self, route: Route, post_id: str | None, workspace: str) -> Fault | None:
        with self._lock:
            for index, entry in enumerate(self._faults):
                if entry.workspace is not None and entry.workspace != workspace:
                    continue
                if route in entry.routes and (entry.post_id is None or (route == "post" and entry.post_id == post_id)):
                    entry.remaining -= 1
                    if entry.remaining == 0:
                        del self._faults[index]
                    return entry.fault
        return None

    def _serve(self, route: Route, post_id: str | None, query: dict[str, str], workspace: str) -> _Response | None:
        """The answer to an authorized GET, faults included; None means send nothing at all."""
        fault = self._take_fault(route, post_id, workspace)
        if fault is not None and fault.kind == "reset":
            return None
        if fault is not None and fault.kind == "hang" and not self._hold(fault.seconds):
            return None
        normal = self._answer(route, post_id, query, workspace)
        return fault._apply(normal, route) if fault is not None else normal

    def _answer(self, route: Route, post_id: str | None, query: dict[str, str], workspace: str) -> _Response:
        plan_error = self._plan_error
        if plan_error is not None:
            status, message = PLAN_ERRORS[plan_error]
            return _error(status, message, plan_error)
        if route == "list":
            return self._list_answer(query, workspace)
        if route == "accounts":
            return self._accounts_answer(workspace)
        scope = self._scope()
        with self._lock:
            self._settle_late_urls()
            post = self._posts.get(post_id or "")
            rendered = post.render(scope) if post is not None and post.workspace == workspace else None
        if rendered is None:
            return _error(404, "Post not found", "not_found")
        return _ok("Post retrieved", rendered)

    def _scope(self) -> set[str] | None:
        scope = self.scope_accounts
        return set(scope) if scope is not None else None

    def _list_answer(self, query: dict[str, str], workspace: str) -> _Response:
        try:
            limit = int(query.get("limit", str(DEFAULT_LIMIT)).strip())
        except ValueError:
            return _error(400, "limit must be a number", "invalid_query_parameter")
        limit = min(max(limit, 1), MAX_LIMIT)
        bounds: dict[str, datetime | None] = {}
        for name in ("since", "until"):
            raw = query.get(name)
            try:
                bounds[name] = _parse_bound(raw) if raw is not None else None
            except ValueError:
                return _error(400, f"{name} must be an ISO-8601 timestamp", f"invalid_{name}")
        since, until = bounds["since"], bounds["until"]
        wanted_status = query.get("status") or None
        scope = self._scope()
        with self._lock:
            self._settle_late_urls()
            posts = sorted(self._posts.values(), key=lambda p: (p.created_at, p.seq), reverse=True)
            # Only the answer's posts are rendered: a workspace of thousands stays quick to list.
            in_scope = [
                (post, post.status())
                for post in posts
                if post.workspace == workspace
                and (scope is None or any(state["account_id"] in scope for state in post.states))
            ]
            by_status = Counter(status for _, status in in_scope)
            chosen = [
                post
                for post, status in in_scope
                if (wanted_status is None or status == wanted_status)
                and (since is None or post.created_at >= since)
                and (until is None or post.created_at <= until)
            ][:limit]
            selected = [data for post in chosen if (data := post.render(scope)) is not None]
        summary = {
            "total": len(in_scope),
            "pending": by_status["pending"] + by_status["scheduled"],
            "published": by_status["posted"] + by_status["partial"],
            "by_status": dict(by_status),
        }
        return _ok("Posts retrieved", {"summary": summary, "posts": selected})

    def _accounts_answer(self, workspace: str) -> _Response:
        scope = self._scope()
        listed_id = workspace_id(workspace) if self.account_scope == "workspace" else None
        with self._lock:
            listed = [
                {"id": account_id, **{name: entry[name] for name in ACCOUNT_FIELDS}, "workspace_id": listed_id}
                | {"capabilities": copy.deepcopy(entry["capabilities"])}
                for account_id, entry in self._accounts.items()
                if self._account_workspaces.get(account_id) == workspace
                and (entry["status"] == "active" or self.list_inactive_accounts)
                and (scope is None or account_id in scope)
            ]
        data = {
            "scope": self.account_scope,
            "owner_user_id": DEFAULT_OWNER_USER_ID,
            "workspace_id": listed_id,
            "accounts": listed,
        }
        return _ok("Accounts retrieved", data)


def _default_account(account_id: str) -> dict[str, Any]:
    handle = f"creator_{account_id.replace('-', '')[:8]}"
    return {
        "platform": "tiktok",
        "type": "byo",
        "username": handle,
        "display_name": handle.replace("_", " ").title(),
        "status": "active",
        "capabilities": {
            "supported_content_kinds": ["single_video", "multi_image"],
            "caption_limit": 2200,
            "media_limits": {"max_images": 35, "max_video_seconds": 600},
        },
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    emulator: GenviralEmulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """No stderr output; unexpected handler errors are kept in `emulator.handler_errors`."""
        if isinstance(sys.exc_info()[1], OSError):  # the client went away: a timeout, a reset, ...
            return
        self.emulator.handler_errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GenviralEmulator/1.0"
    timeout = 60
    disable_nagle_algorithm = True
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        super().setup()
        self.server.emulator._track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.emulator._track(self.connection, open_=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's default stderr logging."""

    def do_GET(self) -> None:
        emulator = self.server.emulator
        with emulator._in_flight():
            self._dispatch(emulator)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self, emulator: GenviralEmulator) -> None:
        self._drain_body()
        url = urlsplit(self.path)
        route, post_id = _route(url.path)
        query = _first_values(url.query)
        if route == "post" and self.command == "GET" and post_id is not None:
            emulator._count_call(post_id)
        workspace = emulator._authorized_workspace(self.headers.get("Authorization"))
        authorized = workspace is not None
        response: _Response | None
        if route is None:
            response = _error(404, "Not found", "not_found")
        elif self.command != "GET":
            response = _error(405, "Method not allowed", "method_not_allowed")
        elif workspace is None:
            response = _error(401, "API key not found", "invalid_token")
        else:
            response = emulator._serve(route, post_id, query, workspace)
        emulator._record(
            RequestRecord(
                method=self.command,
                path=url.path,
                query=query,
                post_id=post_id,
                status=response.status if response is not None else 0,
                authorized=authorized,
                workspace=workspace,
            )
        )
        if response is None:
            self._abort()
        else:
            self._send(response, allow_get=route is not None and self.command != "GET")

    def _drain_body(self) -> None:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if 0 <= length <= 1_000_000:
            self.rfile.read(length)
        else:
            self.close_connection = True

    def _send(self, response: _Response, *, allow_get: bool) -> None:
        self.send_response(response.status)
        names = {name.lower() for name, _ in response.headers}
        for name, value in response.headers:
            self.send_header(name, value)
        if "content-length" not in names:
            self.send_header("Content-Length", str(len(response.body)))
        if allow_get:
            self.send_header("Allow", "GET")
        if self.close_connection:
            self.send_header("Connection", "close")
        if response.trickle_head:
            self._headers_buffer.append(b"\r\n")  # what end_headers() would send, sent here a byte at a time
            head, self._headers_buffer = b"".join(self._headers_buffer), []
            if not self._trickle(head, response.trickle):
                return
        else:
            self.end_headers()
        if self.command == "HEAD":
            return
        if response.trickle and not response.trickle_head:
            self._trickle(response.body, response.trickle)
        else:
            self.wfile.write(response.body)

    def _trickle(self, data: bytes, interval: float) -> bool:
        """`data` one byte every `interval` seconds; False when `stop()` ended it first."""
        stopping = self.server.emulator._stopping
        for index in range(len(data)):
            if stopping.wait(interval):
                self.close_connection = True
                return False
            self.wfile.write(data[index : index + 1])  # an OSError once the client has gone: ignored
        return True

    def _abort(self) -> None:
        """Close with SO_LINGER 0 so the client sees a connection reset, not a clean close."""
        self.close_connection = True
        with suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
