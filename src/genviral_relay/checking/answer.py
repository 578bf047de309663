"""What recording one Genviral answer for a post does to its watch: the events, the next check, the retry
wait. Worked out in one place for the check that records it (`checking/check.py`) and for a look that
records nothing (`CheckPreview`: the operations CLI's `check`), so the two cannot disagree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from genviral_relay.checking.ports import PostSource, WatchStore
from genviral_relay.clock import Clock
from genviral_relay.errors import GenviralContractError
from genviral_relay.models.domain import WatchRecord
from genviral_relay.models.events import AccountRef
from genviral_relay.models.upstream import Post
from genviral_relay.rules.late_urls import urls_awaited
from genviral_relay.rules.schedule import PollingPolicy
from genviral_relay.rules.transitions import Detection, detect_transitions


@dataclass(frozen=True)
class AnswerPlan:
    previous: WatchRecord
    """The stored watch, or a new one (version 0) for a post not watched yet."""
    detection: Detection
    changed_at: datetime | None
    next_check_at: datetime | None
    """The policy's next check once the events are published (None: the watch ends)."""
    awaiting_retry: bool


def plan_answer(
    watch: WatchRecord | None,
    post: Post,
    now: datetime,
    policy: PollingPolicy,
    accounts: Mapping[str, AccountRef] | None = None,
    *,
    silent: bool = False,
    workspace: str | None = None,
) -> AnswerPlan:
    """Genviral's answer `post` against the stored `watch` (None: start watching it, in `workspace` as a watch
    stores it) at `now`; `silent`: a baseline, that reports nothing (`detect_transitions`)."""
    previous = watch or WatchRecord(post_id=post.id, version=0, registered_at=now, workspace=workspace)
    detection = detect_transitions(previous, post, now, accounts, delayed_after=policy.delayed_after, silent=silent)
    changed_at = previous.changed_at_after(state_changed=detection.state_changed, now=now)
    seen = {"last_change": changed_at, "first_seen": previous.registered_at}
    return AnswerPlan(
        previous=previous,
        detection=detection,
        changed_at=changed_at,
        next_check_at=policy.next_check(
            post,
            now,
            **seen,
            delay_reportable_at=detection.next_delay_at,
            urls_awaited=urls_awaited(detection.accounts),
        ),
        awaiting_retry=policy.awaits_retry(post, now, **seen),
    )


@dataclass(frozen=True)
class Preview:
    post: Post
    stored: WatchRecord | None
    plan: AnswerPlan


class CheckPreview:
    """What a check of a post would find and schedule now, writing and publishing nothing."""

    def __init__(
        self,
        *,
        source: PostSource,
        policy: PollingPolicy,
        clock: Clock,
        store: WatchStore | None,
        workspace: str | None = None,
    ) -> None:
        """`store`: the stored watch to compare with (None: every post is a first sighting); `workspace`: the one a
        first sighting would be watched in (as a watch stores it: None is `default`)."""
        self._source = source
        self._policy = policy
        self._clock = clock
        self._store = store
        self._workspace = workspace

    def run(self, post_id: str) -> Preview:
        """GenviralError as Genviral's client raises it, or GenviralContractError for another post's answer."""
        post = self._source.get_post(post_id)
        if post.id != post_id:
            raise GenviralContractError(f"asked for post {post_id}, Genviral answered post {post.id}")
        stored = self._store.get(post_id) if self._store is not None else None
        return Preview(post, stored, plan_answer(stored, post, self._clock(), self._policy, workspace=self._workspace))
