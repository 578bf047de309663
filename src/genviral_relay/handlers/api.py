"""HTTP API (API Gateway REST, AWS_IAM auth): register, read, check now, stop watching; register, read, rotate,
test and delete webhook endpoints.

Powertools validates each request against its route's annotations (`enable_validation=True`) before the
route runs: a bad request is a 4xx JSON `ErrorResponse` and never reaches Genviral. The same annotations
make the OpenAPI document, docs/openapi.json (`make openapi` writes it, a test fails when it is stale).
"""

from __future__ import annotations

import binascii
import json
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from genviral_relay.clock import to_milliseconds
from genviral_relay.errors import (
    ConfigurationError,
    EnqueueError,
    GenviralConfigError,
    OutboxNotEmptyError,
    StateConflictError,
    TokenUnavailableError,
    TooManyWebhooksError,
    WatchNotFoundError,
    WebhookNotFoundError,
)
from genviral_relay.factories import check_path, checker_store, unwatch, webhook_registry
from genviral_relay.logic.check import CheckOutcome, CheckTrigger
from genviral_relay.logic.pause import describe_refusal
from genviral_relay.logic.webhook_urls import UrlRefusedError
from genviral_relay.models.api import CheckResponse, ErrorResponse, RegisterWatchRequest, UnwatchResponse, WatchView
from genviral_relay.models.domain import POST_ID_HINT, PostId
from genviral_relay.models.webhooks import (
    WEBHOOK_ID_HINT,
    CreateWebhookRequest,
    WebhookCreated,
    WebhookDeleted,
    WebhookDetail,
    WebhookId,
    WebhookList,
    WebhookTestSent,
    WebhookView,
)
from genviral_relay.observability import logger, metrics
from genviral_relay.settings import ApiSettings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

MAX_BODY_BYTES = 4096
WATCH_BODY = '{"post_id": "<uuid>"}'
WEBHOOK_BODY = '{"url": "https://...", "event_types": [...], "description": "..."}'

SETTINGS = ApiSettings
"""The configuration this function reads (the template must set every variable)."""


class BodyTooLargeError(Exception):
    """The request body is over MAX_BODY_BYTES (answered 413)."""


class BodyIsNullError(Exception):
    """The body is JSON `null`: present, but not the object the route takes (Powertools would call it missing)."""


def _read_body(text: str) -> Any:
    """The registration body as JSON, for Powertools to validate; it calls this only for routes that take a body,
    with the text after base64 decoding. Blank is no body (Powertools then reports it missing)."""
    if not text.strip():
        return None
    if len(text.encode()) > MAX_BODY_BYTES:
        raise BodyTooLargeError(f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        document = json.loads(text)
    except RecursionError:  # nesting too deep for the parser: a JSON error, which Powertools reports as such
        raise json.JSONDecodeError("nesting too deep", text, 0) from None
    if document is None:
        raise BodyIsNullError
    return document


app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=_read_body)


# ---------------------------------------------------------------------- answers
def _json(status: HTTPStatus, body: BaseModel) -> Response[str]:
    return Response(status_code=int(status), content_type=content_types.APPLICATION_JSON, body=body.model_dump_json())


def _error(status: HTTPStatus, error: str, message: str) -> Response[str]:
    return _json(status, ErrorResponse(error=error, message=message))


def _check_answer(outcome: CheckOutcome) -> Response[str]:
    """A registration's or a check-now's outcome as the API answers it."""
    error = outcome.error
    if outcome.result == "not_watched":
        return _error(
            HTTPStatus.NOT_FOUND, "not_watched", f"post {outcome.post_id} is not watched; POST /watches first"
        )
    if outcome.result == "post_not_found":
        return _error(
            HTTPStatus.NOT_FOUND, "post_not_found", f"Genviral has no post {outcome.post_id} in this key's scope"
        )
    if outcome.result == "refused" and isinstance(error, GenviralConfigError):
        problem = (
            "the relay could not read its Genviral key from Secrets Manager"
            if isinstance(error, TokenUnavailableError)
            else "Genviral refused the relay's key"
        )
        return _error(
            HTTPStatus.BAD_GATEWAY,
            "genviral_refused",
            f"{problem}: {describe_refusal(error)}. The watch is kept and checked again once this is fixed.",
        )
    view = WatchView.of(outcome.watch) if outcome.watch is not None else None
    if error is not None:
        message = f"the check is deferred to a later tick: {type(error).__name__}: {error}"
        return _json(
            HTTPStatus.ACCEPTED, CheckResponse(result=outcome.result, watch=view, transitions=[], message=message)
        )
    body = CheckResponse(result=outcome.result, watch=view, transitions=list(outcome.events))
    return _json(HTTPStatus.CREATED if outcome.created else HTTPStatus.OK, body)


