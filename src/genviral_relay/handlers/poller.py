"""Scheduled tick (EventBridge Scheduler): queue the work that is due (see `polling/tick.py`)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from genviral_relay.factories import poll_tick
from genviral_relay.observability import logger, metrics
from genviral_relay.settings import PollerSettings

SETTINGS = PollerSettings
"""The configuration this function reads (the template must set every variable)."""


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.set_correlation_id(context.aws_request_id)  # the tick's id: every message it queues carries it
    report = poll_tick().run(correlation_id=context.aws_request_id)
    if report.paused is not None:
        return {"enqueued": report.queued, "paused": report.paused}  # the notices flush, at most
    logger.info("Tick", extra={"enqueued": report.queued, "scheduled_time": event.get("scheduled_time")})
    return {"enqueued": report.queued}
