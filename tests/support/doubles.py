"""In-memory doubles of every port, for the fast specs of the rules and for the benchmark.

Each subclasses the port it stands in for, so a port change breaks its double at once. The store
is contract-tested against the DynamoDB store (behaviour and call counts), so what the specs and
the benchmark see of it is what a deployment does; the others record what was asked of them and
can be told to fail the way the real adapter fails. A token needs no double: the client's own
`StaticToken` is one.
"""

from __future__ import annotations

import bisect
import copy
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime

from genviral_relay.aws.dynamodb_items import (
    DUE_SHARDS,
    due_shard,
    due_shards,
    refuse_other_workspace,
    retry_shard,
    view_of,
)
from genviral_relay.aws.dynamodb_store import BATCH_GET_LIMIT
from genviral_relay.aws.webhook_items import EDITABLE
from genviral_relay.checking.ports import (
    AccountSource,
    DeadLetters,
    EventPublisher,
    EventSelection,
    OperatorQueries,
    PostPage,
    PostSource,
    PublishFailure,
    PublishResult,
    RelayState,
    WatchStore,
)
from genviral_relay.clock import Clock, format_ts, parse_ts, to_milliseconds, utc_now
from genviral_relay.errors import (
    DeadLetterError,
    EnqueueError,
    GenviralNotFoundError,
    StateConflictError,
    TooManyWebhooksError,
    WebhookExistsError,
    WebhookSecretError,
)
from genviral_relay.feed.appending import appended_after_commit
from genviral_relay.models.domain import AccountDirectory, DiscoverState, DueWatch, OutboxEntry, Target, WatchRecord
from genviral_relay.models.events import PublishedEvent, RelayEvent
from genviral_relay.models.messages import WorkRequest
from genviral_relay.models.pause import PAUSE_RECORD, PauseRecord, PauseStatus
from genviral_relay.models.relay_notices import AccountStatusEvent, RelayStateEvent
from genviral_relay.models.upstream import Account, AccountListing, Post
from genviral_relay.models.webhooks import SigningSecret, WebhookDelivery, WebhookEndpoint, is_plaintext_secret
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE, scoped, stored_workspace, workspace_of
from genviral_relay.polling.ports import WatchIndex, WorkQueue
from genviral_relay.rules.event_feed import feed_entries, in_time
from genviral_relay.rules.webhook_urls import Destination, HostResolver
from genviral_relay.webhooks.ports import (
    AttemptRecord,
    DeliveryQueue,
    NoticePublisher,
    SecretBox,
    StoredEvents,
    WebhookAnswer,
    WebhookSender,
    WebhookStore,
)
from tests.support.event_log_doubles import InMemoryEventLog
from tests.support.notice_doubles import InMemoryNoticeStore

__all__ = [
    "InMemoryDeadLetters",
    "InMemoryDeliveryQueue",
    "InMemoryPostSource",
    "InMemorySecretBox",
    "InMemoryStore",
    "InMemoryStoredEvents",
    "InMemoryWebhookStore",
    "InMemoryWorkQueue",
    "RecordingPublisher",
    "RecordingSender",
    "StaticResolver",
    "SteppingClock",
]


