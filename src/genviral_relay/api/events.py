"""The event routes: the feed of every published document, and one event's story."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from genviral_relay.api.answers import MISCONFIGURED, answers
from genviral_relay.api.app import answer, app
from genviral_relay.models.domain import PostId
from genviral_relay.models.feed_api import (
    EVENT_ID_HINT,
    DeliveryView,
    EventId,
    EventStoryResponse,
    FeedResponse,
    documents,
)
from genviral_relay.models.workspaces import WorkspaceName
from genviral_relay.rules.event_feed import PAGE_LIMIT, FeedEventType
from genviral_relay.webhook_factories import event_feed

PathEventId = Annotated[EventId, Path(description="The event's `event_id`.")]


@app.get(
    "/events",
    operation_id="listEvents",
    summary="Follow the event feed",
    description="Every published event document in the order the relay committed it, kept `EventRetentionDays`. "
    "Follow `next`: a consumer that passes it back as `after` misses no event, also one committed late, and sees "
    "each at least once (dedupe on `event_id`). Documents appear about 10 s after their commit; 0.4's are not in "
    "the feed. docs/feed.md.",
    responses=answers(
        FeedResponse,
        {
            HTTPStatus.OK: "A page (perhaps empty) and the cursor that follows it.",
            HTTPStatus.BAD_REQUEST: "`bad_request`: a cursor this feed did not write, `limit` outside 1-100, an "
            "unknown `event_type`, a `post_id` that is not a UUID, a `workspace` that is not a workspace name.",
            HTTPStatus.GONE: "`cursor_expired`: the cursor is older than the feed keeps (the message names the "
            "oldest moment kept); start again without `after`.",
            **MISCONFIGURED,
        },
    ),
)
def list_events(
    after: Annotated[str | None, Query(description="The `next` of the previous page; none: the oldest kept.")] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT, description="Documents per page (1-100).")] = PAGE_LIMIT,
    event_type: Annotated[FeedEventType | None, Query(description="Only documents of this type.")] = None,
    post_id: Annotated[PostId | None, Query(description="Only documents about this post.")] = None,
    workspace: Annotated[
        WorkspaceName | None,
        Query(
            description="Only documents of this workspace (`[a-z0-9-]{1,40}`; a document naming none, as an "
            "endpoint's disabling, is `default`'s). One the secret no longer names still lists its kept documents."
        ),
    ] = None,
) -> Response[str]:
    found = event_feed().page(after=after, limit=limit, event_type=event_type, post_id=post_id, workspace=workspace)
    return answer(HTTPStatus.OK, FeedResponse(data=documents(found.entries), next=found.next))


@app.get(
    "/events/<event_id>",
    operation_id="getEvent",
    summary="Read one event and its webhook deliveries",
    description="The event document (about a post, or a notice about an account or the relay) and, per webhook "
    "endpoint, where its delivery stands: `queued`, `delivered`, "
    "`retrying`, `parked`, `filtered` or `disabled`, with the attempts made, the last and next attempt, and the "
    "last status.",
    responses=answers(
        EventStoryResponse,
        {
            HTTPStatus.OK: "The event and its deliveries.",
            HTTPStatus.BAD_REQUEST: f"`bad_request`: {EVENT_ID_HINT}.",
            HTTPStatus.NOT_FOUND: "`not_found`: the feed keeps no such event (past its retention, or published "
            "before 0.5).",
            **MISCONFIGURED,
        },
    ),
)
def get_event(event_id: PathEventId) -> Response[str]:
    story = event_feed().story(event_id)
    deliveries = [DeliveryView.of(state) for state in story.deliveries]
    return answer(HTTPStatus.OK, EventStoryResponse(event=documents([story.entry])[0], deliveries=deliveries))
