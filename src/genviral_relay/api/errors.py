"""What the API answers when a request is bad or the relay raises: one place that translates errors to answers."""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from genviral_relay.api.app import BodyIsNullError, BodyTooLargeError, answer, app, error_answer
from genviral_relay.api.watches import WATCH_BODY
from genviral_relay.api.webhooks import WEBHOOK_BODY
from genviral_relay.errors import (
    ConfigurationError,
    CursorExpiredError,
    EndpointRefusedError,
    EnqueueError,
    EventNotFoundError,
    MissedNotQueuedError,
    OutboxNotEmptyError,
    ResendRefusedError,
    StateConflictError,
    TooManyWebhooksError,
    WatchNotFoundError,
    WebhookConflictError,
    WebhookDisabledError,
    WebhookExistsError,
    WebhookNotFoundError,
)
from genviral_relay.models.api import ErrorResponse
from genviral_relay.models.domain import POST_ID_HINT
from genviral_relay.models.feed_api import EVENT_ID_HINT, event_not_found
from genviral_relay.models.webhooks import WEBHOOK_ID_HINT, webhook_not_found
from genviral_relay.observability import logger
from genviral_relay.rules.cursors import CursorError
from genviral_relay.rules.webhook_urls import UrlRefusedError


@app.exception_handler(RequestValidationError)
def _invalid_request(error: RequestValidationError) -> Response[str]:
    return error_answer(HTTPStatus.BAD_REQUEST, "bad_request", _first_problem(error.errors()))


@app.exception_handler(BodyIsNullError)
def _null_body(_: BodyIsNullError) -> Response[str]:
    body = _route_hints()[0]
    return error_answer(HTTPStatus.BAD_REQUEST, "bad_request", f"the body must be a JSON object {body}")


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
    if location[:1] == ("path",) and location[-1:] == ("event_id",):
        return EVENT_ID_HINT
    if location[:1] == ("query",):
        return f"{'.'.join(str(part) for part in location[1:])}: {issue['msg']}"
    if kind == "json_invalid":
        return "the body is not valid JSON"
    body = _route_hints()[0]
    if location == ("body",) and kind == "value_error":  # a rule of the whole body (a resend's one form)
        return str(issue["ctx"]["error"]) if "ctx" in issue else str(issue["msg"])
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
    if route.startswith("/events"):
        return ("", EVENT_ID_HINT)  # no event route takes a body
    return (WEBHOOK_BODY, WEBHOOK_ID_HINT) if route.startswith("/webhooks") else (WATCH_BODY, POST_ID_HINT)


@app.exception_handler(BodyTooLargeError)
def _too_large(error: BodyTooLargeError) -> Response[str]:
    return error_answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "bad_request", str(error))


@app.exception_handler([binascii.Error, UnicodeDecodeError])
def _undecodable_body(error: ValueError) -> Response[str]:
    # Powertools decodes an `isBase64Encoded` body while validating, before the route runs, and lets these escape.
    if not app.current_event.is_base64_encoded:
        raise error  # not from the body: an error of the relay's own
    return error_answer(HTTPStatus.BAD_REQUEST, "bad_request", "the body is not valid base64-encoded UTF-8 text")


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
    "/webhooks/{webhook_id}": ("GET", "DELETE", "PATCH"),
    "/webhooks/{webhook_id}/attempts": ("GET",),
    "/webhooks/{webhook_id}/rotate-secret": ("POST",),
    "/webhooks/{webhook_id}/test": ("POST",),
    "/webhooks/{webhook_id}/enable": ("POST",),
    "/webhooks/{webhook_id}/disable": ("POST",),
    "/webhooks/{webhook_id}/resend": ("POST",),
    "/events": ("GET",),
    "/events/{event_id}": ("GET",),
}
"""The routes of template.yaml (its `Api` events) and their methods: a test keeps the three in step."""


@app.not_found
def _no_route(_: Exception) -> Response[str]:
    event = app.current_event
    method = event.http_method.upper()
    allowed = ROUTES.get(event.get("resource") or "")
    if allowed is not None and method in allowed:
        id_hint = _route_hints()[1]
        return error_answer(HTTPStatus.BAD_REQUEST, "bad_request", id_hint)
    if allowed is not None:
        return error_answer(
            HTTPStatus.METHOD_NOT_ALLOWED,
            "method_not_allowed",
            f"{method} is not allowed on {event.path}; use {', '.join(allowed)}",
        )
    return error_answer(HTTPStatus.NOT_FOUND, "no_route", f"no route for {method} {event.path}")