# ---------------------------------------------------------------------- routes
def _answers(success: type[BaseModel], answers: dict[HTTPStatus, str]) -> dict[int, OpenAPIResponse]:
    """A route's OpenAPI `responses` (documentation only: the code decides what a route answers); a 2xx answer
    is a `success` document, any other an ErrorResponse, its `error` in backquotes."""
    return {
        int(status): {
            "description": text,
            "content": {content_types.APPLICATION_JSON: {"model": success if status < 300 else ErrorResponse}},
        }
        for status, text in sorted(answers.items())
    }


PathPostId = Annotated[PostId, Path(description="The Genviral post id, a UUID in its hyphenated form (any case).")]
BAD_ID = {HTTPStatus.BAD_REQUEST: f"`bad_request`: {POST_ID_HINT}."}
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


@app.post(
    "/watches",
    operation_id="registerWatch",
    summary="Watch a post",
    description="Registers the post for watching and checks it at once.",
    responses=_answers(
        CheckResponse,
        {
            HTTPStatus.OK: "The post was already watched: this check's state and transitions.",
            HTTPStatus.CREATED: "Registered and checked: the post's state and any transitions found.",
            HTTPStatus.BAD_REQUEST: '`bad_request`: the body is not `{"post_id": "<uuid>"}`.',
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE: f"`bad_request`: the body is over {MAX_BODY_BYTES} bytes.",
            **CHECK_ANSWERS,
        },
    ),
)
def register_watch(request: Annotated[RegisterWatchRequest, Body()]) -> Response[str]:
    return _check_answer(_check_now(request.post_id, trigger="register"))


@app.get(
    "/watches/<post_id>",
    operation_id="getWatch",
    summary="Read a watch",
    description="The last-seen state of a watched post.",
    responses=_answers(
        WatchView,
        {
            HTTPStatus.OK: "The watch.",
            **BAD_ID,
            HTTPStatus.NOT_FOUND: "`not_watched`: the post is not watched.",
            **MISCONFIGURED,
        },
    ),
)
def get_watch(post_id: PathPostId) -> Response[str]:
    record = checker_store().get(post_id)
    if record is None:
        raise WatchNotFoundError(post_id)
    return _json(HTTPStatus.OK, WatchView.of(record))


@app.post(
    "/watches/<post_id>/check",
    operation_id="checkWatch",
    summary="Check a watched post now",
    description="Checks the post at once; the same answer as a registration.",
    responses=_answers(
        CheckResponse, {HTTPStatus.OK: "This check's state and transitions.", **BAD_ID, **CHECK_ANSWERS}
    ),
)
def check_watch(post_id: PathPostId) -> Response[str]:
    return _check_answer(_check_now(post_id, trigger="manual"))


def _check_now(post_id: str, *, trigger: CheckTrigger) -> CheckOutcome:
    """A check a person asked for; once answered, the checks the poller queued before it ask Genviral
    nothing (`CheckClaims.claim_for_check_now`)."""
    path = check_path()
    started = to_milliseconds(path.clock())  # as the poller's `queued_at`
    outcome = path.check.check(post_id, trigger=trigger)
    path.claims().claim_for_check_now(outcome, started=started)
    return outcome


