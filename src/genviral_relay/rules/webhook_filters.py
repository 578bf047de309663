"""Which events an endpoint's `filter` lets through: platforms, account ids and error categories."""

from __future__ import annotations

from dataclasses import dataclass

from genviral_relay.models.events import AccountEvent, PostCompletedEvent, RelayEvent
from genviral_relay.models.webhooks import EndpointFilter


@dataclass(frozen=True)
class _Facet:
    """One account an event is about, as a filter sees it."""

    account_id: str
    platform: str | None
    error_category: str | None


def _facets(event: RelayEvent) -> tuple[_Facet, ...]:
    if isinstance(event, AccountEvent):
        return (_Facet(event.account_id, event.account.platform, event.error_category),)
    if isinstance(event, PostCompletedEvent):
        return tuple(_Facet(one.account_id, one.account.platform, one.error_category) for one in event.accounts)
    return ()


def _facet_matches(facet: _Facet, given: EndpointFilter) -> bool:
    # A platform Genviral did not list (null) matches no platform filter: unknown is not "any".
    return (
        (given.platforms is None or (facet.platform or "").lower() in given.platforms)
        and (given.account_ids is None or facet.account_id in given.account_ids)
        and (given.error_categories is None or facet.error_category in given.error_categories)
    )


def passes(given: EndpointFilter | None, event: RelayEvent) -> bool:
    """The event goes to an endpoint with this filter: every given field matches one account of the event (any one
    of a completion's). No filter, or a filter that gives no field, lets everything through."""
    if given is None or (given.platforms is None and given.account_ids is None and given.error_categories is None):
        return True
    return any(_facet_matches(facet, given) for facet in _facets(event))
