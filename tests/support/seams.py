"""The relay with crash seams, wired to the Genviral emulator and moto: what the fault tests drive.

Every side effect of a check (the Genviral fetch, the DynamoDB transaction, each target's publish,
the acknowledgement) passes a named seam. Arming a seam makes the process "die" there: a
`SimulatedCrash` (a BaseException, so nothing in the relay can catch it) is raised before or after
the real effect, exactly as a killed Lambda would leave things.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from genviral_relay.aws.batch_publishing import BatchPublisher
from genviral_relay.aws.dead_letters import SqsDeadLetters
from genviral_relay.aws.dynamodb_store import DynamoDbStore
from genviral_relay.aws.publishers import EventBridgePublisher, SnsPublisher
from genviral_relay.aws.secrets import SecretsManagerWorkspaceKeys
from genviral_relay.checking.account_health import AccountHealthCheck
from genviral_relay.checking.check import CheckOutcome, CheckTrigger
from genviral_relay.checking.ports import AccountSource, EventPublisher, PostPage, PostSource, PublishResult, WatchStore
from genviral_relay.clock import Clock, utc_now
from genviral_relay.genviral.client import ClientSettings, GenviralClient
from genviral_relay.models.domain import DueWatch, OutboxEntry, OutboxTarget, Target, WatchRecord
from genviral_relay.models.events import PublishedEvent, RelayEvent
from genviral_relay.models.messages import CheckRequest, SweepRequest, WorkRequest
from genviral_relay.models.upstream import AccountListing, Post
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE
from genviral_relay.notices.outbox import FLUSH_AFTER, NoticeOutbox
from genviral_relay.notices.ports import NoticeDocument, NoticeStore, PendingNotice, RelayRecord
from genviral_relay.polling.ports import WatchIndex
from genviral_relay.polling.work_batch import WorkItem
from genviral_relay.relay import compose_relay
from genviral_relay.webhooks.ports import NoticePublisher
from local.stack import MotoStack

SEAMS = (
    "after_fetch",  # Genviral answered; nothing stored yet
    "after_commit",  # state and outbox committed; nothing published
    "between_targets",  # the first target has the events, the second not yet
    "after_publish",  # every target has the events; not acknowledged
    "during_ack",  # the acknowledgement was about to be written
)


NOTICE_SEAMS = ("after_notice_commit",)  # a notice committed with its record; nothing published yet


class SimulatedCrash(BaseException):
    """The process dies here."""


@dataclass
class Seams:
    armed: dict[str, int] = field(default_factory=dict)
    """Seam -> how many more passes it lets through before the crash."""
    crashes: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(self, name: str, *, after: int = 0) -> None:
        """Crash at the (after + 1)-th pass of `name`, once."""
        if name not in SEAMS + NOTICE_SEAMS:
            raise ValueError(f"unknown seam {name}")
        self.armed[name] = after

    def passing(self, name: str) -> None:
        with self._lock:
            if name not in self.armed:
                return
            if self.armed[name] > 0:
                self.armed[name] -= 1
                return
            del self.armed[name]
            self.crashes.append(name)
        raise SimulatedCrash(name)


class SeamSource(PostSource, AccountSource):
    def __init__(self, inner: GenviralClient, seams: Seams) -> None:
        self._inner = inner
        self._seams = seams

    def get_post(self, post_id: str) -> Post:
        post = self._inner.get_post(post_id)
        self._seams.passing("after_fetch")
        return post

    def posts_in_status(self, status: str, *, limit: int) -> PostPage:
        return self._inner.posts_in_status(status, limit=limit)

    def posts_created(self, since: datetime, until: datetime, *, limit: int) -> PostPage:
        return self._inner.posts_created(since, until, limit=limit)

    def list_accounts(self) -> AccountListing:
        return self._inner.list_accounts()


class SeamStore(WatchStore, WatchIndex):
    """The checks' store with seams at the commit and the acknowledgement; `committed` counts how many
    commits wrote each event id (one per transition when transactions are atomic)."""

    def __init__(self, inner: DynamoDbStore, seams: Seams) -> None:
        self._inner = inner
        self._seams = seams
        self.committed: Counter[str] = Counter()
        self._lock = threading.Lock()

    def get(self, post_id: str) -> WatchRecord | None:
        return self._inner.get(post_id)

    def get_many(self, post_ids: Sequence[str]) -> dict[str, WatchRecord]:
        return self._inner.get_many(post_ids)

    def save(self, record: WatchRecord, *, expected_version: int, new_events: Sequence[RelayEvent]) -> bool:
        fed = self._inner.save(record, expected_version=expected_version, new_events=new_events)
        with self._lock:
            self.committed.update(event.event_id for event in new_events)
        self._seams.passing("after_commit")
        return fed

    def load_events(self, post_id: str, event_ids: Iterable[str]) -> list[RelayEvent]:
        return self._inner.load_events(post_id, event_ids)

    def acknowledge(
        self,
        post_id: str,
        published: Iterable[OutboxEntry],
        *,
        settle_version: int | None = None,
        settled_next_check_at: datetime | None = None,
    ) -> None:
        self._seams.passing("during_ack")
        self._inner.acknowledge(
            post_id, published, settle_version=settle_version, settled_next_check_at=settled_next_check_at
        )

    def delete(self, post_id: str, *, expected_version: int) -> None:
        self._inner.delete(post_id, expected_version=expected_version)

    def due_watches(self, now: datetime) -> Iterator[DueWatch]:
        return self._inner.due_watches(now)

    def claim_check(self, post_id: str, *, queued_at: datetime, now: datetime) -> bool:
        return self._inner.claim_check(post_id, queued_at=queued_at, now=now)

    def awaiting_retry(self, now: datetime, *, limit: int | None = None) -> Iterator[str]:
        return self._inner.awaiting_retry(now, limit=limit)

    def creation_moments(self, since: datetime, until: datetime, *, limit: int) -> list[datetime]:
        return self._inner.creation_moments(since, until, limit=limit)

    def watched_post_ids(self, *, limit: int | None = None, awaiting_retry: bool = True) -> Iterator[str]:
        return self._inner.watched_post_ids(limit=limit, awaiting_retry=awaiting_retry)


class SeamPublisher(EventPublisher, NoticePublisher):
    """A target with a seam after each publish, of events and of notices alike (the real publishers take both)."""

    def __init__(self, inner: BatchPublisher, seams: Seams, *, after: str) -> None:
        self.target = inner.target
        self._inner = inner
        self._seams = seams
        self._after = after

    def publish(self, events: Sequence[PublishedEvent]) -> PublishResult:
        result = self._inner.publish(events)
        self._seams.passing(self._after)
        return result


class SeamNoticeStore(NoticeStore):
    """The notice store with a seam after a commit that stored notices."""

    def __init__(self, inner: NoticeStore, seams: Seams) -> None:
        self._inner = inner
        self._seams = seams

    def record(self, name: str) -> RelayRecord | None:
        return self._inner.record(name)

    def commit(
        self,
        name: str,
        state: str,
        *,
        expected_version: int,
        notices: Sequence[NoticeDocument],
        owed: Collection[OutboxTarget],
        committed_at: datetime,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        self._inner.commit(
            name,
            state,
            expected_version=expected_version,
            notices=notices,
            owed=owed,
            committed_at=committed_at,
            attributes=attributes,
        )
        if notices:
            self._seams.passing("after_notice_commit")

    def pending(self) -> list[PendingNotice]:
        return self._inner.pending()

    def any_owed(self, committed_by: datetime) -> bool:
        return self._inner.any_owed(committed_by)

    def acknowledge(self, event_id: str, done: Collection[OutboxTarget]) -> None:
        self._inner.acknowledge(event_id, done)

    def notice(self, event_id: str) -> NoticeDocument | None:
        return self._inner.notice(event_id)


@dataclass
class Delivered:
    """Every event document the subscribers of each target received, in order."""

    sns: list[dict[str, Any]] = field(default_factory=list)
    eventbridge: list[dict[str, Any]] = field(default_factory=list)

    def of(self, target: Target) -> list[dict[str, Any]]:
        return self.sns if target == "sns" else self.eventbridge


class RelayRig:
    """The real check (emulator over loopback, moto) with seams; publishes to both targets."""

    def __init__(
        self,
        stack: MotoStack,
        genviral_api_url: str,
        *,
        sns_client: Any = None,
        events_client: Any = None,
        genviral_timeout: float = 0.5,
        workspace: str = DEFAULT_WORKSPACE,
        clock: Clock = utc_now,
    ) -> None:
        """`sns_client` / `events_client` replace the moto clients of the publishers (to inject faults).
        `genviral_timeout`: short, so hang faults cost little; a rig that injects none can afford to
        wait for a loaded machine. `workspace`: whose relay it is, composed as the deployment composes one (its view
        of the table, its key from the stack's secret). `clock`: the relay's (a test moves it to end pauses)."""
        self.stack = stack
        self.workspace = workspace
        self.clock = clock
        self.seams = Seams()
        self.tables = DynamoDbStore(
            stack.client("dynamodb"), stack.ref("StateTable"), event_retention=timedelta(days=30), clock=clock
        ).in_workspace(workspace)
        """The workspace's view of the table, without seams: the relay's own state (the pause, discover mode's
        progress)."""
        self.store = SeamStore(self.tables, self.seams)
        self.source = SeamSource(
            GenviralClient(
                genviral_api_url,
                SecretsManagerWorkspaceKeys(stack.client("secretsmanager"), stack.secret_arn).token_source(workspace),
                settings=ClientSettings(read_timeout=genviral_timeout, connect_timeout=genviral_timeout),
                sleep=no_sleep,
            ),
            self.seams,
        )
        self.publishers = [
            SeamPublisher(
                SnsPublisher(sns_client or stack.client("sns"), stack.ref("EventsTopic"), sleep=no_sleep),
                self.seams,
                after="between_targets",
            ),
            SeamPublisher(
                EventBridgePublisher(events_client or stack.client("events"), stack.ref("EventBus"), sleep=no_sleep),
                self.seams,
                after="after_publish",
            ),
        ]
        self.path = compose_relay(
            store=self.store,
            state=self.tables,
            source=self.source,
            publishers=self.publishers,
            dead_letters=SqsDeadLetters(stack.client("sqs"), stack.ref("EventsDLQ"), clock=clock),
            clock=clock,
            workspace=workspace,
        )
        self.accounts = AccountHealthCheck(
            source=self.source,
            store=self.store,
            index=self.store,
            state=self.tables,
            notices=NoticeOutbox(
                store=SeamNoticeStore(self.tables.notices, self.seams), publishers=self.publishers, clock=clock
            ),
            pause=self.path.pause,
            clock=clock,
            workspace=workspace,
        )
        """The account health check, with a seam between its commit and its publishing."""
        self.checker = self.path.checker
        self.delivered = Delivered()
        self.dead_lettered: list[dict[str, Any]] = []

    def check(self, post_id: str, trigger: CheckTrigger = "due") -> CheckOutcome | None:
        """One check; None when it crashed."""
        try:
            return self.checker.check(post_id, trigger=trigger)
        except SimulatedCrash:
            return None

    def work(self, post_ids: Sequence[str], *, sweep: bool = False) -> bool:
        """One worker batch, as the SQS worker runs it; False when the process crashed mid-batch."""
        requests: list[WorkRequest] = [CheckRequest(post_id=post_id) for post_id in post_ids]
        if sweep:
            requests.append(SweepRequest(sweep="retry"))
        batch = self.path.work_batch()
        try:
            batch.run([WorkItem(str(index), request) for index, request in enumerate(requests)])
        except SimulatedCrash:
            return False
        return True

    def check_accounts(self) -> bool:
        """One account health check, as a worker runs it for an `AccountsRequest`; False when it crashed."""
        try:
            self.accounts.run()
        except SimulatedCrash:
            return False
        return True

    def due(self, *, ahead: timedelta = timedelta(0)) -> list[str]:
        return list(self.store.due_post_ids(self.clock() + ahead))

    def tick(self, *, ahead: timedelta = timedelta(0)) -> bool:
        """What one poller tick queues (due checks, and the retry sweep if a post awaits one), run as one batch."""
        now = self.clock() + ahead
        return self.work(
            list(self.store.due_post_ids(now)), sweep=next(self.store.awaiting_retry(now, limit=1), None) is not None
        )

    def settle(self, post_ids: Iterable[str], *, rounds: int = 5) -> None:
        """Flush the notices still owed and check every post without faults until no outbox is left (what later
        ticks would do)."""
        self.seams.armed.clear()
        later = NoticeOutbox(
            store=self.tables.notices, publishers=self.publishers, clock=lambda: self.clock() + FLUSH_AFTER
        )
        later.flush()
        for _ in range(rounds):
            pending = False
            for post_id in post_ids:
                outcome = self.check(post_id, trigger="manual")
                pending = pending or bool(outcome and outcome.unpublished)
            if not pending:
                return

    def collect(self) -> Delivered:
        """Move what the subscribers received since the last call into `delivered`."""
        for message in self.stack.received("sns"):
            self.delivered.sns.append(json.loads(message["Message"]))
        for event in self.stack.received("eventbridge"):
            self.delivered.eventbridge.append(event["detail"])
        sqs = self.stack.client("sqs")
        while True:
            answer = sqs.receive_message(QueueUrl=self.stack.ref("EventsDLQ"), MaxNumberOfMessages=10)
            messages = answer.get("Messages", [])
            if not messages:
                break
            for message in messages:
                self.dead_lettered.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.stack.ref("EventsDLQ"), ReceiptHandle=message["ReceiptHandle"])
        return self.delivered


def no_sleep(_: float) -> None:
    """Backoff waits cost no wall-clock time in fault runs; their count is bounded by the retry settings."""
