"""Disabling an endpoint that has failed too long (`rules/endpoint_health.py` says when), and telling its operator:
the metric `WebhookEndpointsDisabled` (alarmed), `webhook.endpoint.disabled` on the stack's topic and bus, and the
same document in the feed. Only the attempt whose switch won announces it, so one disabling is announced once.

The switch is conditioned on the failing clock the decision read (before a send of up to 15 s): a success or an
operator's enable meanwhile (each clears it) wins. The metric is flushed at once, not at the handler's return: the
alarm hears of a disabling even when the process dies right after it (its notices may then be lost)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from genviral_relay.clock import Clock, format_ts
from genviral_relay.feed.appending import append_in_time
from genviral_relay.feed.ports import EventLog
from genviral_relay.models.endpoint_notices import EndpointDisabledEvent, url_host
from genviral_relay.models.event_log import FeedEntry
from genviral_relay.models.events import published_document
from genviral_relay.models.webhooks import WebhookEndpoint
from genviral_relay.observability import Metric, emit_now, logger
from genviral_relay.rules.endpoint_health import disabled_reason, due_for_disabling, notice_event_id
from genviral_relay.webhooks.ports import NoticePublisher, WebhookAnswer, WebhookStore


class EndpointDisabler:
    def __init__(
        self,
        *,
        store: WebhookStore,
        publishers: Sequence[NoticePublisher],
        feed: Callable[[], EventLog],
        disable_after: timedelta | None,
        clock: Clock,
    ) -> None:
        """`feed`: builds the feed when a notice first needs it (disablings are rare: a cold start need not import
        its adapter). `clock`: the notice's feed position is stamped when it is appended, not at the attempt's
        start (a send later), so a reader's horizon cannot have passed it."""
        self._store = store
        self._clock = clock
        self._publishers = publishers
        self._feed = feed
        self._after = disable_after

    def disables(self, endpoint: WebhookEndpoint, now: datetime, failure: WebhookAnswer, reason: str) -> bool:
        """After a failed attempt at `now` (`reason`: its cut reason): True when the endpoint is off (by this call
        or another), so the delivery is not retried; False when it stays on (or could not be switched off: the
        delivery is then retried as any other, and the next failure tries again)."""
        failing_since = endpoint.health.failing_since or now
        if not due_for_disabling(failing_since, now, self._after):
            return False
        why = disabled_reason(failing_since, now)
        keys = {"webhook_id": endpoint.id, "host": url_host(endpoint.url), "failing_since": format_ts(failing_since)}
        try:
            won = self._store.set_enabled(
                endpoint.id, False, at=now, reason=why, failing_since=endpoint.health.failing_since
            )
            if not won:  # another attempt switched it off, or a success or an enable since the read keeps it on
                current = self._store.endpoint(endpoint.id)
                return current is not None and not current.enabled
        except Exception:
            logger.exception("Could not disable a failing webhook endpoint; its delivery is retried", extra=keys)
            return False
        emit_now(Metric.WEBHOOK_ENDPOINTS_DISABLED)
        logger.error("Webhook endpoint disabled: every delivery failed too long", extra={**keys, "reason": why})
        notice = EndpointDisabledEvent(
            event_id=notice_event_id(endpoint.id, now),
            detected_at=format_ts(now),
            webhook_id=endpoint.id,
            host=url_host(endpoint.url),
            description=endpoint.description,
            disabled_reason=why,
            failing_since=format_ts(failing_since),
            last_failure_status=failure.status,
            last_failure_reason=reason,
        )
        self._announce(notice, now, keys)
        return True

    def _announce(self, notice: EndpointDisabledEvent, now: datetime, keys: dict[str, str]) -> None:
        """To every target and the feed, each on its own: one that fails is logged (the alarm on the metric is the
        channel that cannot be lost) and does not keep the others from hearing of it."""
        entry = FeedEntry(
            committed_at=now,
            event_id=notice.event_id,
            event_type=notice.event_type,
            post_id=None,
            document=published_document(notice).decode(),
        )
        try:
            append_in_time(self._feed(), [entry], self._clock)  # restamped at each append: the feed's settle holds
        except Exception:
            logger.exception("Could not add a disabled endpoint's notice to the feed", extra=keys)
        for publisher in self._publishers:
            try:
                failed = publisher.publish([notice]).failed
            except Exception:
                logger.exception("Could not publish a disabled endpoint's notice", extra=keys)
                continue
            for failure in failed.values():
                logger.error(
                    "Could not publish a disabled endpoint's notice",
                    extra={**keys, "target": publisher.target, "reason": failure.reason},
                )
