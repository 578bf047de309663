"""The watch routes: register a post, read its watch, check it now, stop watching it."""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from genviral_relay.api.answers import BAD_ID, CHECK_ANSWERS, MISCONFIGURED, answers
from genviral_relay.api.app import MAX_BODY_BYTES, answer, app, error_answer
from genviral_relay.deadlines import Deadline
from genviral_relay.errors import GenviralConfigError, WatchNotFoundError
from genviral_relay.factories import checker_store, relay, unwatch
from genviral_relay.models.api import CheckResponse, RegisterWatchRequest, UnwatchResponse, WatchView
from genviral_relay.models.domain import PostId

if TYPE_CHECKING:  # the check path is imported by the first check (cold starts are measured)
    from genviral_relay.checking.check import CheckOutcome

WATCH_BODY = '{"post_id": "<uuid>"}'

PathPostId = Annotated[PostId, Path(description="The Genviral post id, a UUID in its hyphenated form (any case).")]
ANSWER_MARGIN_SECONDS = 5
"""Kept from the function's remaining time for what follows Genviral's answer (storing the watch, publishing,
answering): a hung Genviral defers the check (`202`, the watch kept) instead of timing the function out."""


def genviral_deadline() -> Deadline:
    """When this request's calls to Genviral must end: the function's timeout (25 s, within API Gateway's 29 s)
    less the margin."""
    return Deadline.after(app.lambda_context.get_remaining_time_in_millis() / 1000 - ANSWER_MARGIN_SECONDS)


def check_answer(outcome: CheckOutcome) -> Response[str]:
    """A registration's or a check-now's outcome as the API answers it."""
    error = outcome.error
    if outcome.result == "not_watched":
        return error_answer(
            HTTPStatus.NOT_FOUND, "not_watched", f"post {outcome.post_id} is not watched; POST /watches first"
        )
    if outcome.result == "post_not_found":
        return error_answer(
            HTTPStatus.NOT_FOUND, "post_not_found", f"Genviral has no post {outcome.post_id} in this key's scope"
        )
    if outcome.result == "refused" and isinstance(error, GenviralConfigError):
        from genviral_relay.checking.pause import describe_refusal

        # The published words (`relay.paused`): never the SDK's text about the secret (account, role, ARN).
        return error_answer(
            HTTPStatus.BAD_GATEWAY,
            "genviral_refused",
            f"{describe_refusal(error)}. The watch is kept and checked again once this is fixed.",
        )
    view = WatchView.of(outcome.watch) if outcome.watch is not None else None
    if error is not None:
        return answer(
            HTTPStatus.ACCEPTED,
            CheckResponse(result=outcome.result, watch=view, transitions=[], message=outcome.deferral),
        )
    body = CheckResponse(result=outcome.result, watch=view, transitions=list(outcome.events))
    return answer(HTTPStatus.CREATED if outcome.created else HTTPStatus.OK, body)


@app.post(
    "/watches",
    operation_id="registerWatch",
    summary="Watch a post",
    description="Registers the post for watching and checks it at once.",
    responses=answers(
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
    return check_answer(relay().check_now(request.post_id, trigger="register", deadline=genviral_deadline()))


@app.get(
    "/watches/<post_id>",
    operation_id="getWatch",
    summary="Read a watch",
    description="The last-seen state of a watched post.",
    responses=answers(
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
    return answer(HTTPStatus.OK, WatchView.of(record))


@app.post(
    "/watches/<post_id>/check",
    operation_id="checkWatch",
    summary="Check a watched post now",
    description="Checks the post at once; the same answer as a registration.",
    responses=answers(CheckResponse, {HTTPStatus.OK: "This check's state and transitions.", **BAD_ID, **CHECK_ANSWERS}),
)
def check_watch(post_id: PathPostId) -> Response[str]:
    return check_answer(relay().check_now(post_id, trigger="manual", deadline=genviral_deadline()))


@app.delete(
    "/watches/<post_id>",
    operation_id="deleteWatch",
    summary="Stop watching a post",
    description="Publishes anything still pending, then forgets the watch.",
    responses=answers(
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
    return answer(HTTPStatus.OK, UnwatchResponse(post_id=record.post_id, watching=False, message="watch removed"))
