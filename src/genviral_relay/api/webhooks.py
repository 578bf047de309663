"""The webhook endpoint routes: register, list, read, delete, rotate a signing key, send a test event."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from genviral_relay.api.answers import BAD_WEBHOOK_ID, MISCONFIGURED, NO_WEBHOOK, answers
from genviral_relay.api.app import MAX_BODY_BYTES, answer, app
from genviral_relay.models.webhook_api import (
    CreateWebhookRequest,
    WebhookCreated,
    WebhookDeleted,
    WebhookDetail,
    WebhookList,
    WebhookTestSent,
    WebhookView,
)
from genviral_relay.models.webhooks import WebhookId
from genviral_relay.webhook_factories import webhook_registry

WEBHOOK_BODY = '{"url": "https://...", "event_types": [...], "description": "..."}'

PathWebhookId = Annotated[WebhookId, Path(description="The endpoint's id, as its registration answered it.")]


@app.post(
    "/webhooks",
    operation_id="createWebhook",
    summary="Register a webhook endpoint",
    description="Every event of the chosen types is POSTed to the URL, signed as Standard Webhooks has it, and "
    "retried for about a day. The answer is the only one, with a rotation's, that shows the secret.",
    responses=answers(
        WebhookCreated,
        {
            HTTPStatus.CREATED: "Registered: the endpoint and its signing secret.",
            HTTPStatus.BAD_REQUEST: "`bad_request`: the body is not an endpoint, the URL may not receive webhooks "
            "(not https://, a private address, credentials), or an event type is unknown.",
            HTTPStatus.CONFLICT: "`too_many_webhooks`: the deployment has as many endpoints as it takes; "
            "`webhook_exists`: an endpoint has this URL and these event types already (`webhook_id` names it).",
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE: f"`bad_request`: the body is over {MAX_BODY_BYTES} bytes.",
            **MISCONFIGURED,
        },
    ),
)
def create_webhook(request: Annotated[CreateWebhookRequest, Body()]) -> Response[str]:
    return answer(HTTPStatus.CREATED, WebhookCreated.with_secret(webhook_registry().create(request)))


@app.get(
    "/webhooks",
    operation_id="listWebhooks",
    summary="List the webhook endpoints",
    description="Every registered endpoint, oldest first, without secrets.",
    responses=answers(WebhookList, {HTTPStatus.OK: "The endpoints.", **MISCONFIGURED}),
)
def list_webhooks() -> Response[str]:
    return answer(HTTPStatus.OK, WebhookList(webhooks=[WebhookView.of(e) for e in webhook_registry().endpoints()]))


@app.get(
    "/webhooks/<webhook_id>",
    operation_id="getWebhook",
    summary="Read a webhook endpoint",
    description="The endpoint, without its secret, and how its deliveries go.",
    responses=answers(WebhookDetail, {HTTPStatus.OK: "The endpoint.", **BAD_WEBHOOK_ID, **NO_WEBHOOK, **MISCONFIGURED}),
)
def get_webhook(webhook_id: PathWebhookId) -> Response[str]:
    return answer(HTTPStatus.OK, WebhookDetail.of(webhook_registry().endpoint(webhook_id)))


@app.delete(
    "/webhooks/<webhook_id>",
    operation_id="deleteWebhook",
    summary="Delete a webhook endpoint",
    description="Stops deliveries to it, retries included.",
    responses=answers(WebhookDeleted, {HTTPStatus.OK: "Deleted.", **BAD_WEBHOOK_ID, **NO_WEBHOOK, **MISCONFIGURED}),
)
def delete_webhook(webhook_id: PathWebhookId) -> Response[str]:
    webhook_registry().delete(webhook_id)
    return answer(HTTPStatus.OK, WebhookDeleted(id=webhook_id, message="webhook deleted; deliveries stop"))


@app.post(
    "/webhooks/<webhook_id>/rotate-secret",
    operation_id="rotateWebhookSecret",
    summary="Rotate a webhook endpoint's secret",
    description="A new secret; for 24 hours each delivery carries a signature with each secret.",
    responses=answers(
        WebhookCreated,
        {HTTPStatus.OK: "The endpoint and its new secret.", **BAD_WEBHOOK_ID, **NO_WEBHOOK, **MISCONFIGURED},
    ),
)
def rotate_webhook_secret(webhook_id: PathWebhookId) -> Response[str]:
    return answer(HTTPStatus.OK, WebhookCreated.with_secret(webhook_registry().rotate_secret(webhook_id)))


@app.post(
    "/webhooks/<webhook_id>/test",
    operation_id="testWebhook",
    summary="Send a test event to a webhook endpoint",
    description="Queues a `webhook.test` event for this endpoint, delivered and retried like any event.",
    responses=answers(
        WebhookTestSent,
        {
            HTTPStatus.ACCEPTED: "Queued for delivery.",
            **BAD_WEBHOOK_ID,
            **NO_WEBHOOK,
            HTTPStatus.CONFLICT: "`webhook_disabled`: the endpoint is off; enable it first.",
            **MISCONFIGURED,
            HTTPStatus.SERVICE_UNAVAILABLE: "`not_queued`: the delivery queue did not take it; try again.",
        },
    ),
)
def test_webhook(webhook_id: PathWebhookId) -> Response[str]:
    delivery = webhook_registry().send_test(webhook_id)
    return answer(
        HTTPStatus.ACCEPTED,
        WebhookTestSent(id=webhook_id, event_id=delivery.event_id, message="test event queued for delivery"),
    )
