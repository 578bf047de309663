"""The DynamoDB store (on moto) and `InMemoryStore`, the store of the fast specs and the benchmark,
run one script each: they must answer alike, step by step, and make the same DynamoDB calls for the
same work (the in-memory store counts the calls the real one would make; the real one is counted
through `tests/support/counting.py`). The counts are compared with each other, never with fixed figures, so
a change to the real store's calls fails here until the in-memory store follows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from genviral_relay.aws.dynamodb_store import DynamoDbStore
from genviral_relay.checking.ports import EventSelection
from genviral_relay.clock import format_ts, utc_now
from genviral_relay.errors import RelayError, StateConflictError
from genviral_relay.models.domain import (
    AccountDirectory,
    CreatedWindow,
    DirectoryEntry,
    DiscoverState,
    OutboxEntry,
    WatchRecord,
)
from genviral_relay.models.pause import PAUSE_RECORD, PauseRecord, PauseStatus
from genviral_relay.rules.transitions import detect_transitions
from local.stack import MotoStack
from tests.builders import ACCOUNT_A, ACCOUNT_B, account, post
from tests.support.counting import CountingClient
from tests.support.doubles import InMemoryStore

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
POSTS = [f"00000000-0000-4000-8000-{index:012d}" for index in range(1, 4)]
UNKNOWN = "99999999-0000-4000-8000-000000000000"
LATER = "00000000-0000-4000-8000-000000000009"


Store = DynamoDbStore | InMemoryStore
T = TypeVar("T")


@dataclass(frozen=True)
class Raised:
    error: str


def raised(error: type[RelayError]) -> Raised:
    return Raised(error.__name__)


@dataclass
class Run:
    """One store running a script: every step's answer and the DynamoDB calls it made."""

    store: Store
    calls: Counter[str]
    steps: list[tuple[str, object, dict[str, int]]] = field(default_factory=list)

    def step(self, name: str, action: Callable[[Store], T]) -> T | Raised:
        """Do `action` on the store; answer what it returned, or the relay error it raised."""
        before = Counter(self.calls)
        answer: T | Raised
        try:
            answer = action(self.store)
        except RelayError as error:
            answer = Raised(type(error).__name__)
        self.steps.append((name, answer, dict(sorted((self.calls - before).items()))))
        return answer

    def listing(self, name: str, action: Callable[[Store], Iterable[T]]) -> list[T]:
        """A step that answers an iterator (read to the end, as part of the step)."""
        answer = self.step(name, lambda store: list(action(store)))
        assert not isinstance(answer, Raised), f"{name}: {answer}"
        return answer


ACME = "acme"


def acme(store: Store) -> Store:
    """acme's view of the same table (no call made)."""
    return store.in_workspace(ACME)


def watch(post_id: str, version: int, **fields: object) -> WatchRecord:
    return WatchRecord(post_id=post_id, version=version, registered_at=NOW, **fields)  # type: ignore[arg-type]


def commit_pause(store: Store, pause: PauseRecord, *, expected_version: int = 0) -> None:
    """As `GenviralPause` writes it (without a notice: the notice store's own contract covers those)."""
    store.notices.commit(
        PAUSE_RECORD,
        pause.model_dump_json(),
        expected_version=expected_version,
        notices=(),
        owed=(),
        committed_at=NOW,
        attributes={"until": format_ts(pause.until), "reason": pause.reason},
    )


