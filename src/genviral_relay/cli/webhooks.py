"""`webhooks list|show|resend|enable|disable`: the webhook endpoints of a deployment, with the semantics of the
HTTP API (the same use cases, on the deployment's table and delivery queue)."""

from __future__ import annotations

import argparse
from typing import Any

from genviral_relay.cli.deployment import Deployment
from genviral_relay.cli.deployment_settings import STORE_READS
from genviral_relay.cli.output import CliError, Console, PartlyDone
from genviral_relay.clock import format_ts_or_none, utc_now
from genviral_relay.errors import (
    EnqueueError,
    EventNotFoundError,
    MissedNotQueuedError,
    ResendRefusedError,
    WebhookDisabledError,
    WebhookNotFoundError,
    WebhookSecretError,
)
from genviral_relay.models.endpoint_notices import url_host
from genviral_relay.models.feed_api import EVENT_ID_HINT
from genviral_relay.models.webhook_api import WebhookDetail, WebhookView
from genviral_relay.models.webhooks import WEBHOOK_ID_HINT, WebhookEndpoint, WebhookId, webhook_not_found
from genviral_relay.webhook_factories import (
    build_delivery_queue,
    build_event_log,
    build_stored_events,
    build_webhook_store,
)
from genviral_relay.webhooks.ports import SecretBox
from genviral_relay.webhooks.registry import WebhookRegistry

READ_READS = STORE_READS
CHANGE_READS = (*STORE_READS, "webhook_delivery_queue_url")
"""What a change reads: the table, the retention (resend's bound) and the delivery queue (resends)."""


class _NoSealing(SecretBox):
    """The CLI holds no KMS key: a key 0.4 stored in the clear stays so (and signing) until the API seals it."""

    def seal(self, webhook_id: str, secret: str) -> str:
        raise WebhookSecretError(f"the CLI seals no signing key ({webhook_id}); the API does")

    def open(self, webhook_id: str, sealed: str) -> str:
        raise WebhookSecretError(f"the CLI opens no signing key ({webhook_id})")


def webhook_id(value: str) -> str:
    from pydantic import TypeAdapter, ValidationError

    try:
        return str(TypeAdapter(WebhookId).validate_python(value))
    except ValidationError:
        raise argparse.ArgumentTypeError(WEBHOOK_ID_HINT) from None


def _registry(deployment: Deployment, *, changes: bool) -> WebhookRegistry:
    from genviral_relay.receivers.sender import SystemResolver

    table = deployment.require("table")
    retention = deployment.event_retention()
    queue_url = deployment.require("webhook_delivery_queue_url") if changes else ""
    return WebhookRegistry(
        store=build_webhook_store(table, client=deployment.client),
        secrets=_NoSealing(),
        queue=build_delivery_queue(queue_url, "", client=deployment.client),
        events=build_stored_events(table, client=deployment.client),
        feed=build_event_log(table, retention, client=deployment.client),
        resolver=SystemResolver(),  # no command here edits a URL
        clock=utc_now,
        allow_private=False,
        event_retention=retention,
    )


def _endpoint(registry: WebhookRegistry, webhook_id: str) -> WebhookEndpoint:
    try:
        return registry.endpoint(webhook_id)
    except WebhookNotFoundError:
        raise CliError(webhook_not_found(webhook_id), kind="not_found") from None


def _host(url: str) -> str:
    return url_host(url) or "-"  # the host only: a URL's path may be a credential


