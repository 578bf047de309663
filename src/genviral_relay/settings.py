"""Function configuration: environment variables set by template.yaml, validated once per process.

Each function reads only what it needs. Nothing else in the functions reads `os.environ` (the
operations CLI, which is no function, reads the same variables in `cli/deployment.py`).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator, model_validator

from genviral_relay.clock import moment_from, utc_now
from genviral_relay.errors import ConfigurationError
from genviral_relay.models.domain import PublishChoice, Target, publish_targets
from genviral_relay.rules.endpoint_health import DEFAULT_DISABLE_AFTER_HOURS

NonEmpty = Annotated[str, Field(min_length=1)]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    table_name: NonEmpty = Field(alias="TABLE_NAME")
    stack_name: NonEmpty = Field(
        alias="STACK_NAME", description="Labels the metrics: one account may run several stacks."
    )


class _AccountChecking(_Settings):
    account_check_minutes: int = Field(
        default=15,
        ge=0,
        le=24 * 60,
        alias="ACCOUNT_CHECK_MINUTES",
        description="0: no account health checks (the poller asks for none, the checks' listings record none).",
    )


class PollerSettings(_AccountChecking):
    work_queue_url: NonEmpty = Field(alias="WORK_QUEUE_URL")
    watch_mode: Literal["registered", "discover"] = Field(alias="WATCH_MODE")
    poll_schedule: NonEmpty = Field(alias="POLL_SCHEDULE", description="The tick backpressure counts a pace in.")


class _Retention(_Settings):
    event_retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        alias="EVENT_RETENTION_DAYS",
        description="How long events, the feed and delivery records are kept.",
    )


class _Publishing(_Retention):
    """Where events go (the topic, the bus) and how long they are kept: the checks', and the delivery function's
    for its notices and records."""

    publish_targets: PublishChoice = Field(alias="PUBLISH_TARGETS")
    topic_arn: str = Field(default="", alias="TOPIC_ARN")
    event_bus_name: str = Field(default="", alias="EVENT_BUS_NAME")

    @property
    def targets(self) -> tuple[Target, ...]:
        return publish_targets(self.publish_targets, webhooks=False)

    @model_validator(mode="after")
    def _targets_have_destinations(self) -> _Publishing:
        if "sns" in self.targets and not self.topic_arn:
            raise ValueError("PUBLISH_TARGETS includes sns but TOPIC_ARN is empty")
        if "eventbridge" in self.targets and not self.event_bus_name:
            raise ValueError("PUBLISH_TARGETS includes eventbridge but EVENT_BUS_NAME is empty")
        return self


class CheckerSettings(_Publishing, _AccountChecking):
    """Everything a post check needs: all the HTTP API reads, and the base of the worker's settings."""

    genviral_secret_arn: NonEmpty = Field(alias="GENVIRAL_SECRET_ARN")
    genviral_api_url: HttpUrl = Field(alias="GENVIRAL_API_URL")
    events_dlq_url: NonEmpty = Field(alias="EVENTS_DLQ_URL")
    failed_retry_window_hours: int = Field(default=24, ge=0, le=24 * 30, alias="FAILED_RETRY_WINDOW_HOURS")
    delayed_after_minutes: int = Field(default=15, ge=0, le=7 * 24 * 60, alias="DELAYED_AFTER_MINUTES")
    poll_schedule: NonEmpty = Field(alias="POLL_SCHEDULE")
    webhook_fanout_queue_url: str = Field(
        default="", alias="WEBHOOK_FANOUT_QUEUE_URL", description="Empty: events are not owed to webhooks."
    )

    @property
    def targets(self) -> tuple[Target, ...]:
        return publish_targets(self.publish_targets, webhooks=bool(self.webhook_fanout_queue_url))


class WorkerSettings(CheckerSettings):
    """The checks' settings, plus the deployment-wide Genviral concurrency cap and discover mode's start."""

    genviral_max_concurrency: int = Field(ge=1, le=100, alias="GENVIRAL_MAX_CONCURRENCY")
    worker_max_invocations: int = Field(ge=1, le=1000, alias="WORKER_MAX_INVOCATIONS")
    discover_since: NonEmpty = Field(alias="DISCOVER_SINCE")

    @property
    def threads_per_worker(self) -> int:
        """Genviral requests one worker invocation makes at once, so that all of them stay within the cap."""
        return max(1, self.genviral_max_concurrency // self.worker_max_invocations)

    @field_validator("discover_since")
    @classmethod
    def _discover_since_is_a_moment(cls, value: str) -> str:
        moment_from(value, utc_now())  # raises a clear ValueError for a malformed value
        return value


class ApiSettings(CheckerSettings):
    """The checks' settings, plus what the webhook routes need: the delivery queue (the test route) and the
    URL rules."""

    webhook_delivery_queue_url: NonEmpty = Field(alias="WEBHOOK_DELIVERY_QUEUE_URL")
    allow_private_webhook_urls: bool = Field(alias="ALLOW_PRIVATE_WEBHOOK_URLS")
    webhook_secrets_key_arn: NonEmpty = Field(alias="WEBHOOK_SECRETS_KEY_ARN", description="Seals signing keys.")


class WebhookDispatcherSettings(_Retention):
    webhook_delivery_queue_url: NonEmpty = Field(alias="WEBHOOK_DELIVERY_QUEUE_URL")


class WebhookDeliverySettings(WebhookDispatcherSettings, _Publishing):
    """The attempts' settings, and where a disabled endpoint's notice goes (`targets`: the topic and the bus)."""

    webhook_dlq_url: NonEmpty = Field(alias="WEBHOOK_DLQ_URL")
    allow_private_webhook_urls: bool = Field(alias="ALLOW_PRIVATE_WEBHOOK_URLS")
    webhook_secrets_key_arn: NonEmpty = Field(alias="WEBHOOK_SECRETS_KEY_ARN", description="Opens signing keys.")
    webhook_disable_after_hours: int = Field(
        default=DEFAULT_DISABLE_AFTER_HOURS, ge=0, le=24 * 365, alias="WEBHOOK_DISABLE_AFTER_HOURS"
    )


SettingsT = TypeVar("SettingsT", bound=_Settings)


def _load(model: type[SettingsT]) -> SettingsT:
    try:
        return model.model_validate(dict(os.environ))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc']) or 'environment'}: {issue['msg']}"
            for issue in error.errors()
        )
        raise ConfigurationError(f"invalid function configuration: {problems}") from None


@cache
def poller_settings() -> PollerSettings:
    return _load(PollerSettings)


@cache
def checker_settings() -> CheckerSettings:
    return _load(CheckerSettings)


@cache
def worker_settings() -> WorkerSettings:
    return _load(WorkerSettings)


@cache
def api_settings() -> ApiSettings:
    return _load(ApiSettings)


@cache
def webhook_dispatcher_settings() -> WebhookDispatcherSettings:
    return _load(WebhookDispatcherSettings)


@cache
def webhook_delivery_settings() -> WebhookDeliverySettings:
    return _load(WebhookDeliverySettings)


def clear_settings_cache() -> None:
    for loader in (poller_settings, checker_settings, worker_settings, api_settings):
        loader.cache_clear()
    webhook_dispatcher_settings.cache_clear()
    webhook_delivery_settings.cache_clear()