def watches_outbox_and_due_index(run: Run) -> None:
    events = detect_transitions(None, post(account(status="posted"), post_id=POSTS[0]), NOW).events
    assert [event.event_type for event in events] == ["post.account.posted", "post.completed"]
    outbox = frozenset(OutboxEntry(event_id=e.event_id, target=t) for e in events for t in ("sns", "eventbridge"))
    pending = watch(POSTS[0], 1, next_check_at=NOW, outbox=outbox, settled_next_check_at=None)

    # Registrations: one with pending events due now, one due later, one overdue
    run.step("save with events", lambda s: s.save(pending, expected_version=0, new_events=events))
    later = watch(POSTS[1], 1, next_check_at=NOW + timedelta(hours=1))
    run.step("save", lambda s: s.save(later, expected_version=0, new_events=()))
    overdue = watch(POSTS[2], 1, next_check_at=NOW - timedelta(minutes=5))
    run.step("save overdue", lambda s: s.save(overdue, expected_version=0, new_events=()))
    stale = run.step("save on a stale version", lambda s: s.save(watch(POSTS[1], 1), expected_version=0, new_events=()))
    assert stale == raised(StateConflictError)

    many = run.step("get_many, repeats and unknowns", lambda s: s.get_many([*POSTS, POSTS[0], UNKNOWN]))
    assert not isinstance(many, Raised)
    assert set(many) == set(POSTS)
    assert run.listing("due now", lambda s: s.due_post_ids(NOW)) == [POSTS[2], POSTS[0]]
    loaded = run.step("load_events", lambda s: s.load_events(POSTS[0], [events[0].event_id, "missing"]))
    assert loaded == [events[0]]
    completion = run.step("load a completion", lambda s: s.load_events(POSTS[0], [events[1].event_id]))
    assert completion == [events[1]]

    # A partial acknowledgement keeps the rest; a settle on a stale version only takes deliveries off
    first, *rest = sorted(outbox, key=lambda entry: (entry.target, entry.event_id))
    run.step("acknowledge part", lambda s: s.acknowledge(POSTS[0], [first]))
    run.step(
        "acknowledge the rest, stale settle",
        lambda s: s.acknowledge(POSTS[0], rest, settle_version=1, settled_next_check_at=None),
    )
    after = run.step("get after acknowledging", lambda s: s.get(POSTS[0]))
    assert isinstance(after, WatchRecord)
    assert (after.outbox, after.version, after.next_check_at) == (frozenset(), 3, NOW)

    # A settle on the current version restores the schedule
    refilled = after.model_copy(update={"version": 4, "outbox": outbox})
    run.step("save a refilled outbox", lambda s: s.save(refilled, expected_version=3, new_events=()))
    run.step(
        "acknowledge all, settle",
        lambda s: s.acknowledge(POSTS[0], outbox, settle_version=4, settled_next_check_at=None),
    )
    settled = run.step("get after settling", lambda s: s.get(POSTS[0]))
    assert isinstance(settled, WatchRecord)
    assert settled.next_check_at is None
    assert POSTS[0] not in run.listing("due tomorrow", lambda s: s.due_post_ids(NOW + timedelta(days=1)))

    assert run.step("delete a stale version", lambda s: s.delete(POSTS[1], expected_version=7)) == raised(
        StateConflictError
    )
    run.step("delete", lambda s: s.delete(POSTS[1], expected_version=1))
    assert run.step("get deleted", lambda s: s.get(POSTS[1])) is None

    # A watch the retry sweep covers is due only when its window ends; the soonest to end comes first
    window_ends = NOW + timedelta(hours=20)
    covered = watch(POSTS[1], 1, next_check_at=window_ends, awaiting_retry=True)
    run.step("save awaiting retry", lambda s: s.save(covered, expected_version=0, new_events=()))
    longer = watch(LATER, 1, next_check_at=window_ends + timedelta(hours=1), awaiting_retry=True)
    run.step("save awaiting retry longer", lambda s: s.save(longer, expected_version=0, new_events=()))
    assert run.listing("awaiting retry, first", lambda s: s.awaiting_retry(NOW, limit=1)) == [POSTS[1]]
    assert run.listing("awaiting retry, all", lambda s: s.awaiting_retry(NOW)) == [POSTS[1], LATER]
    assert POSTS[1] not in run.listing("due now, retry covered", lambda s: s.due_post_ids(NOW))
    assert POSTS[1] in run.listing("due at the window's end", lambda s: s.due_post_ids(window_ends))
    assert run.listing("awaiting retry at the window's end", lambda s: s.awaiting_retry(window_ends)) == [LATER]

    # The pause: a record of the notice outbox in the same table, read back with its plain attributes
    pause = PauseRecord(paused_at=NOW, until=NOW + timedelta(minutes=5), reason="402", http_status=402)
    run.step("pause", lambda s: commit_pause(s, pause, expected_version=0))
    assert run.step("paused", lambda s: s.genviral_pause(NOW)) == PauseStatus("402", 1, pause)
    over = run.step("pause over", lambda s: s.genviral_pause(NOW + timedelta(minutes=6)))
    assert over == PauseStatus(None, 1, pause)
    assert isinstance(over, PauseStatus)
    assert over.open  # calls go again, and the first answer closes it
    closed = pause.model_copy(update={"resumed_at": NOW + timedelta(minutes=6)})
    run.step("resume", lambda s: commit_pause(s, closed, expected_version=1))
    assert run.step("resumed", lambda s: s.genviral_pause(NOW + timedelta(minutes=6))) == PauseStatus(None, 2, closed)
    stale = run.step("resume on a stale version", lambda s: commit_pause(s, closed, expected_version=1))
    assert stale == raised(StateConflictError)


