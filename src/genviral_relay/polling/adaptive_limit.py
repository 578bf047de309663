"""How many Genviral requests a worker's batch makes at once: a limit that a 429 halves (`polling/work_batch.py`)."""

from __future__ import annotations

import threading


class AdaptiveLimit:
    """At most `limit` holders at once; `shrink` halves the limit (down to one) after a 429."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._active = 0
        self._changed = threading.Condition()

    def __enter__(self) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._active < self.limit)
            self._active += 1

    def __exit__(self, *_: object) -> None:
        with self._changed:
            self._active -= 1
            self._changed.notify_all()

    def shrink(self) -> None:
        with self._changed:
            self.limit = max(1, self.limit // 2)
