"""`GET /webhooks/{id}/attempts`: an endpoint's attempt log."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from genviral_relay.api.answers import MISCONFIGURED, NO_WEBHOOK, answers
from genviral_relay.api.app import answer, app
from genviral_relay.api.webhooks import PathWebhookId
from genviral_relay.models.attempt_api import AttemptsResponse, AttemptView
from genviral_relay.models.event_log import AttemptOutcome
from genviral_relay.models.webhooks import WEBHOOK_ID_HINT
from genviral_relay.rules.event_feed import PAGE_LIMIT
from genviral_relay.webhook_factories import attempt_log


@app.get(
    "/webhooks/<webhook_id>/attempts",
    operation_id="listWebhookAttempts",
    summary="List a webhook endpoint's attempts",
    description="Every delivery attempt to the endpoint, newest first, with its status, duration and reason; kept "
    "as long as the events (`EventRetentionDays`). Follow `next` for older ones.",
    responses=answers(
        AttemptsResponse,
        {
            HTTPStatus.OK: "A page (perhaps empty) and the cursor of the next.",
            HTTPStatus.BAD_REQUEST: f"`bad_request`: {WEBHOOK_ID_HINT}; or a cursor this listing did not write, "
            "`limit` outside 1-100, an `outcome` other than delivered or failed.",
            **NO_WEBHOOK,
            **MISCONFIGURED,
        },
    ),
)
def list_webhook_attempts(
    webhook_id: PathWebhookId,
    after: Annotated[str | None, Query(description="The `next` of the previous page; none: the newest.")] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT, description="Attempts per page (1-100).")] = PAGE_LIMIT,
    outcome: Annotated[AttemptOutcome | None, Query(description="Only attempts with this outcome.")] = None,
) -> Response[str]:
    found = attempt_log().page(webhook_id, after=after, limit=limit, outcome=outcome)
    return answer(HTTPStatus.OK, AttemptsResponse(data=[AttemptView.of(e) for e in found.entries], next=found.next))
