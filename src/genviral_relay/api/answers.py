"""The OpenAPI `responses` of the routes (documentation only: the code decides what a route answers)."""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING

from aws_lambda_powertools.event_handler import content_types
from pydantic import BaseModel

from genviral_relay.models.api import ErrorResponse, GatewayRefusal
from genviral_relay.models.domain import POST_ID_HINT
from genviral_relay.models.webhooks import WEBHOOK_ID_HINT

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

UNSIGNED = {
    HTTPStatus.FORBIDDEN: "Answered by API Gateway, not the relay: the request is not signed (SigV4) by an IAM "
    "principal allowed to invoke this API."
}
"""Every route is AWS_IAM-authorized: a client can always meet this 4xx, whatever the route."""
BAD_ID = {HTTPStatus.BAD_REQUEST: f"`bad_request`: {POST_ID_HINT}."}
BAD_WEBHOOK_ID = {HTTPStatus.BAD_REQUEST: f"`bad_request`: {WEBHOOK_ID_HINT}."}
NO_WEBHOOK = {HTTPStatus.NOT_FOUND: "`webhook_not_found`: no endpoint has this id."}
MISCONFIGURED = {HTTPStatus.INTERNAL_SERVER_ERROR: "`configuration_error`: the function is misconfigured."}
CHECK_ANSWERS = {
    HTTPStatus.ACCEPTED: "Genviral gave no usable answer: the check is deferred to a later tick (`result` "
    "`deferred`, `message` says why); the watch is kept.",
    HTTPStatus.NOT_FOUND: "`post_not_found`: Genviral has no such post in the key's scope, the watch ends; "
    "`not_watched` (check now): the post is not watched.",
    HTTPStatus.CONFLICT: "`conflict`: the watch changed during the request; try again.",
    **MISCONFIGURED,
    HTTPStatus.BAD_GATEWAY: "`genviral_refused`: Genviral refused the relay's key, or the key could not be read; "
    "calls are paused, the watch is kept.",
}


def answers(success: type[BaseModel], table: dict[HTTPStatus, str]) -> dict[int, OpenAPIResponse]:
    """A route's OpenAPI `responses`: a 2xx answer is a `success` document, any other an ErrorResponse, its
    `error` in backquotes (API Gateway's 403 aside, which every route may answer)."""
    documented: dict[int, OpenAPIResponse] = {
        int(status): {
            "description": text,
            "content": {content_types.APPLICATION_JSON: {"model": success if status < 300 else ErrorResponse}},
        }
        for status, text in table.items()
    }
    documented.update(
        {
            int(status): {"description": text, "content": {content_types.APPLICATION_JSON: {"model": GatewayRefusal}}}
            for status, text in UNSIGNED.items()
        }
    )
    return dict(sorted(documented.items()))
