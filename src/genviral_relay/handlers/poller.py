"""Scheduled tick (EventBridge Scheduler): queue the work that is due, for each workspace the registry names (see
`polling/tick.py`, `polling/workspace_runs.py`)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from genviral_relay.observability import flush_workspace_metrics, logger, metrics
from genviral_relay.settings import PollerSettings
from genviral_relay.workspace_factories import workspace_ticks

SETTINGS = PollerSettings
"""The configuration this function reads (the template must set every variable)."""


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.set_correlation_id(context.aws_request_id)  # the tick's id: every message it queues carries it
    try:
        report = workspace_ticks().run(correlation_id=context.aws_request_id)
    finally:
        flush_workspace_metrics()
    answer: dict[str, Any] = {"enqueued": report.queued}
    if report.paused:  # a stack of one workspace answers as 0.4 did: the reason
        answer["paused"] = report.paused if len(report.ticked) > 1 else next(iter(report.paused.values()))
    if len(report.paused) < len(report.ticked):  # some workspace queued its due work
        logger.info("Tick", extra={"enqueued": report.queued, "scheduled_time": event.get("scheduled_time")})
    return answer