def run_list(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    endpoints = _registry(deployment, changes=False).endpoints()
    console.result({"webhooks": [WebhookView.of(endpoint).model_dump(mode="json") for endpoint in endpoints]})
    rows = [["ID", "HOST", "STATE", "TYPES", "FAILING SINCE"]]
    for endpoint in endpoints:
        state = "enabled" if endpoint.enabled else f"disabled ({endpoint.disabled_reason})"
        types = ",".join(endpoint.event_types) if endpoint.event_types is not None else "all"
        failing = format_ts_or_none(endpoint.health.failing_since) or "-"
        rows.append([endpoint.id, _host(endpoint.url), state, types, failing])
    console.table(rows)
    console.say(f"{len(endpoints)} endpoint(s)")
    return 0


def run_show(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    detail = WebhookDetail.of(_endpoint(_registry(deployment, changes=False), args.webhook_id))
    shown = detail.model_dump(mode="json")
    console.result(shown)
    for name, value in shown.items():
        if name == "url":
            console.say(f"host: {_host(value)}")  # as `list`: a URL's path may be a credential
        elif name != "delivery":
            console.say(f"{name}: {_text(value)}")
    for name, value in shown["delivery"].items():
        console.say(f"delivery.{name}: {_text(value)}")
    return 0


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key}={_text(item)}" for key, item in value.items() if item is not None) or "-"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return "-" if value is None else str(value)


def run_resend(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    registry = _registry(deployment, changes=True)
    endpoint = _endpoint(registry, args.webhook_id)
    try:
        if args.event_id is not None:
            console.confirm(f"Resend event {args.event_id} to {endpoint.id} ({_host(endpoint.url)})?",
                            assume_yes=args.yes)  # fmt: skip
            queued = registry.resend.one(endpoint, args.event_id)
        else:
            if not endpoint.enabled:
                raise WebhookDisabledError(endpoint.id)
            planned = registry.resend.planned(endpoint, args.since, args.until)
            if not planned:
                raise CliError("no event the endpoint takes was committed in that range", kind="not_found")
            console.confirm(f"Resend {len(planned)} event(s) to {endpoint.id} ({_host(endpoint.url)})?",
                            assume_yes=args.yes)  # fmt: skip
            queued = registry.resend.queue(endpoint, planned)
    except (WebhookDisabledError, ResendRefusedError, EventNotFoundError, EnqueueError) as error:
        raise _cli_error(error) from None
    console.result({"webhook_id": endpoint.id, "queued": queued})
    console.say(f"{endpoint.id}: {queued} delivery(ies) queued (attempt 1, the whole retry schedule)")
    return 0


def run_enable(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    registry = _registry(deployment, changes=args.resend_missed)
    endpoint = _endpoint(registry, args.webhook_id)
    try:
        if args.resend_missed:
            missed = registry.resend.missed(endpoint)  # refused over the limit before anything is asked
            console.confirm(f"Enable {endpoint.id} ({_host(endpoint.url)}) and resend the {len(missed)} event(s) "
                            "it missed?", assume_yes=args.yes)  # fmt: skip
        enabled, queued = registry.enable(endpoint.id, resend_missed=args.resend_missed)
    except (ResendRefusedError, EnqueueError) as error:
        raise _cli_error(error) from None
    except WebhookNotFoundError:
        raise CliError(webhook_not_found(endpoint.id), kind="not_found") from None
    console.result({"webhook": WebhookDetail.of(enabled).model_dump(mode="json"), "queued": queued})
    console.say(f"{enabled.id}: enabled" + (f", {queued} missed delivery(ies) queued" if args.resend_missed else ""))
    return 0


def run_disable(args: argparse.Namespace, deployment: Deployment, console: Console) -> int:
    registry = _registry(deployment, changes=False)
    endpoint = _endpoint(registry, args.webhook_id)
    console.confirm(f"Disable {endpoint.id} ({_host(endpoint.url)})? Nothing is delivered to it until it is "
                    "enabled again", assume_yes=args.yes)  # fmt: skip
    try:
        disabled = registry.disable(endpoint.id, args.reason)
    except WebhookNotFoundError:
        raise CliError(webhook_not_found(endpoint.id), kind="not_found") from None
    console.result(WebhookDetail.of(disabled).model_dump(mode="json"))
    console.say(f"{disabled.id}: disabled ({disabled.disabled_reason})")
    return 0


def _cli_error(error: Exception) -> CliError:
    """The use cases' refusals in the CLI's words and exit codes."""
    if isinstance(error, WebhookDisabledError):
        return CliError(f"webhook endpoint {error} is disabled; enable it first (webhooks enable)", kind="conflict")
    if isinstance(error, EventNotFoundError):
        return CliError(f"no event {error} is kept; {EVENT_ID_HINT}", kind="not_found")
    if isinstance(error, MissedNotQueuedError):
        return PartlyDone(f"{error}; the endpoint is on now: resend what it missed with "
                          f"webhooks resend {error.webhook_id} --since {error.since}")  # fmt: skip
    if isinstance(error, EnqueueError):
        return PartlyDone(f"{error}; run the command again (receivers dedupe on webhook-id)")
    return CliError(str(error))
