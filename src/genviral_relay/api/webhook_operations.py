"""The routes that operate an endpoint: edit it, turn it off and on again, resend events to it (`webhooks.py` holds
registration, reading, rotation, the test and deletion)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from genviral_relay.api.answers import BAD_WEBHOOK_ID, MISCONFIGURED, NO_WEBHOOK, answers
from genviral_relay.api.app import answer, app
from genviral_relay.api.webhooks import PathWebhookId
from genviral_relay.models.webhook_api import (
    DisableWebhookRequest,
    EditWebhookRequest,
    EnableWebhookRequest,
    ResendQueued,
    ResendRequest,
    WebhookDetail,
    WebhookEnabled,
)
from genviral_relay.webhook_factories import webhook_registry
from genviral_relay.webhooks.resend import RESEND_LIMIT, RESEND_SCAN_LIMIT

NOT_QUEUED = {HTTPStatus.SERVICE_UNAVAILABLE: "`not_queued`: the delivery queue did not take every resend; try again."}


@app.patch(
    "/webhooks/<webhook_id>",
    operation_id="editWebhook",
    summary="Edit a webhook endpoint",
    description="Changes the fields given (url, event_types, filter, description, rate_limit, format); null clears "
    "a nullable one. The secret and the delivery health stay.",
    responses=answers(
        WebhookDetail,
        {
            HTTPStatus.OK: "The endpoint as edited.",
            HTTPStatus.BAD_REQUEST: "`bad_request`: no field given, a field that is not the endpoint's, a URL that "
            "may not receive webhooks, an unknown event type or filter value.",
            **NO_WEBHOOK,
            HTTPStatus.CONFLICT: "`webhook_exists`: another endpoint has this URL and these event types "
            "(`webhook_id` names it); `conflict`: other edits kept coming first, try again.",
            **MISCONFIGURED,
        },
    ),
)
def edit_webhook(webhook_id: PathWebhookId, request: Annotated[EditWebhookRequest, Body()]) -> Response[str]:
    return answer(HTTPStatus.OK, WebhookDetail.of(webhook_registry().edit(webhook_id, request)))


@app.post(
    "/webhooks/<webhook_id>/enable",
    operation_id="enableWebhook",
    summary="Turn a webhook endpoint on again",
    description="Deliveries start again and its failing clock restarts. With `resend_missed`, every event it takes "
    "committed since it began failing or the retry schedule's span before it was disabled (whichever is earlier) "
    "is resent, as `resend` does.",
    responses=answers(
        WebhookEnabled,
        {
            HTTPStatus.OK: "The endpoint, on, and how many missed deliveries were queued.",
            HTTPStatus.BAD_REQUEST: f"`bad_request`: the body is not as described, or more than {RESEND_LIMIT:,} "
            f"deliveries were missed or more than {RESEND_SCAN_LIMIT:,} feed entries would be read (the endpoint "
            "stays off: resend a range first).",
            **NO_WEBHOOK,
            **MISCONFIGURED,
            HTTPStatus.SERVICE_UNAVAILABLE: "`not_queued`: the endpoint is on but the delivery queue did not take "
            "every resend; the message names the `resend` (its `since`) that queues them.",
        },
    ),
)
def enable_webhook(
    webhook_id: PathWebhookId, request: Annotated[EnableWebhookRequest | None, Body()] = None
) -> Response[str]:
    resend_missed = request.resend_missed if request is not None else False
    endpoint, queued = webhook_registry().enable(webhook_id, resend_missed=resend_missed)
    return answer(HTTPStatus.OK, WebhookEnabled(webhook=WebhookDetail.of(endpoint), queued=queued))


@app.post(
    "/webhooks/<webhook_id>/disable",
    operation_id="disableWebhook",
    summary="Turn a webhook endpoint off",
    description="Nothing more is delivered to it (deliveries already queued are dropped, recorded `disabled`) "
    "until it is enabled. An endpoint off already stays as it was turned off.",
    responses=answers(
        WebhookDetail, {HTTPStatus.OK: "The endpoint, off.", **BAD_WEBHOOK_ID, **NO_WEBHOOK, **MISCONFIGURED}
    ),
)
def disable_webhook(
    webhook_id: PathWebhookId, request: Annotated[DisableWebhookRequest | None, Body()] = None
) -> Response[str]:
    reason = request.reason if request is not None else None
    return answer(HTTPStatus.OK, WebhookDetail.of(webhook_registry().disable(webhook_id, reason or None)))


@app.post(
    "/webhooks/<webhook_id>/resend",
    operation_id="resendWebhook",
    summary="Resend events to a webhook endpoint",
    description='One event (`{"event_id"}`) or every event it takes committed in a time range (`{"since", '
    '"until"?}`, ISO-8601): the same `webhook-id` and body, a fresh timestamp and signature, the whole retry '
    "schedule.",
    responses=answers(
        ResendQueued,
        {
            HTTPStatus.ACCEPTED: "Queued: one delivery per event.",
            HTTPStatus.BAD_REQUEST: "`bad_request`: not exactly one form, `since` later than `until` or older than "
            f"the retention, more than {RESEND_LIMIT:,} deliveries or {RESEND_SCAN_LIMIT:,} feed entries to read "
            "(narrow the range), or an event the endpoint "
            "does not take (the message says why).",
            HTTPStatus.NOT_FOUND: "`webhook_not_found`: no endpoint has this id; `not_found`: no event with this id "
            "is kept.",
            HTTPStatus.CONFLICT: "`webhook_disabled`: the endpoint is off; enable it first.",
            **MISCONFIGURED,
            **NOT_QUEUED,
        },
    ),
)
def resend_webhook(webhook_id: PathWebhookId, request: Annotated[ResendRequest, Body()]) -> Response[str]:
    registry = webhook_registry()
    if request.event_id is not None:
        queued = registry.resend_one(webhook_id, request.event_id)
    else:
        assert request.since is not None  # the request's one-form rule
        queued = registry.resend_between(webhook_id, request.since, request.until)
    return answer(HTTPStatus.ACCEPTED, ResendQueued(queued=queued))
