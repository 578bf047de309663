"""Where the deployment is, and the relay's own building blocks pointed at it.

Each value comes from its option, the stack or the environment (`cli/deployment_settings.py`).
Nothing is looked up before a command needs it, so `check` with `GENVIRAL_TOKEN` set works without
any AWS resource.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from genviral_relay.checking.answer import CheckPreview
from genviral_relay.checking.ports import EventPublisher, TokenSource, WorkspaceKeys
from genviral_relay.cli.deployment_settings import BY_KEY, STACK_ENV, Setting
from genviral_relay.cli.output import CliError
from genviral_relay.clock import utc_now
from genviral_relay.factories import (
    aws_client_config,
    build_genviral_client,
    build_publishers,
    build_relay,
    build_store,
    build_workspace_keys,
)
from genviral_relay.genviral.client import StaticToken
from genviral_relay.models.domain import PUBLISH_TARGETS, Target, publish_targets
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE, stored_workspace
from genviral_relay.relay import Relay, polling_policy
from genviral_relay.rules.schedule import PollingPolicy
from genviral_relay.rules.webhook_retries import events_kept_for
from genviral_relay.settings import CheckerSettings

if TYPE_CHECKING:
    from genviral_relay.aws.dynamodb_store import DynamoDbStore
    from genviral_relay.genviral.client import GenviralClient

DEFAULT_GENVIRAL_API_URL = "https://www.genviral.io/api/partner/v1"
"""The template's default of `GenviralApiUrl` (tests/infra checks they agree)."""
TOKEN_ENV = "GENVIRAL_TOKEN"  # noqa: S105 - the variable's name