@app.delete(
    "/watches/<post_id>",
    operation_id="deleteWatch",
    summary="Stop watching a post",
    description="Publishes anything still pending, then forgets the watch.",
    responses=_answers(
        UnwatchResponse,
        {
            HTTPStatus.OK: "The watch is removed.",
            **BAD_ID,
            HTTPStatus.NOT_FOUND: "`not_watched`: the post is not watched.",
            HTTPStatus.CONFLICT: "`events_pending`: some events could not be published, the watch is kept; "
            "`conflict`: a check committed during the request. Try again later.",
            **MISCONFIGURED,
        },
    ),
)
def delete_watch(post_id: PathPostId) -> Response[str]:
    record = unwatch().run(post_id)
    return _json(HTTPStatus.OK, UnwatchResponse(post_id=record.post_id, watching=False, message="watch removed"))


# ---------------------------------------------------------------------- webhooks
PathWebhookId = Annotated[WebhookId, Path(description="The endpoint's id, as its registration answered it.")]
BAD_WEBHOOK_ID = {HTTPStatus.BAD_REQUEST: f"`bad_request`: {WEBHOOK_ID_HINT}."}
NO_WEBHOOK = {HTTPStatus.NOT_FOUND: "`webhook_not_found`: no endpoint has this id."}


@app.post(
    "/webhooks",
    operation_id="createWebhook",
    summary="Register a webhook endpoint",
    description="Every event of the chosen types is POSTed to the URL, signed as Standard Webhooks has it, and "
    "retried for about a day. The answer is the only one, with a rotation's, that shows the secret.",
    responses=_answers(
        WebhookCreated,
        {
            HTTPStatus.CREATED: "Registered: the endpoint and its signing secret.",
            HTTPStatus.BAD_REQUEST: "`bad_request`: the body is not an endpoint, the URL may not receive webhooks "
            "(not https://, a private address, credentials), or an event type is unknown.",
            HTTPStatus.CONFLICT: "`too_many_webhooks`: the deployment has as many endpoints as it takes.",
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE: f"`bad_request`: the body is over {MAX_BODY_BYTES} bytes.",
            **MISCONFIGURED,
        },
    ),
)
def create_webhook(request: Annotated[CreateWebhookRequest, Body()]) -> Response[str]:
    return _json(HTTPStatus.CREATED, WebhookCreated.with_secret(webhook_registry().create(request)))


@app.get(
    "/webhooks",
    operation_id="listWebhooks",
    summary="List the webhook endpoints",
    description="Every registered endpoint, oldest first, without secrets.",
    responses=_answers(WebhookList, {HTTPStatus.OK: "The endpoints.", **MISCONFIGURED}),
)
def list_webhooks() -> Response[str]:
    return _json(HTTPStatus.OK, WebhookList(webhooks=[WebhookView.of(e) for e in webhook_registry().endpoints()]))


@app.get(
    "/webhooks/<webhook_id>",
    operation_id="getWebhook",
    summary="Read a webhook endpoint",
    description="The endpoint, without its secret, and how its deliveries go.",
    responses=_answers(
        WebhookDetail, {HTTPStatus.OK: "The endpoint.", **BAD_WEBHOOK_ID, **NO_WEBHOOK, **MISCONFIGURED}
    ),
)
def get_webhook(webhook_id: PathWebhookId) -> Response[str]:
    return _json(HTTPStatus.OK, WebhookDetail.of(webhook_registry().endpoint(webhook_id)))


@app.delete(
    "/webhooks/<webhook_id>",
    operation_id="deleteWebhook",
    summary="Delete a webhook endpoint",
    description="Stops deliveries to it, retries included.",
    responses=_answers(WebhookDeleted, {HTTPStatus.OK: "Deleted.", **BAD_WEBHOOK_ID, **NO_WEBHOOK, **MISCONFIGURED}),
)
def delete_webhook(webhook_id: PathWebhookId) -> Response[str]:
    webhook_registry().delete(webhook_id)
    return _json(HTTPStatus.OK, WebhookDeleted(id=webhook_id, message="webhook deleted; deliveries stop"))


