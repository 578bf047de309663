"""An endpoint's `rate_limit` as the pacer's slots: one delivery per interval, in whole milliseconds (the
table keeps the next slot as epoch milliseconds), rounded up so the rate is never exceeded."""

from __future__ import annotations

import math


def pace_interval_ms(rate_limit: float) -> int:
    """Milliseconds between two deliveries to an endpoint paced at `rate_limit` per second."""
    return max(1, math.ceil(1000 / rate_limit))


def holds_slot(interval_ms: int | None, rate_limit: float | None) -> bool:
    """A delivery paced at `interval_ms` still holds a slot of an endpoint now paced at `rate_limit`: a slot
    reserved at another rate (raised, lowered or removed since) is given up and a new one reserved."""
    return interval_ms is not None and rate_limit is not None and interval_ms == pace_interval_ms(rate_limit)
