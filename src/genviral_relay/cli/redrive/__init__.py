"""`redrive QUEUE`: send dead letters back where they failed to go, after a fix.

A message leaves its dead-letter queue only after it was sent again successfully; anything else
(a refusal, a body that is not what the queue holds, a declined confirmation) stays there,
visible again at once. A run that re-sent some messages and left others ends with exit code 3
(partly done), one that re-sent none with 1. One flow (`flow.py`) for every queue:

- `events` (EventsDLQ): `{"target", "reason", "parked_at", "event"}` (`aws/dead_letters.py`): the event is
  published again to the target it was refused by, under its own id.
- `work` (WorkDLQ): work requests (`models/messages.py`: a post check, a bulk refresh, a retry sweep, a
  discovery) the worker failed on five times (the work queue's maxReceiveCount): queued again on the work queue.
- `poller` (PollerDLQ): poller ticks that failed; one run of the poller stands for every missed tick.
- `failure-webhook` (FailureWebhookDLQ, 0.3's failure webhook; was `webhook`): each event POSTed again to it.
- `webhook-deliveries` (WebhookDLQ, the Standard Webhooks endpoints; was `webhooks`): each delivery again
  from its first attempt.
"""

from __future__ import annotations

from typing import Any

from genviral_relay.cli.redrive.flow import QueueRedrive, redrive
from genviral_relay.cli.redrive.relay_queues import EventsRedrive, PollerRedrive, WorkRedrive
from genviral_relay.cli.redrive.webhook_queues import FailureWebhookRedrive, WebhookDeliveriesRedrive

QUEUES: tuple[QueueRedrive[Any], ...] = (
    EventsRedrive(),
    WorkRedrive(),
    PollerRedrive(),
    FailureWebhookRedrive(),
    WebhookDeliveriesRedrive(),
)

__all__ = ["QUEUES", "QueueRedrive", "redrive"]