@app.post(
    "/webhooks/<webhook_id>/rotate-secret",
    operation_id="rotateWebhookSecret",
    summary="Rotate a webhook endpoint's secret",
    description="A new secret; for 24 hours each delivery carries a signature with each secret.",
    responses=_answers(
        WebhookCreated,
        {HTTPStatus.OK: "The endpoint and its new secret.", **BAD_WEBHOOK_ID, **NO_WEBHOOK, **MISCONFIGURED},
    ),
)
def rotate_webhook_secret(webhook_id: PathWebhookId) -> Response[str]:
    return _json(HTTPStatus.OK, WebhookCreated.with_secret(webhook_registry().rotate_secret(webhook_id)))


@app.post(
    "/webhooks/<webhook_id>/test",
    operation_id="testWebhook",
    summary="Send a test event to a webhook endpoint",
    description="Queues a `webhook.test` event for this endpoint, delivered and retried like any event.",
    responses=_answers(
        WebhookTestSent,
        {
            HTTPStatus.ACCEPTED: "Queued for delivery.",
            **BAD_WEBHOOK_ID,
            **NO_WEBHOOK,
            **MISCONFIGURED,
            HTTPStatus.SERVICE_UNAVAILABLE: "`not_queued`: the delivery queue did not take it; try again.",
        },
    ),
)
def test_webhook(webhook_id: PathWebhookId) -> Response[str]:
    delivery = webhook_registry().send_test(webhook_id)
    return _json(
        HTTPStatus.ACCEPTED,
        WebhookTestSent(id=webhook_id, event_id=delivery.event_id, message="test event queued for delivery"),
    )


# ---------------------------------------------------------------------- bad requests
@app.exception_handler(RequestValidationError)
def _invalid_request(error: RequestValidationError) -> Response[str]:
    return _error(HTTPStatus.BAD_REQUEST, "bad_request", _first_problem(error.errors()))


@app.exception_handler(BodyIsNullError)
def _null_body(_: BodyIsNullError) -> Response[str]:
    body = _route_hints()[0]
    return _error(HTTPStatus.BAD_REQUEST, "bad_request", f"the body must be a JSON object {body}")


def _first_problem(errors: Sequence[Any]) -> str:
    """What is wrong with the request, in the words of the contract (the first problem Powertools found)."""
    if not errors:
        return "the request is not valid"
    issue = errors[0]
    location, kind = tuple(issue["loc"]), issue["type"]
    if location[-1:] == ("post_id",) and (location[0] == "path" or kind == "value_error"):
        return POST_ID_HINT
    if location[:1] == ("path",) and location[-1:] == ("webhook_id",):
        return WEBHOOK_ID_HINT
    if kind == "json_invalid":
        return "the body is not valid JSON"
    body = _route_hints()[0]
    if location == ("body",) and kind == "missing":
        return f"a JSON body {body} is required"
    if location == ("body",):
        return f"the body must be a JSON object {body}"
    field = ".".join(str(part) for part in location[1:])
    if kind == "value_error":  # the validator's own words, without pydantic's "Value error, "
        return f"{field}: {issue['ctx']['error']}" if "ctx" in issue else f"{field}: {issue['msg']}"
    return f"invalid body: {field}: {issue['msg']}"


def _route_hints() -> tuple[str, str]:
    """The request's route family's body example and id hint, for the messages of a bad request."""
    route = str(app.current_event.get("resource") or app.current_event.path)
    return (WEBHOOK_BODY, WEBHOOK_ID_HINT) if route.startswith("/webhooks") else (WATCH_BODY, POST_ID_HINT)


@app.exception_handler(BodyTooLargeError)
def _too_large(error: BodyTooLargeError) -> Response[str]:
    return _error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "bad_request", str(error))


@app.exception_handler([binascii.Error, UnicodeDecodeError])
def _undecodable_body(error: ValueError) -> Response[str]:
    # Powertools decodes an `isBase64Encoded` body while validating, before the route runs, and lets these escape.
    if not app.current_event.is_base64_encoded:
        raise error  # not from the body: an error of the relay's own
    return _error(HTTPStatus.BAD_REQUEST, "bad_request", "the body is not valid base64-encoded UTF-8 text")