class SteppingClock:
    """A clock that stands still until a test or the benchmark moves `now`."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class InMemoryPostSource(PostSource, AccountSource):
    """Genviral as a dict of posts and one of listed accounts. `fail_next[post_id]` (or `"list"` for
    both list calls, `"accounts"` for the account list) raises that error once per entry: a
    `GenviralError` as the client raises it, any other exception to stand for a bug; `calls` counts
    what was asked."""

    def __init__(self, posts: Iterable[Post] = ()) -> None:
        self.posts: dict[str, Post] = {post.id: post for post in posts}
        self.accounts: dict[str, Account] = {}
        """The accounts `list_accounts` answers (Genviral lists active ones only: leave others out)."""
        self.unreadable_accounts: list[str] = []
        """Ids of listed items that do not match the documented shape."""
        self.account_scope: tuple[str | None, str | None] = ("workspace", "ws-test")
        """The listing's (scope, workspace_id)."""
        self.fail_next: dict[str, list[Exception]] = {}
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def put(self, post: Post) -> None:
        with self._lock:
            self.posts[post.id] = post

    def _raise_scripted(self, key: str) -> None:
        with self._lock:
            errors = self.fail_next.get(key)
            error = errors.pop(0) if errors else None
        if error is not None:
            raise error

    def get_post(self, post_id: str) -> Post:
        self.calls["get_post"] += 1
        self._raise_scripted(post_id)
        with self._lock:
            post = self.posts.get(post_id)
        if post is None:
            raise GenviralNotFoundError(f"no post {post_id}", status=404, error_code="not_found")
        return post

    def set_account(self, account_id: str, **fields: str | None) -> Account:
        """List an account (fields default to a TikTok BYO account named after the id)."""
        defaults: dict[str, str | None] = {
            "platform": "tiktok",
            "type": "byo",
            "username": f"creator_{account_id[:8]}",
            "display_name": f"Creator {account_id[:8]}",
            "status": "active",
        }
        account = Account(id=account_id, **(defaults | fields))
        with self._lock:
            self.accounts[account_id] = account
        return account

    def list_accounts(self) -> AccountListing:
        self.calls["list_accounts"] += 1
        self._raise_scripted("accounts")
        scope, workspace_id = self.account_scope
        with self._lock:
            return AccountListing(
                accounts=tuple(self.accounts.values()),
                unreadable_ids=tuple(self.unreadable_accounts),
                scope=scope,
                workspace_id=workspace_id,
            )

    def posts_in_status(self, status: str, *, limit: int) -> PostPage:
        self.calls["posts_in_status"] += 1
        self._raise_scripted("list")
        with self._lock:
            found = [post for post in self.posts.values() if post.status == status]
        found.sort(key=lambda post: post.created_at or "", reverse=True)
        return PostPage(posts=tuple(found[:limit]), unreadable_ids=(), size=min(len(found), limit))

    def posts_created(self, since: datetime, until: datetime, *, limit: int) -> PostPage:
        self.calls["posts_created"] += 1
        self._raise_scripted("list")
        with self._lock:
            found = [
                post
                for post in self.posts.values()
                if (created := parse_ts(post.created_at)) is not None and since <= created <= until
            ]
        found.sort(key=lambda post: post.created_at or "", reverse=True)
        return PostPage(posts=tuple(found[:limit]), unreadable_ids=(), size=min(len(found), limit))


