"""SQS worker: check each queued post; poison messages and failed checks become batch item failures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from genviral_relay.aws.work_queue import correlation_id_of
from genviral_relay.clock import utc_now
from genviral_relay.factories import checker_store, discovery, post_checker
from genviral_relay.logic.check_batch import DISCOVER_KEY, SWEEP_KEY, CheckBatch
from genviral_relay.models.messages import WORK_MESSAGE, CheckRequest, DiscoverRequest, SweepRequest, WorkRequest
from genviral_relay.observability import Metric, emit, logger, metrics
from genviral_relay.settings import WorkerSettings, worker_settings

SETTINGS = WorkerSettings
"""The configuration this function reads (the template must set every variable)."""


def parse_requests(records: list[dict[str, Any]]) -> tuple[dict[str, WorkRequest], list[str]]:
    """(message id -> request, ids of poison messages). SQS moves poison to the DLQ after a few receives."""
    requests: dict[str, WorkRequest] = {}
    poison: list[str] = []
    for record in records:
        try:
            requests[record["messageId"]] = WORK_MESSAGE.validate_json(record["body"])
        except ValidationError as error:
            poison.append(record["messageId"])
            logger.error(
                "Not a check request",
                extra={
                    "message_id": record["messageId"],
                    "problems": error.error_count(),
                    "first_problem": error.errors()[0]["msg"],
                },
            )
    if poison:
        emit(Metric.POISON_MESSAGES, len(poison))
    return requests, poison


def _batch_key(request: WorkRequest) -> str:
    """How `CheckBatch` names a request's work (and its failure)."""
    if isinstance(request, CheckRequest):
        return request.post_id
    return SWEEP_KEY if isinstance(request, SweepRequest) else DISCOVER_KEY


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records", [])
    requests, failed = parse_requests(records)
    correlations = {record["messageId"]: correlation_id_of(record) for record in records}
    if len(set(correlations.values())) == 1:  # one tick's batch: the batch's own lines share its id too
        logger.set_correlation_id(next(iter(correlations.values())))
    discover = any(isinstance(request, DiscoverRequest) for request in requests.values())
    batch = CheckBatch(
        post_checker(),
        checker_store(),
        utc_now(),
        threads=worker_settings().threads_per_worker,
        discovery=discovery() if discover else None,
        correlations={_batch_key(request): correlations[message_id] for message_id, request in requests.items()},
        time_left=lambda: timedelta(milliseconds=context.get_remaining_time_in_millis()),
    )
    checks = [request for request in requests.values() if isinstance(request, CheckRequest)]
    sweep = any(isinstance(request, SweepRequest) for request in requests.values())
    errors = batch.run(checks, sweep=sweep, discover=discover)
    failed += [message_id for message_id, request in requests.items() if _batch_key(request) in errors]
    # Partial batch response: only these messages return to the queue.
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