def check_claims(run: Run) -> None:
    """A claim is one conditional write: taken unless a check already claimed the post at or after the
    message's queueing; it leaves the version (and the outbox's optimistic lock) alone."""
    queued = NOW - timedelta(minutes=2)
    run.step("save due", lambda s: s.save(watch(POSTS[0], 1, next_check_at=queued), expected_version=0, new_events=()))
    due = run.listing("due, with the moment", lambda s: s.due_watches(NOW))
    assert [(item.post_id, item.next_check_at) for item in due] == [(POSTS[0], queued)]

    assert run.step("first claim", lambda s: s.claim_check(POSTS[0], queued_at=queued, now=NOW)) is True
    claimed = run.step("get claimed", lambda s: s.get(POSTS[0]))
    assert isinstance(claimed, WatchRecord)
    assert (claimed.claimed_at, claimed.version) == (NOW, 1)
    # A message queued before that claim, or at its very moment, is a duplicate
    earlier = run.step("claim queued earlier", lambda s: s.claim_check(POSTS[0], queued_at=queued, now=NOW))
    assert earlier is False
    same = run.step("claim queued at the claim", lambda s: s.claim_check(POSTS[0], queued_at=NOW, now=NOW))
    assert same is False
    # One queued after it is a check of its own
    after = NOW + timedelta(minutes=1)
    later_claim = run.step("claim queued later", lambda s: s.claim_check(POSTS[0], queued_at=after, now=after))
    assert later_claim is True
    assert run.step("no watch, no claim", lambda s: s.claim_check(UNKNOWN, queued_at=NOW, now=NOW)) is False
    # A save carries the claim it was given
    saved = claimed.model_copy(update={"version": 2, "claimed_at": after})
    run.step("save a claimed watch", lambda s: s.save(saved, expected_version=1, new_events=()))
    assert run.step("get saved", lambda s: s.get(POSTS[0])) == saved