class RecordingPublisher(EventPublisher, NoticePublisher):
    """Publishes by recording, as the real publishers report. `failing`: every event fails retryably
    (throttled); `down`: the target refuses every call as a whole with this code (the topic or bus
    missing, access denied: every event kept, as `aws/publishers.py` reports it); `refusing`: every
    event is refused for good (malformed); `refused_ids`: only these events are (one bad entry, the
    rest published); `crashing`: the process dies mid-call. `calls` counts the publishes asked for.
    Notices (`account.*`, `relay.*`) are recorded apart, in `notices`."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.published: list[RelayEvent] = []
        self.notices: list[PublishedEvent] = []
        self.failing = False
        self.down: str | None = None
        self.refusing = False
        self.refused_ids: set[str] = set()
        self.crashing = False
        self.calls = 0

    def publish(self, events: Sequence[PublishedEvent]) -> PublishResult:
        self.calls += 1
        if self.crashing:
            raise SystemExit("process killed while publishing")
        if self.failing:
            return PublishResult(failed={e.event_id: PublishFailure("ThrottlingException", True) for e in events})
        if self.down is not None:
            return PublishResult(failed={e.event_id: PublishFailure(self.down, True) for e in events})
        if self.refusing:
            return PublishResult(failed={e.event_id: PublishFailure("MalformedDetail: no", False) for e in events})
        taken = [event for event in events if event.event_id not in self.refused_ids]
        self.published.extend(event for event in taken if isinstance(event, RelayEvent))
        self.notices.extend(event for event in taken if not isinstance(event, RelayEvent))
        return PublishResult(
            published={event.event_id for event in taken},
            failed={
                e.event_id: PublishFailure("ValidationException: bad entry", False)
                for e in events
                if e.event_id in self.refused_ids
            },
        )


class InMemoryDeadLetters(DeadLetters):
    """Parks by recording; `failing`: parking itself fails (the event then stays in the outbox)."""

    def __init__(self) -> None:
        self.parked: list[tuple[RelayEvent, Target, str]] = []
        self.failing = False

    def park(self, event: RelayEvent, target: Target, reason: str) -> None:
        if self.failing:
            raise DeadLetterError("the dead-letter queue is unavailable")
        self.parked.append((event, target, reason))


class InMemoryWorkQueue(WorkQueue):
    """Queues by recording; `failing`: the send fails as SQS refusing the batch does. `waiting` is what
    `backlog` answers (None: the counts are unknown), set by a spec or by whoever consumes `sent`."""

    def __init__(self) -> None:
        self.sent: list[tuple[WorkRequest, str | None]] = []
        self.failing = False
        self.waiting: int | None = 0

    def backlog(self) -> int | None:
        return self.waiting

    def send(self, requests: Iterable[WorkRequest], *, correlation_id: str | None = None) -> int:
        batch = list(requests)
        if self.failing:
            raise EnqueueError(f"{len(batch)} work requests could not be queued")
        self.sent.extend((request, correlation_id) for request in batch)
        return len(batch)


class InMemoryStore(WatchStore, WatchIndex, OperatorQueries, RelayState):
    """Every store port in memory, with the DynamoDB store's semantics, counting the DynamoDB calls
    the real store would make for the same work (`tests/functional/test_store_contract.py` runs one
    script on both and compares the counts).

    `in_workspace` answers a view of the same data, as the DynamoDB store's: its index reads, its relay items and
    its notice records are the workspace's; watches by post id, events and notices are everyone's. The plain store
    is `default`'s view."""

    def __init__(self, *, feed: InMemoryEventLog | None = None, clock: Clock = utc_now) -> None:
        """`feed`: where `save` puts the feed entries (its own when None); `clock`: their commit stamps."""
        self.feed = feed if feed is not None else InMemoryEventLog()
        self._landing: list[Callable[[str], None]] = [lambda post_id: None]  # one seam for every view
        self._clock = clock
        self.calls: Counter[str] = Counter()
        self._workspace = DEFAULT_WORKSPACE
        self._watches: dict[str, WatchRecord] = {}
        self._events: dict[tuple[str, str], RelayEvent] = {}
        self._notices = InMemoryNoticeStore(calls=self.calls)
        self._discover: dict[str, DiscoverState] = {}
        self._directory: dict[str, AccountDirectory] = {}
        """Each workspace's, under its scoped name (as the table's items)."""
        self._created_orders: dict[str, list[datetime]] = {}
        """Each workspace's watches' creation moments (the created index), sorted when first asked for after a
        change (the benchmark asks often)."""
        self._lock = threading.Lock()

    def in_workspace(self, workspace: str) -> InMemoryStore:
        """The same data seen as `workspace`'s (`DynamoDbStore.in_workspace`)."""
        view = copy.copy(self)
        view._workspace = view_of(workspace)
        view._notices = self._notices.in_workspace(workspace)
        return view

    @property
    def workspace(self) -> str:
        return self._workspace

    @property
    def landing(self) -> Callable[[str], None]:
        """Called between a commit's stamp and its write (a seam: a test holds one commit while others land)."""
        return self._landing[0]

    @landing.setter
    def landing(self, seam: Callable[[str], None]) -> None:
        self._landing[0] = seam

    def _own(self, record: WatchRecord) -> bool:
        """Whether the view's index reads see `record` (its workspace's shards and partition)."""
        return workspace_of(record.workspace) == self._workspace

    def get(self, post_id: str) -> WatchRecord | None:
        with self._lock:
            self.calls["get_item"] += 1
            return self._watches.get(post_id)

    def peek(self, post_id: str) -> WatchRecord | None:
        """The stored watch without counting a call: the benchmark's bookkeeping, not the relay's."""
        with self._lock:
            return self._watches.get(post_id)

    def get_many(self, post_ids: Sequence[str]) -> dict[str, WatchRecord]:
        unique = list(dict.fromkeys(post_ids))
        with self._lock:
            self.calls["batch_get_item"] += -(-len(unique) // BATCH_GET_LIMIT)
            return {post_id: self._watches[post_id] for post_id in unique if post_id in self._watches}

    def save(self, record: WatchRecord, *, expected_version: int, new_events: Sequence[RelayEvent]) -> bool:
        if record.version != expected_version + 1:
            raise ValueError("a saved watch must be exactly one version ahead of the stored one")
        refuse_other_workspace(record, self._workspace)
        if record.workspace is not None and stored_workspace(record.workspace) is None:
            record = record.model_copy(update={"workspace": None})  # as the table reads `default` back: absent
        committed_at = self._clock()
        entries = feed_entries(new_events, committed_at)
        self.landing(record.post_id)
        with self._lock:
            self.calls["transact_write_items"] += 1
            stored = self._watches.get(record.post_id)
            if (stored.version if stored else 0) != expected_version:
                raise StateConflictError(record.post_id)
            self._watches[record.post_id] = record
            if stored is None or stored.created_at != record.created_at:
                self._created_orders.clear()
            for event in new_events:
                self._events[(event.post_id, event.event_id)] = event
            self.feed.append(entries)
        if entries and not in_time(committed_at, self._clock()):
            self.calls["put_item"] += len(entries)
        return appended_after_commit(self.feed, entries, committed_at, self._clock)

    def load_events(self, post_id: str, event_ids: Iterable[str]) -> list[RelayEvent]:
        wanted = sorted(set(event_ids))
        with self._lock:
            self.calls["batch_get_item"] += -(-len(wanted) // BATCH_GET_LIMIT)
            found = [self._events[(post_id, event_id)] for event_id in wanted if (post_id, event_id) in self._events]
        return sorted(found, key=lambda event: (event.detected_at, event.event_id))

    def find_events(self, selection: EventSelection) -> list[RelayEvent]:
        with self._lock:
            self.calls["query" if selection.post_id is not None else "scan"] += 1
            found = [event for event in self._events.values() if selection.matches(event)]
        return sorted(found, key=lambda event: (event.detected_at, event.event_id))

    def watches(self) -> Iterator[WatchRecord]:
        with self._lock:
            self.calls["scan"] += 1
            return iter(list(self._watches.values()))

    def acknowledge(
        self,
        post_id: str,
        published: Iterable[OutboxEntry],
        *,
        settle_version: int | None = None,
        settled_next_check_at: datetime | None = None,
    ) -> None:
        done = set(published)
        if not done:
            return
        with self._lock:
            stored = self._watches.get(post_id)
            self.calls["update_item"] += 1
            if stored is None:
                return
            update: dict[str, object] = {"outbox": stored.outbox - done, "version": stored.version + 1}
            if settle_version is not None:
                if stored.version == settle_version:
                    update["next_check_at"] = settled_next_check_at
                else:
                    self.calls["update_item"] += 1  # the real store retries without the settle
            self._watches[post_id] = stored.model_copy(update=update)

    def delete(self, post_id: str, *, expected_version: int) -> None:
        with self._lock:
            self.calls["delete_item"] += 1
            stored = self._watches.get(post_id)
            if stored is None or stored.version != expected_version:
                raise StateConflictError(post_id)
            del self._watches[post_id]
            self._created_orders.clear()

    def due_watches(self, now: datetime) -> Iterator[DueWatch]:
        with self._lock:
            self.calls["query"] += DUE_SHARDS + 1  # and the retry shard
            due = [
                (record.next_check_at, post_id)
                for post_id, record in self._watches.items()
                if self._own(record) and record.next_check_at is not None and record.next_check_at <= now
            ]
        return iter([DueWatch(post_id, moment) for moment, post_id in sorted(due)])

    def claim_check(self, post_id: str, *, queued_at: datetime, now: datetime) -> bool:
        with self._lock:
            self.calls["update_item"] += 1
            stored = self._watches.get(post_id)
            # Compared as the table stores them (milliseconds), as the DynamoDB condition does.
            if stored is None or (
                stored.claimed_at is not None and format_ts(stored.claimed_at) >= format_ts(queued_at)
            ):
                return False
            self._watches[post_id] = stored.model_copy(update={"claimed_at": now})
            return True

    def awaiting_retry(self, now: datetime, *, limit: int | None = None) -> Iterator[str]:
        with self._lock:
            self.calls["query"] += 1
            waiting = sorted(
                (record.next_check_at, post_id)
                for post_id, record in self._watches.items()
                if self._own(record)
                and record.awaiting_retry
                and record.next_check_at is not None
                and record.next_check_at > now
            )
        return iter([post_id for _, post_id in waiting[:limit]])

    def watched_post_ids(self, *, limit: int | None = None, awaiting_retry: bool = True) -> Iterator[str]:
        with self._lock:
            shards: dict[str, list[tuple[datetime, str]]] = {}
            for post_id, record in self._watches.items():
                if record.next_check_at is not None:
                    workspace = record.workspace
                    shard = retry_shard(workspace) if record.awaiting_retry else due_shard(post_id, workspace)
                    shards.setdefault(shard, []).append((record.next_check_at, post_id))
            found: list[str] = []
            # the real store's order, one query each, of the view's shards
            for shard in due_shards(self._workspace, awaiting_retry=awaiting_retry):
                if limit is not None and len(found) >= limit:
                    break
                self.calls["query"] += 1
                in_order = [post_id for _, post_id in sorted(shards.get(shard, []))]  # the index's order
                found.extend(in_order[: None if limit is None else limit - len(found)])
        return iter(found)

    def creation_moments(self, since: datetime, until: datetime, *, limit: int) -> list[datetime]:
        with self._lock:
            self.calls["query"] += 1
            order = self._created_orders.get(self._workspace)
            if order is None:
                moments = (parse_ts(record.created_at) for record in self._watches.values() if self._own(record))
                order = sorted(to_milliseconds(moment) for moment in moments if moment is not None)
                self._created_orders[self._workspace] = order
            start = bisect.bisect_left(order, to_milliseconds(since))
            end = bisect.bisect_right(order, to_milliseconds(until), lo=start)
            return order[start : min(end, start + limit)]

    def soonest_due(self, now: datetime) -> datetime | None:
        """When the poller next has work, in any workspace: a due check, or now while a post awaits the retry sweep.

        The benchmark skips idle minutes with it; not counted as a DynamoDB call.
        """
        with self._lock:
            records = [record for record in self._watches.values() if record.next_check_at is not None]
        if any(record.awaiting_retry and record.next_check_at > now for record in records):  # type: ignore[operator]
            return now
        return min((record.next_check_at for record in records if record.next_check_at), default=None)

    def genviral_pause(self, now: datetime) -> PauseStatus:
        with self._lock:
            self.calls["get_item"] += 1
        record = self.notices.records.get(self._pause_name)
        attributes = self.notices.attributes.get(self._pause_name, {})
        return PauseStatus.read(
            now,
            version=record.version if record else 0,
            state=record.state if record else None,
            until=attributes.get("until"),
            reason=attributes.get("reason"),
        )

    @property
    def notices(self) -> InMemoryNoticeStore:
        """The notice outbox's store, counting its calls with this store's (one table)."""
        return self._notices

    def store_pause(self, *, until: datetime, reason: str, http_status: int | None = 402) -> PauseRecord:
        """A spec's Given: a pause open from now (`until` ahead), as a refusal commits it but without its notice."""
        record = self.notices.records.get(self._pause_name)
        pause = PauseRecord(paused_at=self._clock(), until=until, reason=reason, http_status=http_status)
        self.notices.commit(
            PAUSE_RECORD,
            pause.model_dump_json(),
            expected_version=record.version if record else 0,
            notices=(),
            owed=(),
            committed_at=self._clock(),
            attributes={"until": format_ts(until), "reason": reason},
        )
        return pause

    @property
    def stored_pause(self) -> PauseRecord | None:
        """The pause as last stored, whatever the time, for the specs (not a port method: no call counted)."""
        record = self.notices.records.get(self._pause_name)
        return PauseRecord.model_validate_json(record.state) if record else None

    @property
    def _pause_name(self) -> str:
        return scoped(PAUSE_RECORD, self._workspace)

    def discover_state(self) -> DiscoverState | None:
        with self._lock:
            self.calls["get_item"] += 1
            return self._discover.get(self._workspace)

    def save_discover_state(self, state: DiscoverState, *, expected_version: int) -> None:
        if state.version != expected_version + 1:
            raise ValueError("a saved discover state must be exactly one version ahead of the stored one")
        with self._lock:
            self.calls["put_item"] += 1
            stored = self._discover.get(self._workspace)
            if (stored.version if stored else 0) != expected_version:
                raise StateConflictError("discover state")
            self._discover[self._workspace] = state

    def account_directory(self) -> AccountDirectory | None:
        with self._lock:
            self.calls["get_item"] += 1
            return self._directory.get(self._workspace)

    def save_account_directory(self, directory: AccountDirectory) -> None:
        with self._lock:
            self.calls["put_item"] += 1
            self._directory[self._workspace] = directory


# ---------------------------------------------------------------------- webhooks
class InMemoryWebhookStore(WebhookStore):
    """The endpoints in memory, health updated as the DynamoDB store updates it (only while the endpoint exists);
    a registration's checks and write are one step, as the DynamoDB store's transaction is. Being one step here by
    construction, no race on the double can fail: the races are tested on the DynamoDB store
    (tests/functional/test_webhook_registrations.py)."""

    def __init__(self) -> None:
        self.items: dict[str, WebhookEndpoint] = {}
        self.subscriptions: dict[str, str] = {}
        """subscription_key -> the endpoint that owns it (a 0.4 duplicate, `add_04`, owns none)."""
        self._lock = threading.Lock()

    def create(self, endpoint: WebhookEndpoint, *, limit: int) -> None:
        with self._lock:
            existing = self.subscriptions.get(endpoint.subscription_key)
            if existing is not None:
                raise WebhookExistsError(existing)
            if len(self.items) >= limit:
                raise TooManyWebhooksError(f"at most {limit} webhook endpoints; delete one first")
            self.items[endpoint.id] = endpoint
            self.subscriptions[endpoint.subscription_key] = endpoint.id

    def add_04(self, endpoint: WebhookEndpoint) -> None:
        """An endpoint as 0.4 stored it: no count, no subscription (the DynamoDB store adopts them on first use,
        the oldest of those that share a subscription owning it; the double does that now)."""
        with self._lock:
            self.items[endpoint.id] = endpoint
            owner = self.items.get(self.subscriptions.get(endpoint.subscription_key, endpoint.id), endpoint)
            oldest = min(owner, endpoint, key=WebhookEndpoint.registration_order)
            self.subscriptions[endpoint.subscription_key] = oldest.id

    def endpoint(self, webhook_id: str) -> WebhookEndpoint | None:
        return self.items.get(webhook_id)

    def endpoints(self) -> list[WebhookEndpoint]:
        return sorted(
            (endpoint.model_copy(update={"secrets": ()}) for endpoint in self.items.values()),
            key=WebhookEndpoint.registration_order,
        )

    def delete(self, webhook_id: str) -> bool:
        with self._lock:
            endpoint = self.items.pop(webhook_id, None)
            if endpoint is not None and self.subscriptions.get(endpoint.subscription_key) == webhook_id:
                del self.subscriptions[endpoint.subscription_key]
            return endpoint is not None

    def plaintext_keyed(self) -> list[WebhookEndpoint]:
        return sorted(
            (e for e in self.items.values() if e.keyed_in_clear),
            key=WebhookEndpoint.registration_order,
        )

    def replace_secrets(
        self, webhook_id: str, secrets: Sequence[SigningSecret], *, replacing: Sequence[SigningSecret] | None = None
    ) -> bool:
        if webhook_id not in self.items:
            return False
        held = [secret.value for secret in self.items[webhook_id].secrets]
        if replacing is not None and held != [secret.value for secret in replacing]:
            return False
        self.items[webhook_id] = self.items[webhook_id].model_copy(update={"secrets": tuple(secrets)})
        return True

    def record_attempt(self, webhook_id: str, outcome: AttemptRecord) -> None:
        endpoint = self.items.get(webhook_id)
        if endpoint is None:
            return
        health = endpoint.health
        pending = health.attempts_pending + outcome.pending_change
        if not outcome.made:
            health = health.model_copy(update={"attempts_pending": pending})
        elif outcome.succeeded:
            health = health.model_copy(
                update={"last_success_at": outcome.at, "failing_since": None, "attempts_pending": pending}
            )
        else:
            health = health.model_copy(
                update={
                    "last_failure_at": outcome.at,
                    "last_failure_status": outcome.status,
                    "last_failure_reason": outcome.reason,
                    "failing_since": health.failing_since or outcome.at,
                    "attempts_pending": pending,
                }
            )
        self.items[webhook_id] = endpoint.model_copy(update={"health": health})

    def update(self, endpoint: WebhookEndpoint, *, previous: WebhookEndpoint) -> bool:
        with self._lock:
            stored = self.items.get(endpoint.id)
            if stored is None or any(getattr(stored, name) != getattr(previous, name) for name in EDITABLE):
                return False  # gone, or another edit came first (as the store's condition on every field read)
            old_key, new_key = previous.subscription_key, endpoint.subscription_key
            if new_key != old_key:
                owner = self.subscriptions.get(new_key)
                if owner is not None and owner != endpoint.id:
                    raise WebhookExistsError(owner)
                if self.subscriptions.get(old_key) == endpoint.id:
                    del self.subscriptions[old_key]
                self.subscriptions[new_key] = endpoint.id
            self.items[endpoint.id] = stored.model_copy(update={name: getattr(endpoint, name) for name in EDITABLE})
            return True

    def set_enabled(
        self,
        webhook_id: str,
        enabled: bool,
        *,
        at: datetime,
        reason: str | None = None,
        failing_since: datetime | None = None,
    ) -> bool:
        with self._lock:
            stored = self.items.get(webhook_id)
            if stored is None or stored.enabled == enabled:
                return False
            if failing_since is not None and stored.health.failing_since != failing_since:
                return False  # a success or an enable since the read: as the store's condition
            if enabled:
                health = stored.health.model_copy(update={"failing_since": None})
                changes: dict[str, object] = {"enabled": True, "disabled_at": None, "disabled_reason": None}
                self.items[webhook_id] = stored.model_copy(update={**changes, "health": health})
            else:
                changes = {"enabled": False, "disabled_at": at, "disabled_reason": reason or "disabled"}
                self.items[webhook_id] = stored.model_copy(update=changes)
            return True


class InMemorySecretBox(SecretBox):
    """Seals reversibly, bound to the endpoint as KMS's encryption context binds it; `opened` counts the opens."""

    PREFIX = "test-sealed:"

    def __init__(self) -> None:
        self.opened = 0

    def seal(self, webhook_id: str, secret: str) -> str:
        return f"{self.PREFIX}{webhook_id}:{secret[::-1]}"

    def open(self, webhook_id: str, sealed: str) -> str:
        if is_plaintext_secret(sealed):
            return sealed  # as KmsSecretBox answers a 0.4 key
        if not sealed.startswith(f"{self.PREFIX}{webhook_id}:"):
            raise WebhookSecretError(f"could not open the signing key of {webhook_id}: InvalidCiphertextException")
        self.opened += 1
        return sealed.rsplit(":", 1)[1][::-1]


class InMemoryDeliveryQueue(DeliveryQueue):
    """Queues and parks by recording; `failing`: SQS refuses every send; `refused_entries`: the positions, in
    each send, of the deliveries SQS refuses alone (a `Failed[]` entry); `parking_fails`: the DLQ refuses."""

    def __init__(self) -> None:
        self.sent: list[WebhookDelivery] = []
        self.parked: list[tuple[WebhookDelivery, str]] = []
        self.failing = False
        self.refused_entries: set[int] = set()
        self.parking_fails = False

    def send(self, deliveries: Sequence[WebhookDelivery]) -> list[int]:
        refused = range(len(deliveries)) if self.failing else sorted(self.refused_entries & set(range(len(deliveries))))
        self.sent.extend(delivery for index, delivery in enumerate(deliveries) if index not in refused)
        return list(refused)

    def park(self, delivery: WebhookDelivery, reason: str) -> None:
        if self.parking_fails:
            raise DeadLetterError("the webhook dead-letter queue is unavailable")
        self.parked.append((delivery, reason))

    def take(self) -> list[WebhookDelivery]:
        """What was queued since the last take (the next messages SQS would hand out)."""
        taken, self.sent = self.sent, []
        return taken


class InMemoryStoredEvents(StoredEvents):
    """The stored events deliveries sign: `add` stores a relay event as the check does, or a notice as the notice
    outbox does; test events as the test route stores them."""

    def __init__(self) -> None:
        self.relay: dict[tuple[str, str], RelayEvent] = {}
        self.notices: dict[str, AccountStatusEvent | RelayStateEvent] = {}
        self.tests: dict[tuple[str, str], tuple[str, datetime]] = {}

    def add(self, event: RelayEvent | AccountStatusEvent | RelayStateEvent) -> None:
        if isinstance(event, RelayEvent):
            self.relay[(event.post_id, event.event_id)] = event
        else:
            self.notices[event.event_id] = event

    def relay_event(self, post_id: str, event_id: str) -> RelayEvent | None:
        return self.relay.get((post_id, event_id))

    def notice(self, event_id: str) -> AccountStatusEvent | RelayStateEvent | None:
        return self.notices.get(event_id)

    def test_event(self, webhook_id: str, event_id: str) -> str | None:
        stored = self.tests.get((webhook_id, event_id))
        return stored[0] if stored is not None else None

    def store_test_event(self, webhook_id: str, event_id: str, document: str, *, expires_at: datetime) -> None:
        self.tests[(webhook_id, event_id)] = (document, expires_at)


class StaticResolver(HostResolver):
    """Answers from `names` (host -> addresses); a host not in it does not resolve. Change `names` to rebind."""

    def __init__(self, names: dict[str, list[str]] | None = None) -> None:
        self.names = dict(names or {})
        self.asked: list[str] = []

    def addresses(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.names:
            raise OSError(f"{host} does not resolve")
        return list(self.names[host])


class RecordingSender(WebhookSender):
    """Records each attempt and answers from `answers` in order (then 200)."""

    timeout = 10.0  # the real sender's bound, for the specs of the delivery function's deadline

    def __init__(self, *answers: WebhookAnswer) -> None:
        self.answers = list(answers)
        self.posts: list[tuple[Destination, dict[str, str], bytes]] = []

    def post(self, destination: Destination, headers: Mapping[str, str], body: bytes) -> WebhookAnswer:
        self.posts.append((destination, dict(headers), body))
        return self.answers.pop(0) if self.answers else WebhookAnswer(status=200, reason="OK")
