"""Scheduled tick (EventBridge Scheduler): queue a check for every watch that is due, the retry
sweep while a failure may still be retried, and in discover mode a listing of new posts.

The poller itself never calls Genviral: every call runs in the worker, under the deployment's
concurrency cap and the pause that follows a refused key."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from genviral_relay.clock import utc_now
from genviral_relay.factories import poller_store, work_queue
from genviral_relay.models.messages import CheckRequest, DiscoverRequest, SweepRequest
from genviral_relay.observability import Metric, emit, logger, metrics
from genviral_relay.settings import PollerSettings, poller_settings

SETTINGS = PollerSettings
"""The configuration this function reads (the template must set every variable)."""


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.set_correlation_id(context.aws_request_id)  # the tick's id: every check it queues carries it
    now = utc_now()
    store = poller_store()
    pause_reason = store.genviral_pause(now)
    if pause_reason is not None:
        logger.error("Genviral calls are paused; no checks queued this tick", extra={"reason": pause_reason})
        emit(Metric.TICKS_PAUSED)
        emit(Metric.POLLER_TICKS)
        return {"enqueued": 0, "paused": pause_reason}
    requests: list[BaseModel] = [CheckRequest(post_id=post_id) for post_id in store.due_post_ids(now)]
    if next(store.awaiting_retry(now, limit=1), None) is not None:
        requests.append(SweepRequest(sweep="retry"))
    if poller_settings().watch_mode == "discover":
        requests.append(DiscoverRequest(discover="posts"))
    queued = work_queue().send(requests, correlation_id=context.aws_request_id)
    logger.info("Tick", extra={"enqueued": queued, "scheduled_time": event.get("scheduled_time")})
    emit(Metric.CHECKS_QUEUED, queued)
    emit(Metric.POLLER_TICKS)
    return {"enqueued": queued}