class Deployment:
    """The deployment a command works on, resolved lazily from options, stack and environment."""

    def __init__(self, options: argparse.Namespace, environ: Mapping[str, str] | None = None) -> None:
        self._options = options
        self._environ = dict(os.environ if environ is None else environ)
        self._clients: dict[str, Any] = {}
        self.read: set[str] = set()
        """The settings looked up so far (a command declares those it may read)."""

    # ---------------------------------------------------------------- values
    @property
    def options(self) -> argparse.Namespace:
        return self._options

    def _option(self, key: str) -> str | None:
        self.read.add(BY_KEY[key].key)  # KeyError for a key that is no setting
        explicit = getattr(self._options, key, None)
        return str(explicit) if explicit else None

    def value(self, key: str) -> str | None:
        setting = BY_KEY[key]
        explicit = self._option(key)
        if explicit:
            return str(explicit)
        from_stack = self._from_stack(setting)
        if from_stack:
            return from_stack
        return self._environ.get(setting.env) or None

    def require(self, key: str) -> str:
        found = self.value(key)
        if found is None:
            setting = BY_KEY[key]
            ways = [f"set {setting.env}"]
            if setting.option:
                ways.insert(0, f"pass {setting.option}")
            if setting.output or setting.parameter:
                ways.append("name the stack with --stack-name")
            raise CliError(f"{setting.what} is not known: {', '.join(ways[:-1])} or {ways[-1]}", kind="not_configured")
        return found

    def _integer(self, key: str) -> int | None:
        text = self.value(key)
        if text is None:
            return None
        try:
            return int(text)
        except ValueError:
            raise CliError(f"{BY_KEY[key].env} must be a whole number, not {text!r}", kind="not_configured") from None

    @property
    def stack_name(self) -> str | None:
        return getattr(self._options, "stack_name", None) or self._environ.get(STACK_ENV) or None

    def _from_stack(self, setting: Setting) -> str | None:
        if self.stack_name is None:
            return None
        outputs, parameters = self._stack
        if setting.output is not None:
            return outputs.get(setting.output)
        if setting.parameter is not None:
            return parameters.get(setting.parameter)
        return None

    @cached_property
    def _stack(self) -> tuple[dict[str, str], dict[str, str]]:
        """The stack's (outputs, parameters)."""
        answer = self.client("cloudformation").describe_stacks(StackName=self.stack_name)
        (stack,) = answer["Stacks"]
        outputs = {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}
        parameters = {item["ParameterKey"]: item["ParameterValue"] for item in stack.get("Parameters", [])}
        return outputs, parameters

    def stack_resource(self, logical_id: str) -> str | None:
        """The physical id of one of the stack's resources, or None without a stack."""
        if self.stack_name is None:
            return None
        answer = self.client("cloudformation").describe_stack_resource(
            StackName=self.stack_name, LogicalResourceId=logical_id
        )
        return str(answer["StackResourceDetail"]["PhysicalResourceId"])

    # ---------------------------------------------------------------- building blocks
    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3

            session = boto3.session.Session(
                profile_name=getattr(self._options, "profile", None), region_name=getattr(self._options, "region", None)
            )
            self._clients[service] = session.client(service, config=aws_client_config())  # type: ignore[call-overload]
        return self._clients[service]

    def configured_targets(self, *, webhooks: bool = False) -> tuple[Target, ...]:
        """Where the deployment publishes: its PublishTargets, else wherever a destination is known; with
        `webhooks`, also its webhooks' fan-out queue when one is set (as the functions do)."""
        fanout = webhooks and self.value("webhook_fanout_queue_url") is not None
        configured = self.value("publish_targets")
        if configured is None:
            destinations: dict[Target, str] = {"sns": "topic_arn", "eventbridge": "event_bus"}
            known = [target for target in PUBLISH_TARGETS if self.value(destinations[target])]
            if not known:
                raise CliError(
                    "no publish target is known: pass --stack-name, or --topic-arn and/or --event-bus",
                    kind="not_configured",
                )
            configured = "both" if len(known) > 1 else known[0]
        try:
            return publish_targets(configured, webhooks=fanout)
        except ValueError as error:
            raise CliError(f"{BY_KEY['publish_targets'].env} {error}", kind="not_configured") from None

    def publishers(self, targets: tuple[Target, ...]) -> list[EventPublisher]:
        return build_publishers(
            targets,
            topic_arn=self.require("topic_arn") if "sns" in targets else "",
            event_bus_name=self.require("event_bus") if "eventbridge" in targets else "",
            webhook_fanout_queue_url=self.require("webhook_fanout_queue_url") if "webhooks" in targets else "",
            client=self.client,
        )

    def event_retention(self) -> timedelta:
        """How long the deployment keeps events (and the feed)."""
        days = self._integer("event_retention_days") or CheckerSettings.model_fields["event_retention_days"].default
        return events_kept_for(days)

    def store(self) -> DynamoDbStore:
        return build_store(self.require("table"), self.event_retention(), client=self.client)

    def policy(self) -> PollingPolicy:
        return polling_policy(
            self.value("poll_schedule"),
            self._integer("failed_retry_window_hours"),
            self._integer("delayed_after_minutes"),
        )

    def own_token(self) -> str | None:
        """GENVIRAL_TOKEN when it is the key used (no --secret-arn): not the deployment's key."""
        token = self._environ.get(TOKEN_ENV, "").strip()
        return token if token and not self._option("secret_arn") else None

    def workspace_keys(self) -> WorkspaceKeys:
        """The keys of the deployment's workspaces, from --secret-arn or the deployment's secret."""
        secret_arn = self.value("secret_arn")
        if secret_arn is None:
            raise CliError(
                f"no Genviral key: set {TOKEN_ENV}, pass --secret-arn, set {BY_KEY['secret_arn'].env} "
                "or name the stack with --stack-name",
                kind="not_configured",
            )
        return build_workspace_keys(secret_arn, client=self.client)

    def token_source(self, workspace: str = DEFAULT_WORKSPACE) -> TokenSource:
        """The Genviral key: GENVIRAL_TOKEN (unless --secret-arn), else `workspace`'s in the deployment's secret."""
        token = self.own_token()
        if token is not None:
            return StaticToken(token)
        return self.workspace_keys().token_source(workspace)

    def workspace(self, given: str | None, *, watched_in: str | None = None) -> str:
        """The workspace a command acts in: --workspace, else the one the post is watched in, else the secret's only
        one. With a key of the operator's own (GENVIRAL_TOKEN) its workspace is the one they name (or `default`)."""
        if watched_in is not None and given not in (None, watched_in):
            raise CliError(f"the post is watched in workspace {watched_in}, not {given}", kind="conflict")
        chosen = given or watched_in
        if self.own_token() is not None:
            return chosen or DEFAULT_WORKSPACE
        known = self.workspace_keys().names()  # a bad secret: TokenUnavailableError, its summary never a key
        if chosen is None and len(known) == 1:
            return known[0]
        if chosen is None:
            raise CliError(f"the deployment has workspaces {', '.join(known)}: name one with --workspace", kind="usage")
        if chosen not in known:
            raise CliError(
                f"the deployment's secret names no workspace {chosen} (it names {', '.join(known)})", kind="not_found"
            )
        return chosen

    def genviral(self, workspace: str = DEFAULT_WORKSPACE) -> GenviralClient:
        """The Genviral client; its key is looked up on its first call (removing a watch needs none)."""
        return build_genviral_client(
            self.value("api_url") or DEFAULT_GENVIRAL_API_URL, DeferredToken(lambda: self.token_source(workspace))
        )

    def check_preview(self, workspace: str = DEFAULT_WORKSPACE) -> CheckPreview:
        """A look at a post with `workspace`'s key that records nothing: against its stored watch when the table is
        known."""
        store = self.store() if self.value("table") is not None else None
        return CheckPreview(
            source=self.genviral(workspace),
            policy=self.policy(),
            clock=utc_now,
            store=store,
            workspace=stored_workspace(workspace),
        )

    def relay(self, *, genviral: GenviralClient | None = None, workspace: str = DEFAULT_WORKSPACE) -> Relay:
        """The relay's own check path for `workspace`, on this deployment's resources and its publish targets."""
        targets = self.configured_targets(webhooks=True)
        return build_relay(
            store=self.store().in_workspace(workspace),
            source=genviral or self.genviral(workspace),
            targets=targets,
            topic_arn=self.require("topic_arn") if "sns" in targets else "",
            event_bus_name=self.require("event_bus") if "eventbridge" in targets else "",
            events_dlq_url=self.require("events_dlq_url"),
            policy=self.policy(),
            webhook_fanout_queue_url=self.require("webhook_fanout_queue_url") if "webhooks" in targets else "",
            client=self.client,
            # Another key's refusal or answer says nothing of the deployment's: its pause is only read.
            deployment_key=self.own_token() is None,
            workspace=workspace,
        )


class DeferredToken(TokenSource):
    def __init__(self, resolve: Callable[[], TokenSource]) -> None:
        self._resolve = resolve
        self._source: TokenSource | None = None

    def token(self, *, refresh: bool = False) -> str:
        if self._source is None:
            self._source = self._resolve()
        return self._source.token(refresh=refresh)
