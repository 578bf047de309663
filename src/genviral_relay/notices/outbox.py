"""The notice outbox: commit a record of the relay's own state with the notices it produced, then publish them to
every target and append them to the feed; what a target does not take stays owed, and a later flush (each poller
tick queues one while any is owed) sends it again under the same id.

A crash between the commit and the publishing loses nothing (the notice is pending in the table), and a notice is
never produced twice: the commit is conditional on the record's version, so of two processes that saw the same
change only one stores its notice (the other gets `StateConflictError` and reads the record again)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

from genviral_relay.clock import Clock
from genviral_relay.feed.appending import append_in_time
from genviral_relay.feed.ports import EventLog
from genviral_relay.models.domain import FEED_TARGET, OutboxTarget
from genviral_relay.models.relay_notices import MAX_NOTICES_PER_COMMIT
from genviral_relay.notices.ports import NoticeDocument, NoticeStore, PendingNotice
from genviral_relay.observability import Metric, emit, logger
from genviral_relay.rules.event_feed import feed_entries
from genviral_relay.webhooks.ports import NoticePublisher

FLUSH_AFTER = timedelta(minutes=1)
"""A pending notice younger than this is left to the process that committed it (it is publishing it now)."""


def refuse_too_many(notices: Sequence[NoticeDocument]) -> None:
    """ValueError for more notices than one commit takes: the caller must split them (a programming error)."""
    if len(notices) > MAX_NOTICES_PER_COMMIT:
        raise ValueError(f"{len(notices)} notices in one commit; at most {MAX_NOTICES_PER_COMMIT}")


class NoticeOutbox:
    def __init__(
        self,
        *,
        store: NoticeStore,
        publishers: Sequence[NoticePublisher],
        clock: Clock,
        feed: EventLog | None = None,
    ) -> None:
        """`publishers`: the deployment's targets (the topic, the bus, the webhooks' fan-out queue); `feed`: the event
        feed (None: notices are owed to the publishers only)."""
        self._store = store
        self._publishers = {publisher.target: publisher for publisher in publishers}
        self._clock = clock
        self._feed = feed

    @property
    def store(self) -> NoticeStore:
        return self._store

    @property
    def targets(self) -> tuple[OutboxTarget, ...]:
        return (*self._publishers, FEED_TARGET) if self._feed is not None else tuple(self._publishers)

    def commit(
        self,
        name: str,
        state: str,
        *,
        expected_version: int,
        notices: Sequence[NoticeDocument],
        attributes: Mapping[str, str] | None = None,
    ) -> int:
        """Store the record `name` with `notices` (raises `StateConflictError` when another commit won), then publish
        them; answers how many stay owed to some target. At most `MAX_NOTICES_PER_COMMIT` notices (ValueError)."""
        refuse_too_many(notices)
        committed_at = self._clock()
        self._store.commit(
            name,
            state,
            expected_version=expected_version,
            notices=notices,
            owed=self.targets if notices else (),
            committed_at=committed_at,
            attributes=attributes,
        )
        if not notices:
            return 0
        return self.publish([PendingNotice(notice, frozenset(self.targets), committed_at) for notice in notices])

    def flush(self) -> int:
        """Publish every notice still owed that its own process should have published by now; answers how many
        stay owed."""
        settled = self._clock() - FLUSH_AFTER
        pending = [one for one in self._store.pending() if one.committed_at <= settled]
        return self.publish(pending) if pending else 0

    def publish(self, pending: Sequence[PendingNotice]) -> int:
        done = {one.notice.event_id: self._unconfigured(one) for one in pending}
        for target, publisher in self._publishers.items():
            owed = [one.notice for one in pending if target in one.owed]
            if owed:
                for event_id in self._publish(publisher, owed):
                    done[event_id].add(target)
        owed_to_feed = [one.notice for one in pending if FEED_TARGET in one.owed]
        if owed_to_feed and self._append(owed_to_feed):
            for notice in owed_to_feed:
                done[notice.event_id].add(FEED_TARGET)
        still_owed = 0
        for one in pending:
            taken = done[one.notice.event_id] & one.owed
            if taken != one.owed:
                still_owed += 1
            if taken:
                self._acknowledge(one.notice, taken)
        return still_owed

    def _unconfigured(self, pending: PendingNotice) -> set[OutboxTarget]:
        """The targets a notice is owed to that this deployment no longer has (`PublishTargets` changed since): done,
        or the notice would stay owed (and flushed every tick) for ever."""
        gone = pending.owed - set(self.targets)
        for target in sorted(gone):
            logger.warning(
                "Notice owed to a target no longer configured (PublishTargets); not sent there",
                extra={**pending.notice.log_keys(), "target": target},
            )
        return set(gone)

    def _publish(self, publisher: NoticePublisher, notices: list[NoticeDocument]) -> set[str]:
        """The ids the target took, or refused for good (a fixed-shape notice of a few hundred bytes: logged and
        counted, never retried for ever); the rest stay owed."""
        try:
            result = publisher.publish(notices)
        except Exception:  # a target that raises keeps its notices, as one that answers with failures
            logger.exception("Could not publish notices; kept for the next flush", extra={"target": publisher.target})
            return set()
        emit(Metric.EVENTS_PUBLISHED, len(result.published))
        taken = set(result.published)
        for event_id, failure in result.failed.items():
            emit(Metric.PUBLISH_FAILURES)
            keys = {"event_id": event_id, "target": publisher.target, "reason": failure.reason}
            if failure.retryable:
                logger.warning("Notice not published; kept for the next flush", extra=keys)
            else:
                logger.error("Target refused a notice for good; it is not sent there", extra=keys)
                taken.add(event_id)
        return taken

    def _append(self, notices: list[NoticeDocument]) -> bool:
        if self._feed is None:
            return False
        try:
            append_in_time(self._feed, feed_entries(notices, self._clock()), self._clock)
        except Exception:  # kept owed to the feed: the next flush appends it
            logger.exception(
                "Notice feed append failed; kept for the next flush",
                extra={"event_ids": sorted(notice.event_id for notice in notices)},
            )
            return False
        return True

    def _acknowledge(self, notice: NoticeDocument, taken: set[OutboxTarget]) -> None:
        try:
            self._store.acknowledge(notice.event_id, taken)
        except Exception:  # published all the same: the next flush sends it again under the same id
            logger.exception("Could not acknowledge a published notice", extra=notice.log_keys())