# API Gateway invokes this function only for the routes and methods template.yaml declares, and answers any other
# request itself (403 "Missing Authentication Token"). Powertools' router can still miss a declared route: its
# `<post_id>` pattern leaves out characters that API Gateway passes in a path segment (emoji, quotes, NUL, ...).
# `resource` names the route API Gateway matched (the local runner matches template.yaml the same way), so a miss
# on a declared route with one of its methods is such an id: not a UUID, 400. Only the local runner, which
# delivers any request, reaches the 405 and 404 answers; they name the mistake instead of a bare 404.
ROUTES = {
    "/watches": ("POST",),
    "/watches/{post_id}": ("GET", "DELETE"),
    "/watches/{post_id}/check": ("POST",),
    "/webhooks": ("GET", "POST"),
    "/webhooks/{webhook_id}": ("GET", "DELETE"),
    "/webhooks/{webhook_id}/rotate-secret": ("POST",),
    "/webhooks/{webhook_id}/test": ("POST",),
}
"""The routes of template.yaml (its `Api` events) and their methods: a test keeps the three in step."""


@app.not_found
def _no_route(_: Exception) -> Response[str]:
    event = app.current_event
    method = event.http_method.upper()
    allowed = ROUTES.get(event.get("resource") or "")
    if allowed is not None and method in allowed:
        id_hint = _route_hints()[1]
        return _error(HTTPStatus.BAD_REQUEST, "bad_request", id_hint)
    if allowed is not None:
        return _error(
            HTTPStatus.METHOD_NOT_ALLOWED,
            "method_not_allowed",
            f"{method} is not allowed on {event.path}; use {', '.join(allowed)}",
        )
    return _error(HTTPStatus.NOT_FOUND, "no_route", f"no route for {method} {event.path}")


# ---------------------------------------------------------------------- relay errors
@app.exception_handler(WatchNotFoundError)
def _not_watched(error: WatchNotFoundError) -> Response[str]:
    return _error(HTTPStatus.NOT_FOUND, "not_watched", f"post {error} is not watched")


@app.exception_handler(OutboxNotEmptyError)
def _outbox_not_empty(error: OutboxNotEmptyError) -> Response[str]:
    return _error(
        HTTPStatus.CONFLICT,
        "events_pending",
        f"post {error} still has events that could not be published; the watch is kept, try again later",
    )


@app.exception_handler(StateConflictError)
def _conflict(error: StateConflictError) -> Response[str]:
    return _error(HTTPStatus.CONFLICT, "conflict", f"post {error} changed during the request; try again")


@app.exception_handler(UrlRefusedError)
def _url_refused(error: UrlRefusedError) -> Response[str]:
    return _error(HTTPStatus.BAD_REQUEST, "bad_request", str(error))


@app.exception_handler(WebhookNotFoundError)
def _no_webhook(error: WebhookNotFoundError) -> Response[str]:
    return _error(HTTPStatus.NOT_FOUND, "webhook_not_found", f"no webhook endpoint {error}")


@app.exception_handler(TooManyWebhooksError)
def _too_many_webhooks(error: TooManyWebhooksError) -> Response[str]:
    return _error(HTTPStatus.CONFLICT, "too_many_webhooks", str(error))


@app.exception_handler(EnqueueError)
def _not_queued(error: EnqueueError) -> Response[str]:
    return _error(HTTPStatus.SERVICE_UNAVAILABLE, "not_queued", f"{error}; try again")


@app.exception_handler(ConfigurationError)
def _misconfigured(error: ConfigurationError) -> Response[str]:
    logger.error("Function misconfigured", extra={"error": str(error)})
    return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "configuration_error", str(error))


# ---------------------------------------------------------------------- entry point
def _as_json(event: dict[str, Any]) -> dict[str, Any]:
    """The request with the body declared JSON. API Gateway passes on the client's Content-Type, and this API has
    always read the body as JSON whatever it says (`curl -d` sends a form type, `fetch` text/plain); Powertools reads
    a body by its Content-Type (a form, multipart, or 415)."""
    headers = event.get("headers") or {}
    if headers.get("content-type") == content_types.APPLICATION_JSON:
        return event
    declared = {name: value for name, value in headers.items() if name.lower() != "content-type"}
    return {**event, "headers": {**declared, "content-type": content_types.APPLICATION_JSON}}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(_as_json(event), context)