def creation_moments_of_every_watch(run: Run) -> None:
    """The created index: every stored watch whose post's `created_at` is known, watching or ended, by
    that moment in milliseconds; both bounds inclusive, oldest first, at most `limit`."""
    created = datetime(2025, 2, 1, 9, 0, tzinfo=UTC)
    given = {
        POSTS[0]: "2025-02-01T09:00:00Z",
        POSTS[1]: "2025-02-01T09:00:00.250+00:00",
        POSTS[2]: "2025-02-01T10:00:00.999999Z",  # kept to the millisecond, as the relay stores time
    }
    for post_id, moment in given.items():
        record = watch(post_id, 1, created_at=moment)
        run.step(f"save {moment}", lambda s, record=record: s.save(record, expected_version=0, new_events=()))
    ended = watch(LATER, 1, created_at="2025-02-01T09:30:00Z", watching=False, ended_reason="finished")
    run.step("save an ended watch", lambda s: s.save(ended, expected_version=0, new_events=()))
    run.step("save one not dated", lambda s: s.save(watch(UNKNOWN, 1), expected_version=0, new_events=()))
    moved = watch(POSTS[0], 2, created_at=given[POSTS[0]], next_check_at=NOW)
    run.step("save again, same post", lambda s: s.save(moved, expected_version=1, new_events=()))

    everything = run.step("all", lambda s: s.creation_moments(created, created + timedelta(hours=2), limit=10))
    millisecond = timedelta(milliseconds=1)
    assert everything == [
        created,
        created + 250 * millisecond,
        created + timedelta(minutes=30),
        created + timedelta(hours=1, milliseconds=999),
    ]
    bounds = run.step(
        "both bounds inclusive", lambda s: s.creation_moments(created, created + 250 * millisecond, limit=10)
    )
    assert bounds == everything[:2]
    assert (
        run.step("at most limit", lambda s: s.creation_moments(created, created + timedelta(hours=2), limit=3))
        == (everything[:3])
    )
    assert (
        run.step("none", lambda s: s.creation_moments(created - timedelta(days=1), created - millisecond, limit=3))
        == []
    )


def discover_state_saved_once_per_version(run: Run) -> None:
    assert run.step("no state yet", lambda s: s.discover_state()) is None

    walking = DiscoverState(
        version=1,
        baseline_before=NOW,
        walk_started_at=NOW,
        pending=(CreatedWindow(since=NOW - timedelta(days=1), until=NOW),),
    )
    run.step("save the first", lambda s: s.save_discover_state(walking, expected_version=0))
    again = run.step("save the first again", lambda s: s.save_discover_state(walking, expected_version=0))
    assert again == raised(StateConflictError)
    assert run.step("read", lambda s: s.discover_state()) == walking

    walked = walking.model_copy(update={"version": 2, "pending": (), "walk_started_at": None, "listed_until": NOW})
    skipped = walked.model_copy(update={"version": 3})
    ahead = run.step("save ahead of the stored", lambda s: s.save_discover_state(skipped, expected_version=2))
    assert ahead == raised(StateConflictError)
    run.step("save the next", lambda s: s.save_discover_state(walked, expected_version=1))
    assert run.step("read the next", lambda s: s.discover_state()) == walked
    # The watches are not touched: the state is not a watch, and nothing is due
    assert run.listing("nothing due", lambda s: s.due_post_ids(NOW + timedelta(days=365))) == []


def account_directory_replaced_whole(run: Run) -> None:
    assert run.step("no directory yet", lambda s: s.account_directory()) is None

    first = AccountDirectory(
        accounts={
            ACCOUNT_A: DirectoryEntry(platform="tiktok", username="cafe", display_name="Cafe", type="byo"),
            ACCOUNT_B: DirectoryEntry(platform="instagram", username=None, display_name="Bakery", type="hosted"),
        },
        refreshed_at=NOW,
        last_attempt_at=NOW,
    )
    run.step("save", lambda s: s.save_account_directory(first))
    assert run.step("read", lambda s: s.account_directory()) == first

    failed_attempt = first.model_copy(update={"last_attempt_at": NOW + timedelta(minutes=6)})
    run.step("save an attempt", lambda s: s.save_account_directory(failed_attempt))
    assert run.step("read the attempt", lambda s: s.account_directory()) == failed_attempt

    emptied = AccountDirectory(
        accounts={}, refreshed_at=NOW + timedelta(hours=1), last_attempt_at=NOW + timedelta(hours=1)
    )
    run.step("save an empty listing", lambda s: s.save_account_directory(emptied))
    assert run.step("read the empty listing", lambda s: s.account_directory()) == emptied
    # The directory is not a watch and does not disturb the pause or discover mode's state
    assert run.listing("no watches", lambda s: s.watches()) == []
    assert run.step("no pause", lambda s: s.genviral_pause(NOW)) == PauseStatus()
    assert run.step("no discover state", lambda s: s.discover_state()) is None


