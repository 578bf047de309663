"""HTTP API (API Gateway REST, AWS_IAM auth): register, read, check now, stop watching.

Input is validated before anything else happens: a bad request is a 4xx JSON error and never
reaches Genviral.
"""

from __future__ import annotations

import binascii
import json
import re
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, TypeAdapter, ValidationError

from genviral_relay.errors import (
    ConfigurationError,
    GenviralConfigError,
    OutboxNotEmptyError,
    StateConflictError,
    TokenUnavailableError,
    WatchNotFoundError,
)
from genviral_relay.factories import checker_store, post_check, unwatch
from genviral_relay.logic.check import CheckOutcome
from genviral_relay.logic.pause import describe_refusal
from genviral_relay.models.api import CheckResponse, ErrorResponse, RegisterWatchRequest, UnwatchResponse, WatchView
from genviral_relay.models.domain import POST_ID_HINT, PostId
from genviral_relay.observability import logger, metrics
from genviral_relay.settings import CheckerSettings

MAX_BODY_BYTES = 4096
# Known paths and their methods, to tell a wrong method (405) from an unknown path (404).
ROUTES = (
    (re.compile(r"^/watches/?$"), ("POST",)),
    (re.compile(r"^/watches/[^/]+/?$"), ("GET", "DELETE")),
    (re.compile(r"^/watches/[^/]+/check/?$"), ("POST",)),
)

app = APIGatewayRestResolver()
_post_id = TypeAdapter(PostId)

SETTINGS = CheckerSettings
"""The configuration this function reads (the template must set every variable)."""


class BadRequestError(Exception):
    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = status


def _json(status: HTTPStatus, body: BaseModel) -> Response[str]:
    return Response(status_code=int(status), content_type=content_types.APPLICATION_JSON, body=body.model_dump_json())


def _error(status: HTTPStatus, error: str, message: str) -> Response[str]:
    return _json(status, ErrorResponse(error=error, message=message))


def _valid_post_id(raw: str) -> str:
    try:
        return _post_id.validate_python(raw)
    except ValidationError:
        raise BadRequestError(POST_ID_HINT) from None


def _register_body() -> RegisterWatchRequest:
    event = app.current_event
    try:
        raw = event.decoded_body if event.body else ""
    except (ValueError, binascii.Error):  # invalid base64, or bytes that are not UTF-8
        raise BadRequestError("the body is not valid base64-encoded UTF-8 text") from None
    if not raw or not raw.strip():
        raise BadRequestError('a JSON body {"post_id": "<uuid>"} is required')
    if len(raw.encode()) > MAX_BODY_BYTES:
        raise BadRequestError(f"the body is over {MAX_BODY_BYTES} bytes", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nesting too deep for the parser
        raise BadRequestError("the body is not valid JSON") from None
    if not isinstance(document, dict):
        raise BadRequestError('the body must be a JSON object {"post_id": "<uuid>"}')
    try:
        return RegisterWatchRequest.model_validate(document)
    except ValidationError as error:
        issue = error.errors()[0]
        field = ".".join(str(part) for part in issue["loc"]) or "body"
        if field == "post_id" and issue["type"] == "value_error":
            raise BadRequestError(POST_ID_HINT) from None
        raise BadRequestError(f"invalid body: {field}: {issue['msg']}") from None


def _check_response(outcome: CheckOutcome) -> Response[str]:
    view = WatchView.of(outcome.watch) if outcome.watch is not None else None
    error = outcome.error
    if outcome.result == "post_not_found":
        return _error(
            HTTPStatus.NOT_FOUND,
            "post_not_found",
            f"Genviral has no post {outcome.post_id} in this key's scope",
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
    if error is not None:
        message = f"the check is deferred to a later tick: {type(error).__name__}: {error}"
        return _json(
            HTTPStatus.ACCEPTED,
            CheckResponse(result=outcome.result, watch=view, transitions=[], message=message),
        )
    body = CheckResponse(result=outcome.result, watch=view, transitions=list(outcome.events))
    return _json(HTTPStatus.CREATED if outcome.created else HTTPStatus.OK, body)


@app.post("/watches")
def handle_post_watches() -> Response[str]:
    request = _register_body()
    return _check_response(post_check().check(request.post_id, trigger="register"))


@app.get("/watches/<post_id>")
def handle_get_watch(post_id: str) -> Response[str]:
    record = checker_store().get(_valid_post_id(post_id))
    if record is None:
        return _error(HTTPStatus.NOT_FOUND, "not_watched", f"post {post_id} is not watched")
    return _json(HTTPStatus.OK, WatchView.of(record))


@app.post("/watches/<post_id>/check")
def handle_post_check(post_id: str) -> Response[str]:
    outcome = post_check().check(_valid_post_id(post_id), trigger="manual")
    if outcome.result == "not_watched":
        return _error(HTTPStatus.NOT_FOUND, "not_watched", f"post {post_id} is not watched; POST /watches first")
    return _check_response(outcome)


@app.delete("/watches/<post_id>")
def handle_delete_watch(post_id: str) -> Response[str]:
    record = unwatch().run(_valid_post_id(post_id))
    return _json(HTTPStatus.OK, UnwatchResponse(post_id=record.post_id, watching=False, message="watch removed"))


@app.exception_handler(BadRequestError)
def _bad_request(error: BadRequestError) -> Response[str]:
    return _error(error.status, "bad_request", str(error))


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


@app.exception_handler(ConfigurationError)
def _misconfigured(error: ConfigurationError) -> Response[str]:
    logger.error("Function misconfigured", extra={"error": str(error)})
    return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "configuration_error", str(error))


@app.not_found
def _no_route(_: Exception) -> Response[str]:
    path = app.current_event.path
    method = app.current_event.http_method.upper()
    allowed = next((methods for pattern, methods in ROUTES if pattern.match(path)), None)
    if allowed is not None and method in allowed:
        # A known route whose post id holds characters no UUID has, so the resolver did not match it.
        return _error(HTTPStatus.BAD_REQUEST, "bad_request", POST_ID_HINT)
    if allowed is not None:
        return _error(
            HTTPStatus.METHOD_NOT_ALLOWED,
            "method_not_allowed",
            f"{method} is not allowed on {path}; use {', '.join(allowed)}",
        )
    return _error(HTTPStatus.NOT_FOUND, "no_route", f"no route for {method} {path}")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