@app.exception_handler(WatchNotFoundError)
def _not_watched(error: WatchNotFoundError) -> Response[str]:
    return error_answer(HTTPStatus.NOT_FOUND, "not_watched", f"post {error} is not watched")


@app.exception_handler(OutboxNotEmptyError)
def _outbox_not_empty(error: OutboxNotEmptyError) -> Response[str]:
    return error_answer(
        HTTPStatus.CONFLICT,
        "events_pending",
        f"post {error} still has events that could not be published; the watch is kept, try again later",
    )


@app.exception_handler(StateConflictError)
def _conflict(error: StateConflictError) -> Response[str]:
    return error_answer(HTTPStatus.CONFLICT, "conflict", f"post {error} changed during the request; try again")


@app.exception_handler([UrlRefusedError, ResendRefusedError, EndpointRefusedError, CursorError])
def _refused(error: Exception) -> Response[str]:
    """What the relay refuses with its own words: a URL, a resend, an endpoint's settings, a cursor."""
    return error_answer(HTTPStatus.BAD_REQUEST, "bad_request", str(error))


@app.exception_handler(WebhookNotFoundError)
def _no_webhook(error: WebhookNotFoundError) -> Response[str]:
    return error_answer(HTTPStatus.NOT_FOUND, "webhook_not_found", webhook_not_found(str(error)))


@app.exception_handler(TooManyWebhooksError)
def _too_many_webhooks(error: TooManyWebhooksError) -> Response[str]:
    return error_answer(HTTPStatus.CONFLICT, "too_many_webhooks", str(error))


@app.exception_handler(WebhookExistsError)
def _webhook_exists(error: WebhookExistsError) -> Response[str]:
    message = f"webhook endpoint {error} has this URL and these event types already; rotate its secret to get a new one"
    return answer(HTTPStatus.CONFLICT, ErrorResponse(error="webhook_exists", message=message, webhook_id=str(error)))


@app.exception_handler(WebhookConflictError)
def _webhook_conflict(error: WebhookConflictError) -> Response[str]:
    return error_answer(
        HTTPStatus.CONFLICT,
        "conflict",
        f"webhook endpoint {error} kept changing during the edit; read it and try again",
    )


@app.exception_handler(WebhookDisabledError)
def _webhook_disabled(error: WebhookDisabledError) -> Response[str]:
    message = f"webhook endpoint {error} is disabled; enable it first (POST /webhooks/{error}/enable)"
    return error_answer(HTTPStatus.CONFLICT, "webhook_disabled", message)


@app.exception_handler(CursorExpiredError)
def _cursor_expired(error: CursorExpiredError) -> Response[str]:
    message = f"the cursor is older than the oldest entry kept ({error}); leave `after` out to start there"
    return error_answer(HTTPStatus.GONE, "cursor_expired", message)


@app.exception_handler(EventNotFoundError)
def _no_event(error: EventNotFoundError) -> Response[str]:
    return error_answer(HTTPStatus.NOT_FOUND, "not_found", event_not_found(str(error)))


@app.exception_handler(EnqueueError)
def _not_queued(error: EnqueueError) -> Response[str]:
    return error_answer(HTTPStatus.SERVICE_UNAVAILABLE, "not_queued", f"{error}; try again")


@app.exception_handler(MissedNotQueuedError)
def _missed_not_queued(error: MissedNotQueuedError) -> Response[str]:
    resend = f'POST /webhooks/{error.webhook_id}/resend {{"since": "{error.since}"}}'
    message = f"{error}; the endpoint is on now: resend what it missed with {resend} (receivers dedupe on webhook-id)"
    return error_answer(HTTPStatus.SERVICE_UNAVAILABLE, "not_queued", message)


@app.exception_handler(ConfigurationError)
def _misconfigured(error: ConfigurationError) -> Response[str]:
    logger.error("Function misconfigured", extra={"error": str(error)})
    return error_answer(HTTPStatus.INTERNAL_SERVER_ERROR, "configuration_error", str(error))