def operator_reads(run: Run) -> None:
    early = detect_transitions(None, post(account(status="posted"), post_id=POSTS[0]), NOW).events
    later = detect_transitions(
        None,
        post(account(ACCOUNT_A, status="posted"), account(ACCOUNT_B, status="failed"), post_id=POSTS[1]),
        NOW + timedelta(hours=1),
    ).events
    run.step("save", lambda s: s.save(watch(POSTS[0], 1), expected_version=0, new_events=early))
    ended = watch(POSTS[1], 1, watching=False, ended_reason="finished")
    run.step("save ended", lambda s: s.save(ended, expected_version=0, new_events=later))
    run.step("pause", lambda s: commit_pause(s, PauseRecord(paused_at=NOW, until=NOW, reason="x", http_status=None)))

    listed = run.listing("every watch", lambda s: sorted(s.watches(), key=lambda record: record.post_id))
    assert listed == [watch(POSTS[0], 1), ended]

    def ids(name: str, selection: EventSelection) -> list[str]:
        return run.listing(name, lambda s: [event.event_id for event in s.find_events(selection)])

    by_post = ids("by post", EventSelection(post_id=POSTS[1]))
    assert len(later) == 3  # two transitions and the completion
    assert by_post == sorted(event.event_id for event in later)
    wanted = frozenset({later[0].event_id, "no-such-event"})
    assert ids("by event ids", EventSelection(event_ids=wanted)) == [later[0].event_id]
    crossed = EventSelection(post_id=POSTS[0], event_ids=frozenset({later[0].event_id}))
    assert ids("by post and another post's event", crossed) == []
    assert ids("since", EventSelection(since=NOW + timedelta(minutes=30))) == by_post
    early_ids = sorted(event.event_id for event in early)  # the transition and the completion
    assert len(early_ids) == 2
    assert ids("until", EventSelection(until=NOW + timedelta(hours=1))) == early_ids
    both = EventSelection(since=NOW, until=NOW + timedelta(hours=2))
    assert ids("since and until", both) == [*early_ids, *by_post]
    assert ids("since, none", EventSelection(since=NOW + timedelta(hours=2))) == []


def watched_posts_of_the_due_index(run: Run) -> None:
    assert run.listing("nothing watched", lambda s: s.watched_post_ids(limit=1)) == []
    run.step("save later", lambda s: s.save(watch(POSTS[0], 1, next_check_at=NOW), expected_version=0, new_events=()))
    retrying = watch(POSTS[1], 1, next_check_at=NOW + timedelta(hours=1), awaiting_retry=True)
    run.step("save awaiting retry", lambda s: s.save(retrying, expected_version=0, new_events=()))
    ended = watch(POSTS[2], 1, watching=False, ended_reason="finished")
    run.step("save ended", lambda s: s.save(ended, expected_version=0, new_events=()))

    assert sorted(run.listing("every watched", lambda s: s.watched_post_ids())) == sorted(POSTS[:2])
    assert len(run.listing("anything watched", lambda s: s.watched_post_ids(limit=1))) == 1
    run.step("end the first", lambda s: s.save(watch(POSTS[0], 2), expected_version=1, new_events=()))
    assert run.listing("only the retry shard", lambda s: s.watched_post_ids(limit=1)) == [POSTS[1]]
    assert run.listing("not the retry shard", lambda s: s.watched_post_ids(limit=1, awaiting_retry=False)) == []


