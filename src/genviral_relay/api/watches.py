"""The watch routes: register a post, read its watch, check it now, stop watching it."""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from genviral_relay.api.answers import BAD_ID, CHECK_ANSWERS, MISCONFIGURED, answers
from genviral_relay.api.app import MAX_BODY_BYTES, answer, app, error_answer
from genviral_relay.deadlines import Deadline
from genviral_relay.errors import GenviralConfigError, TokenUnavailableError, WatchNotFoundError
from genviral_relay.factories import checker_store
from genviral_relay.models.api import CheckResponse, RegisterWatchRequest, UnwatchResponse, WatchView
from genviral_relay.models.domain import PostId
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE, workspace_of
from genviral_relay.workspace_factories import relay, workspace_keys
from genviral_relay.workspace_scope import working_for

if TYPE_CHECKING:  # the check path is imported by the first check (cold starts are measured)
    from genviral_relay.checking.check import CheckOutcome
    from genviral_relay.models.workspace_registry import WorkspaceRegistry
    from genviral_relay.relay import Relay

WATCH_BODY = '{"post_id": "<uuid>"}'

WORKSPACES_UNKNOWN = (
    "the Genviral secret cannot be read or is not usable, and no worker has recorded this stack's workspaces yet: "
    "the relay cannot tell whether this workspace exists. Nothing was stored; register again once the secret is fixed."
)
WORKSPACE_REMOVED = "`workspace_removed`: the post's workspace is no longer in the secret; the watch is kept."
WORKSPACE_CONFLICTS = f"`workspace_mismatch`: the post is watched in another workspace. {WORKSPACE_REMOVED}"

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
            HTTPStatus.BAD_REQUEST: '`bad_request`: the body is not `{"post_id": "<uuid>"}`, or names no '
            "`workspace` while the secret names several; `unknown_workspace`: the secret names no such workspace "
            "(the message lists the ones it names; while the secret cannot be read, the ones it last named).",
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE: f"`bad_request`: the body is over {MAX_BODY_BYTES} bytes.",
            **CHECK_ANSWERS,
            HTTPStatus.CONFLICT: f"{CHECK_ANSWERS[HTTPStatus.CONFLICT]} {WORKSPACE_CONFLICTS}",
            HTTPStatus.SERVICE_UNAVAILABLE: f"`workspaces_unknown`: {WORKSPACES_UNKNOWN}",
        },
    ),
)
def register_watch(request: Annotated[RegisterWatchRequest, Body()]) -> Response[str]:
    known = _workspaces()
    watched = checker_store().get(request.post_id)
    if watched is not None:  # a post is watched in one workspace: registering it again checks it there
        workspace = workspace_of(watched.workspace)
        if request.workspace not in (None, workspace):
            return error_answer(
                HTTPStatus.CONFLICT,
                "workspace_mismatch",
                f"post {request.post_id} is watched in workspace {workspace}, not {request.workspace}",
            )
    elif request.workspace is not None:
        workspace = request.workspace
    elif known is None or len(known) == 1:
        workspace = known[0] if known else DEFAULT_WORKSPACE
    else:
        return error_answer(
            HTTPStatus.BAD_REQUEST,
            "bad_request",
            f"workspace: required, this stack watches several workspaces: {', '.join(known)}",
        )
    if known is None and watched is None and workspace != DEFAULT_WORKSPACE:
        # A single workspace's stack (0.4's) keeps its registration, checked once the secret is fixed; another
        # name cannot be told from a typo, and a watch in a workspace that does not exist would never be ticked.
        return error_answer(HTTPStatus.SERVICE_UNAVAILABLE, "workspaces_unknown", WORKSPACES_UNKNOWN)
    if known is not None and workspace not in known:
        return _removed(request.post_id, workspace) if watched is not None else _unknown(workspace, known)
    with working_for(workspace, among=known or ()):
        outcome = relay(workspace).check_now(request.post_id, trigger="register", deadline=genviral_deadline())
    return check_answer(outcome)


def _workspaces() -> tuple[str, ...] | None:
    """The workspaces the secret names (cached). While it cannot be read or is not usable, the ones it last named
    (the registry the workers keep, `polling/workspaces.py`), so a watch is not stored in a workspace that does not
    exist; None before any worker recorded them: the check then meets the secret as any call does
    (`502 genviral_refused`, calls paused, the watch kept)."""
    try:
        return workspace_keys().names()
    except TokenUnavailableError:
        registry, version = _recorded()
        return registry.workspaces if version else None


def _recorded() -> tuple[WorkspaceRegistry, int]:
    """The workspaces the workers last recorded (the registry, one read of the table) and its version (0: none)."""
    from genviral_relay.polling.workspaces import workspace_registry

    return workspace_registry(checker_store().notices)


def _unknown(workspace: str, known: tuple[str, ...]) -> Response[str]:
    """Names the workspaces, never their keys."""
    return error_answer(
        HTTPStatus.BAD_REQUEST,
        "unknown_workspace",
        f"the Genviral secret names no workspace {workspace}; this stack's workspaces: {', '.join(known)}",
    )


def _removed(post_id: str, workspace: str) -> Response[str]:
    return error_answer(
        HTTPStatus.CONFLICT,
        "workspace_removed",
        f"post {post_id} is watched in workspace {workspace}, which the Genviral secret no longer names; the watch is "
        "kept and checked again once the secret names it",
    )


def _relay_of(post_id: str) -> Relay:
    """The check path of the post's own workspace (post ids are Genviral's, unique across workspaces); an unwatched
    post's is the default one's, which answers `not_watched` as before."""
    watched = checker_store().get(post_id)
    return relay(workspace_of(watched.workspace) if watched is not None else DEFAULT_WORKSPACE)


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
    responses=answers(
        CheckResponse,
        {
            HTTPStatus.OK: "This check's state and transitions.",
            **BAD_ID,
            **CHECK_ANSWERS,
            HTTPStatus.CONFLICT: f"{CHECK_ANSWERS[HTTPStatus.CONFLICT]} {WORKSPACE_REMOVED}",
        },
    ),
)
def check_watch(post_id: PathPostId) -> Response[str]:
    path = _relay_of(post_id)
    known = _workspaces()
    if known is not None and path.workspace not in known:
        return _removed(post_id, path.workspace)
    with working_for(path.workspace, among=known or ()):
        outcome = path.check_now(post_id, trigger="manual", deadline=genviral_deadline())
    return check_answer(outcome)


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
    path = _relay_of(post_id)
    # Its lines name the workspace by the registry, as the poller's do: the secret would be a Secrets Manager read
    # on a cold start for a route that needs no key, and the watch's workspace alone cannot tell (a secret may name
    # `acme` alone: a stack of one workspace, which names none).
    registry, _ = _recorded()
    with working_for(path.workspace, among=registry.workspaces):
        record = path.unwatch.run(post_id)  # publishes what is pending: no Genviral call, no key
    return answer(HTTPStatus.OK, UnwatchResponse(post_id=record.post_id, watching=False, message="watch removed"))
