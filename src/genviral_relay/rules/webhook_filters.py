"""Which documents an endpoint's `filter` lets through: workspaces, platforms, account ids and error categories."""

from __future__ import annotations

from dataclasses import dataclass

from genviral_relay.models.events import AccountEvent, PostCompletedEvent
from genviral_relay.models.relay_notices import AccountStatusEvent, RelayStateEvent
from genviral_relay.models.webhook_documents import WebhookDocument
from genviral_relay.models.webhooks import EndpointFilter


@dataclass(frozen=True)
class _Facet:
    """One account a document is about, as a filter sees it."""

    account_id: str
    platform: str | None
    error_category: str | None


def _facets(event: WebhookDocument) -> tuple[_Facet, ...]:
    if isinstance(event, AccountEvent):
        return (_Facet(event.account_id, event.account.platform, event.error_category),)
    if isinstance(event, PostCompletedEvent):
        return tuple(_Facet(one.account_id, one.account.platform, one.error_category) for one in event.accounts)
    if isinstance(event, AccountStatusEvent):  # no failure: a filter on error categories leaves it out
        return (_Facet(event.account_id, event.account.platform, None),)
    return ()


def _facet_matches(facet: _Facet, given: EndpointFilter) -> bool:
    # A platform Genviral did not list (null) matches no platform filter: unknown is not "any".
    return (
        (given.platforms is None or (facet.platform or "").lower() in given.platforms)
        and (given.account_ids is None or facet.account_id in given.account_ids)
        and (given.error_categories is None or facet.error_category in given.error_categories)
    )


def passes(given: EndpointFilter | None, event: WebhookDocument) -> bool:
    """The document goes to an endpoint with this filter: its workspace is one of `workspaces`, and every other given
    field matches one account of it (any one of a completion's; an `account.*` notice is its one account, with no
    error category). A `relay.*` notice is about a workspace's key as a whole (every account's posts wait while it is
    paused): only `workspaces` applies to it. No filter, or a filter that gives no field, lets everything through."""
    if given is None:
        return True
    if given.workspaces is not None and event.workspace not in given.workspaces:
        return False
    if (given.platforms is None and given.account_ids is None and given.error_categories is None) or isinstance(
        event, RelayStateEvent
    ):
        return True
    return any(_facet_matches(facet, given) for facet in _facets(event))