def workspaces_read_their_own_index(run: Run) -> None:
    """Watches are the table's by post id; the due index's shards and the created partition a view reads are its
    workspace's, and a watch is written to its own workspace's."""
    created = "2025-02-01T09:00:00Z"
    mine = watch(POSTS[0], 1, next_check_at=NOW, created_at=created)
    theirs = watch(POSTS[1], 1, next_check_at=NOW - timedelta(minutes=1), created_at=created, workspace=ACME)
    retrying = watch(POSTS[2], 1, next_check_at=NOW + timedelta(hours=1), awaiting_retry=True, workspace=ACME)
    run.step("save default's", lambda s: s.save(mine, expected_version=0, new_events=()))
    run.step("save acme's", lambda s: acme(s).save(theirs, expected_version=0, new_events=()))
    run.step("save acme's awaiting retry", lambda s: acme(s).save(retrying, expected_version=0, new_events=()))

    assert run.step("get acme's through default's view", lambda s: s.get(POSTS[1])) == theirs
    assert run.step("get default's through acme's view", lambda s: acme(s).get(POSTS[0])) == mine
    many = run.step("get_many through acme's view", lambda s: acme(s).get_many(POSTS))
    assert many == {POSTS[0]: mine, POSTS[1]: theirs, POSTS[2]: retrying}
    assert run.listing("default's due", lambda s: s.due_post_ids(NOW)) == [POSTS[0]]
    assert run.listing("acme's due", lambda s: acme(s).due_post_ids(NOW)) == [POSTS[1]]
    assert run.listing("default awaits no retry", lambda s: s.awaiting_retry(NOW)) == []
    assert run.listing("acme's awaiting retry", lambda s: acme(s).awaiting_retry(NOW)) == [POSTS[2]]
    assert run.listing("default's watched", lambda s: s.watched_post_ids()) == [POSTS[0]]
    assert sorted(run.listing("acme's watched", lambda s: acme(s).watched_post_ids())) == sorted(POSTS[1:])
    moment = datetime(2025, 2, 1, 9, 0, tzinfo=UTC)
    window = (moment, moment + timedelta(hours=1))
    assert run.step("default's created", lambda s: s.creation_moments(*window, limit=10)) == [moment]
    assert run.step("acme's created", lambda s: acme(s).creation_moments(*window, limit=10)) == [moment]
    run.step(
        "end default's", lambda s: s.save(watch(POSTS[0], 2, created_at=created), expected_version=1, new_events=())
    )
    assert run.step("acme's created, after", lambda s: acme(s).creation_moments(*window, limit=10)) == [moment]
    assert run.listing("default's due, after", lambda s: s.due_post_ids(NOW + timedelta(days=1))) == []

    # A settle that puts a watch back in the due index puts it in its own workspace's shard
    events = detect_transitions(None, post(account(status="posted"), post_id=LATER), NOW).events
    outbox = frozenset(OutboxEntry(event_id=event.event_id, target="sns") for event in events)
    owing = watch(LATER, 1, outbox=outbox, next_check_at=NOW, workspace=ACME)
    run.step("save acme's, owing", lambda s: acme(s).save(owing, expected_version=0, new_events=events))
    run.step(
        "acme settles it",
        lambda s: acme(s).acknowledge(LATER, outbox, settle_version=1, settled_next_check_at=NOW + timedelta(hours=2)),
    )
    later = NOW + timedelta(hours=3)
    assert LATER in run.listing("acme's due, settled", lambda s: acme(s).due_post_ids(later))
    assert LATER not in run.listing("default's due, settled", lambda s: s.due_post_ids(later))
    # The claim and the operator's reads are by post id, whichever view
    assert run.step("default claims acme's", lambda s: s.claim_check(POSTS[1], queued_at=NOW, now=NOW)) is True
    assert run.listing("every watch", lambda s: sorted(record.post_id for record in acme(s).watches())) == sorted(
        [*POSTS, LATER]
    )


