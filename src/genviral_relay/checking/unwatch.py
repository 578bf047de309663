"""Stop watching a post, after publishing whatever it still owes: a watch's events are never dropped
with it."""

from __future__ import annotations

from genviral_relay.checking.outbox import Outbox
from genviral_relay.checking.ports import WatchStore
from genviral_relay.errors import OutboxNotEmptyError, WatchNotFoundError
from genviral_relay.models.domain import WatchRecord
from genviral_relay.observability import logger


class Unwatch:
    def __init__(self, *, store: WatchStore, outbox: Outbox) -> None:
        self._store = store
        self._outbox = outbox

    def run(self, post_id: str) -> WatchRecord:
        """Forget the watch; answer it as it was. Raises `WatchNotFoundError` when the post is not
        watched, `OutboxNotEmptyError` when a target still refuses some of its events, and
        `StateConflictError` when a check committed in between."""
        watch = self._store.get(post_id)
        if watch is None:
            raise WatchNotFoundError(post_id)
        if watch.outbox:
            if self._outbox.publish(watch).outbox:
                raise OutboxNotEmptyError(post_id)
            watch = self._store.get(post_id)  # acknowledging bumped its version
            if watch is None:
                raise WatchNotFoundError(post_id)
        self._store.delete(post_id, expected_version=watch.version)
        logger.info("Watch removed", extra={"post_id": post_id})
        return watch
