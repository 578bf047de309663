"""Registering webhook endpoints: create, read, edit, turn off and on, rotate a signing key, send a test, resend,
delete."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from genviral_relay.clock import Clock, format_ts
from genviral_relay.errors import (
    EndpointRefusedError,
    EnqueueError,
    MissedNotQueuedError,
    WebhookConflictError,
    WebhookDisabledError,
    WebhookNotFoundError,
    WebhookSecretError,
)
from genviral_relay.feed.ports import EventLog
from genviral_relay.models.webhook_api import CreateWebhookRequest, EditWebhookRequest
from genviral_relay.models.webhooks import (
    TEST_EVENT_TYPE,
    SigningSecret,
    WebhookDelivery,
    WebhookEndpoint,
    is_plaintext_secret,
    test_event_document,
)
from genviral_relay.observability import logger
from genviral_relay.rules.chat.formats import default_rate_limit, rate_limit_refusal, settled_format, url_format
from genviral_relay.rules.webhook_signing import new_secret
from genviral_relay.rules.webhook_urls import HostResolver, destination, encoded_url
from genviral_relay.webhooks.ports import DeliveryQueue, SecretBox, StoredEvents, WebhookStore
from genviral_relay.webhooks.resend import WebhookResend

ROTATION_OVERLAP = timedelta(hours=24)
"""How long a rotated-out key keeps signing beside the new one."""
MAX_ENDPOINTS = 100
"""Endpoints per deployment: the fan-out reads them all for each batch of events."""
EDIT_TRIES = 4
"""Reads and writes of one edit while other edits of the endpoint keep coming first (then 409 `conflict`)."""
OPERATOR_DISABLED = "disabled by an operator"


class WebhookRegistry:
    """What the HTTP API does with endpoints."""

    def __init__(
        self,
        *,
        store: WebhookStore,
        secrets: SecretBox,
        queue: DeliveryQueue,
        events: StoredEvents,
        feed: EventLog,
        resolver: HostResolver,
        clock: Clock,
        allow_private: bool,
        event_retention: timedelta,
        max_endpoints: int = MAX_ENDPOINTS,
    ) -> None:
        self._store = store
        self._secrets = secrets
        self._queue = queue
        self._events = events
        self._event_retention = event_retention
        self._resolver = resolver
        self._clock = clock
        self._allow_private = allow_private
        self._max_endpoints = max_endpoints
        self._clear_keys_sealed = False
        self.resend = WebhookResend(feed=feed, queue=queue, clock=clock, event_retention=event_retention)

    def create(self, request: CreateWebhookRequest) -> WebhookEndpoint:
        """Register an endpoint; UrlRefusedError when its URL may not receive webhooks, TooManyWebhooksError when the
        deployment has its most, WebhookExistsError when one has this URL and these event types."""
        self._seal_clear_keys()
        where = destination(request.url, self._resolver, allow_private=self._allow_private)
        written = request.format or url_format(request.url)
        paced = request.rate_limit if "rate_limit" in request.model_fields_set else default_rate_limit(written)
        _check_rate(written, paced)
        endpoint = WebhookEndpoint(
            id=f"wh_{uuid.uuid4().hex}",
            url=encoded_url(request.url),  # what is sent: a request line is ASCII
            event_types=tuple(request.event_types) if request.event_types is not None else None,
            description=request.description or None,
            created_at=self._clock(),
            secrets=(SigningSecret(value=new_secret()),),
            filter=request.filter,
            rate_limit=paced,
            format=written,
        )
        stored = endpoint.model_copy(update={"secrets": self._sealed(endpoint.id, endpoint.secrets)})
        self._store.create(stored, limit=self._max_endpoints)
        # The host only: some URLs are credentials themselves (a Slack incoming webhook's path is its key).
        logger.info(
            "Webhook endpoint registered",
            extra={"webhook_id": endpoint.id, "host": where.host, "format": written, "rate_limit": paced},
        )
        return endpoint

    def endpoints(self) -> list[WebhookEndpoint]:
        self._seal_clear_keys()
        return self._store.endpoints()

    def endpoint(self, webhook_id: str) -> WebhookEndpoint:
        self._seal_clear_keys()
        found = self._store.endpoint(webhook_id)
        if found is None:
            raise WebhookNotFoundError(webhook_id)
        return self._sealed_in_place(found)  # one a 0.4 function still running wrote after the sweep

    def edit(self, webhook_id: str, request: EditWebhookRequest) -> WebhookEndpoint:
        """Change the fields the request gives; the URL is checked as at registration. WebhookExistsError when another
        endpoint has the new URL and types; WebhookConflictError when other edits kept coming first."""
        changes = request.changes()
        if "url" in changes:
            where = destination(changes["url"], self._resolver, allow_private=self._allow_private)
            changes["url"] = encoded_url(changes["url"])
            logger.info("Webhook endpoint URL edited", extra={"webhook_id": webhook_id, "host": where.host})
        for _ in range(EDIT_TRIES):
            current = self.endpoint(webhook_id)
            settled = settled_format(current, changes)
            _check_rate(settled.get("format", current.format), settled.get("rate_limit", current.rate_limit))
            edited = current.model_copy(update=settled)
            if self._store.update(edited, previous=current):
                logger.info("Webhook endpoint edited", extra={"webhook_id": webhook_id, "fields": sorted(settled)})
                return edited
        raise WebhookConflictError(webhook_id)

    def enable(self, webhook_id: str, *, resend_missed: bool = False) -> tuple[WebhookEndpoint, int]:
        """Turn the endpoint on again (its failing clock restarts) and, asked to, resend what it missed while it
        was off: planned before anything changes (a resend over the limit is refused with the endpoint still off),
        queued only by the call that turned it on (two at once resend once)."""
        current = self.endpoint(webhook_id)
        since = self.resend.missed_since(current) if resend_missed else None
        missed = self.resend.planned(current, since, None, kept_only=True) if since is not None else []
        if not self._store.set_enabled(webhook_id, True, at=self._clock()):
            return self.endpoint(webhook_id), 0  # on already (or turned on by another call meanwhile)
        logger.info("Webhook endpoint enabled", extra={"webhook_id": webhook_id, "resending": len(missed)})
        try:
            queued = self.resend.queue(current, missed)
        except EnqueueError as error:
            # on now: enabling again would resend nothing, so the error names the range that a resend takes
            assert since is not None  # nothing to queue without it
            raise MissedNotQueuedError(str(error), webhook_id=webhook_id, since=format_ts(since)) from error
        return self.endpoint(webhook_id), queued

    def disable(self, webhook_id: str, reason: str | None = None) -> WebhookEndpoint:
        """Turn the endpoint off: nothing more is delivered to it (what is queued is dropped when its turn comes)."""
        if self._store.set_enabled(webhook_id, False, at=self._clock(), reason=reason or OPERATOR_DISABLED):
            logger.info("Webhook endpoint disabled", extra={"webhook_id": webhook_id})
        # WebhookNotFoundError when there is none (the switch writes nothing then); off already: as it was turned off
        return self.endpoint(webhook_id)

    def resend_one(self, webhook_id: str, event_id: str) -> int:
        return self.resend.one(self.endpoint(webhook_id), event_id)

    def resend_between(self, webhook_id: str, since: datetime, until: datetime | None) -> int:
        return self.resend.between(self.endpoint(webhook_id), since, until)

    def _seal_clear_keys(self) -> None:
        """Once per execution environment, before its first answer: seal every key 0.4 stored in the clear."""
        # shim: plaintext-webhook-secrets (docs/compatibility.md)
        if self._clear_keys_sealed:
            return
        left = [self._sealed_in_place(endpoint).keyed_in_clear for endpoint in self._store.plaintext_keyed()]
        self._clear_keys_sealed = not any(left)  # else the next request tries again

    def _sealed_in_place(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        """The endpoint with its 0.4 keys sealed, the same keys (the receiver holds them), written only while the
        table holds the keys read (a rotation meanwhile is kept). A key that cannot be sealed now (KMS refuses) stays
        in the clear, signing, and is sealed by a later request."""
        if not endpoint.keyed_in_clear:
            return endpoint
        try:
            sealed = self._sealed(endpoint.id, endpoint.secrets)
        except WebhookSecretError as error:  # its text names the endpoint and KMS's code, never a key
            logger.warning(
                "Webhook signing keys left in the clear", extra={"webhook_id": endpoint.id, "error": str(error)}
            )
            return endpoint
        if not self._store.replace_secrets(endpoint.id, sealed, replacing=endpoint.secrets):
            return endpoint  # rotated or deleted meanwhile: that write stands
        logger.info("Webhook signing keys sealed", extra={"webhook_id": endpoint.id, "signing_keys": len(sealed)})
        return endpoint.model_copy(update={"secrets": sealed})

    def delete(self, webhook_id: str) -> None:
        """Stop deliveries: the deliveries already queued find no endpoint and are dropped."""
        self._seal_clear_keys()
        if not self._store.delete(webhook_id):
            raise WebhookNotFoundError(webhook_id)
        logger.info("Webhook endpoint deleted", extra={"webhook_id": webhook_id})

    def rotate_secret(self, webhook_id: str) -> WebhookEndpoint:
        """A new key, first; the one it replaces signs beside it for ROTATION_OVERLAP (older ones keep their end)."""
        endpoint = self.endpoint(webhook_id)
        now = self._clock()
        ending = now + ROTATION_OVERLAP
        kept = [
            secret if secret.expires_at is not None else secret.model_copy(update={"expires_at": ending})
            for secret in endpoint.secrets
            if secret.live(now)
        ]
        secrets = (SigningSecret(value=new_secret()), *kept)
        # A 0.4 key kept in the clear is sealed by this write, as any key the relay writes.
        if not self._store.replace_secrets(webhook_id, self._sealed(webhook_id, secrets)):
            raise WebhookNotFoundError(webhook_id)
        logger.info("Webhook secret rotated", extra={"webhook_id": webhook_id, "signing_keys": len(secrets)})
        return endpoint.model_copy(update={"secrets": secrets})

    def _sealed(self, webhook_id: str, secrets: Sequence[SigningSecret]) -> tuple[SigningSecret, ...]:
        """The keys as the table keeps them: sealed for this endpoint (a sealed one is kept as it is)."""
        return tuple(
            secret.model_copy(update={"value": self._secrets.seal(webhook_id, secret.value)})
            if is_plaintext_secret(secret.value)
            else secret
            for secret in secrets
        )

    def send_test(self, webhook_id: str) -> WebhookDelivery:
        """Queue a `webhook.test` event for this endpoint alone, through the same attempts as any delivery: stored
        first (kept as long as events are), since a delivery is signed only from what the relay stored."""
        endpoint = self.endpoint(webhook_id)
        if not endpoint.enabled:  # its attempt would drop it unsent: refused here, as a resend is
            raise WebhookDisabledError(endpoint.id)
        now = self._clock()
        event_id = str(uuid.uuid4())
        document = test_event_document(endpoint.id, event_id, format_ts(now))
        self._events.store_test_event(endpoint.id, event_id, document, expires_at=now + self._event_retention)
        delivery = WebhookDelivery(
            webhook_id=endpoint.id, event_id=event_id, event_type=TEST_EVENT_TYPE, attempt=1, due_at=now,
            document=document,
        )  # fmt: skip
        if self._queue.send([delivery]):
            raise EnqueueError("the delivery queue did not take the test event")
        return delivery


def _check_rate(written: str, rate_limit: float | None) -> None:
    """A chat endpoint is paced within its service's published limit: faster would only collect 429s."""
    refusal = rate_limit_refusal(written, rate_limit)
    if refusal is not None:
        raise EndpointRefusedError(refusal)