def workspaces_keep_their_own_relay_items(run: Run) -> None:
    """Each workspace's pause, discover state and account directory are its own items."""
    pause = PauseRecord(paused_at=NOW, until=NOW + timedelta(minutes=5), reason="402", http_status=402)
    run.step("acme pauses", lambda s: commit_pause(acme(s), pause))
    assert run.step("acme is paused", lambda s: acme(s).genviral_pause(NOW)) == PauseStatus("402", 1, pause)
    assert run.step("default is not", lambda s: s.genviral_pause(NOW)) == PauseStatus()
    run.step("default pauses, at its own version 0", lambda s: commit_pause(s, pause))
    assert run.step("default is paused", lambda s: s.genviral_pause(NOW)) == PauseStatus("402", 1, pause)

    walking = DiscoverState(version=1, baseline_before=NOW, walk_started_at=NOW)
    run.step("default walks", lambda s: s.save_discover_state(walking, expected_version=0))
    assert run.step("acme has not begun", lambda s: acme(s).discover_state()) is None
    run.step("acme walks, at its own version 0", lambda s: acme(s).save_discover_state(walking, expected_version=0))
    walked = walking.model_copy(update={"version": 2, "walk_started_at": None, "listed_until": NOW})
    run.step("acme walked", lambda s: acme(s).save_discover_state(walked, expected_version=1))
    assert run.step("default's walk", lambda s: s.discover_state()) == walking
    assert run.step("acme's walk", lambda s: acme(s).discover_state()) == walked

    directory = AccountDirectory(
        accounts={ACCOUNT_A: DirectoryEntry(platform="tiktok", username="cafe", display_name="Cafe", type="byo")},
        refreshed_at=NOW,
        last_attempt_at=NOW,
    )
    run.step("acme lists its accounts", lambda s: acme(s).save_account_directory(directory))
    assert run.step("acme's directory", lambda s: acme(s).account_directory()) == directory
    assert run.step("default's directory", lambda s: s.account_directory()) is None
    assert run.step("the default view of default", lambda s: s.in_workspace("default").discover_state()) == walking


@pytest.mark.parametrize(
    "script",
    [
        workspaces_read_their_own_index,
        workspaces_keep_their_own_relay_items,
        watched_posts_of_the_due_index,
        watches_outbox_and_due_index,
        check_claims,
        creation_moments_of_every_watch,
        discover_state_saved_once_per_version,
        account_directory_replaced_whole,
        operator_reads,
    ],
)
def test_both_stores_answer_alike_and_make_the_same_calls(stack: MotoStack, script: Callable[[Run], None]) -> None:
    calls: Counter[str] = Counter()
    counted = CountingClient(stack.client("dynamodb"), calls)
    dynamodb = Run(
        DynamoDbStore(counted, stack.ref("StateTable"), event_retention=timedelta(days=1), clock=utc_now), calls
    )
    memory_store = InMemoryStore()
    memory = Run(memory_store, memory_store.calls)

    script(dynamodb)
    script(memory)

    assert all(made for _, _, made in dynamodb.steps), "every step of the script calls DynamoDB"
    for real, double in zip(dynamodb.steps, memory.steps, strict=True):
        assert double == real  # (step, answer, DynamoDB calls made)
    assert memory.calls == dynamodb.calls


@pytest.mark.parametrize("store", ["dynamodb", "memory"])
def test_a_view_refuses_to_save_a_watch_of_another_workspace(stack: MotoStack, store: str) -> None:
    plain: Store = (
        DynamoDbStore(
            stack.client("dynamodb"), stack.ref("StateTable"), event_retention=timedelta(days=1), clock=utc_now
        )
        if store == "dynamodb"
        else InMemoryStore()
    )
    for view, record in [
        (plain, watch(POSTS[0], 1, workspace=ACME)),
        (acme(plain), watch(POSTS[0], 1)),
        (plain.in_workspace("other"), watch(POSTS[0], 1, workspace=ACME)),
    ]:
        with pytest.raises(ValueError, match="saved through"):  # a wiring error, before any call
            view.save(record, expected_version=0, new_events=())
    assert plain.get(POSTS[0]) is None
    assert (plain.workspace, acme(plain).workspace) == ("default", ACME)
    for name in ["", "Acme", "acme#1", "x" * 41]:
        with pytest.raises(ValueError, match="not a workspace name"):
            plain.in_workspace(name)
