"""The one Logger and Metrics of the process, the name of every metric, and the correlation id.

Metric names are fixed here: template.yaml's alarms and dashboard refer to them (both are generated
from the spec in tools/monitoring.py, `make monitoring`), and tests/infra/test_alarms.py checks that
they agree. Every metric carries two dimensions: `service` (Powertools adds it) and `stack`, set
once per process from the function's settings, because one account can run several relays (one
stack per Genviral key) whose alarms must not see each other's figures. The log level still comes
from POWERTOOLS_LOG_LEVEL.

Variants with a small fixed set of values (transitions by status, Genviral errors by code) are
separate metric names, not a dimension: CloudWatch bills each name and dimension-value combination
as one metric, so the cost is the same, while all of an invocation's metrics stay in one EMF
document (a metric with its own dimension needs a document of its own) and every alarm names
exactly one series. Nothing with many values (post or account ids) is ever a dimension; those go
in the log lines.

Tracing comes from the function's `Tracing: Active` setting; the X-Ray SDK is not imported, to
keep cold starts short.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TextIO

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit, single_metric

from genviral_relay.errors import (
    GenviralAuthError,
    GenviralBadResponseError,
    GenviralContractError,
    GenviralError,
    GenviralRateLimitedError,
    GenviralServerError,
    GenviralSubscriptionRequiredError,
    GenviralTierNotAllowedError,
    GenviralUnavailableError,
    TokenUnavailableError,
)
from genviral_relay.workspace_scope import WORKSPACE_KEY, current_workspace, name_workspace

SERVICE = "genviral-relay"
METRICS_NAMESPACE = "GenviralRelay"
STACK_DIMENSION = "stack"
WORKSPACE_DIMENSION = WORKSPACE_KEY
CORRELATION_ID = "correlation_id"

logger = Logger(service=SERVICE)
logger.addFilter(name_workspace)  # every line of a workspace's work names it (`workspace_scope.py`)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)


@contextmanager
def logs_to(stream: TextIO, *, level: int | None = None) -> Iterator[None]:
    """For a while, write the relay's log lines to `stream`, only from `level` up (the operations CLI:
    to stderr, the local stack: to its log file). The handler otherwise keeps the stdout it was made with."""
    handler = logger.registered_handler
    saved_level = handler.level
    streaming = handler if isinstance(handler, logging.StreamHandler) else None
    saved_stream = streaming.setStream(stream) if streaming is not None else None
    if level is not None:
        handler.setLevel(level)
    try:
        yield
    finally:
        handler.setLevel(saved_level)
        if streaming is not None and saved_stream is not None:
            streaming.setStream(saved_stream)


class Metric(StrEnum):
    """Every metric the relay emits. Counts unless named in `SECONDS`."""

    # The poller
    POLLER_TICKS = "PollerTicks"  # ticks that ran to the end, paused ones included (the silence alarm)
    TICKS_PAUSED = "TicksPaused"  # ticks that queued nothing because Genviral refused the key
    CHECKS_QUEUED = "ChecksQueued"
    CHECKS_DEFERRED = "ChecksDeferred"  # due checks left for later ticks: the queue holds a tick's work already
    LONGEST_DEFERRAL = "LongestDeferral"  # seconds the longest-deferred due post has waited to be queued
    WORK_QUEUE_BACKLOG = "WorkQueueBacklog"  # messages waiting or in flight as a tick starts (a workspace: its share)
    WORKSPACE_TICK_FAILURES = "WorkspaceTickFailures"  # one workspace's tick raised; the others' ran
    # The checks (worker and API)
    POISON_MESSAGES = "PoisonMessages"
    UNKNOWN_WORKSPACE_MESSAGES = (
        "UnknownWorkspaceMessages"  # work of a workspace gone, or a post now another's: dropped
    )
    DUPLICATE_CHECK_REQUESTS = "DuplicateCheckRequests"
    DUPLICATE_CHECKS_SKIPPED = "DuplicateChecksSkipped"  # queued before a check that already ran: no Genviral call
    CHECK_CLAIMS = "CheckClaims"  # late checks that claimed their post (one conditional write each)
    WORK_QUEUE_AGE = "WorkQueueAge"  # seconds: the oldest check message of a batch, since it was queued
    CHECK_DELAY = "CheckDelay"  # seconds: from the tick that first wanted a check (deferred or queued) to the check
    POSTS_CHECKED = "PostsChecked"  # checks that asked Genviral for the post
    POSTS_UNCHANGED = "PostsUnchanged"
    POSTS_GONE = "PostsGone"  # Genviral answered 404: the watch ended
    CHECK_CONFLICTS = "CheckConflicts"
    CHECK_FAILURES = "CheckFailures"  # unexpected exceptions; the message returns to the queue
    RETRY_SWEEP_CHECKS = "RetrySweepChecks"
    BULK_REFRESH_CALLS = "BulkRefreshCalls"  # list calls that refreshed hot posts created together
    POSTS_REFRESHED = "PostsRefreshed"  # hot posts recorded from a list answer, no call of their own
    # Discover mode
    DISCOVER_LIST_CALLS = "DiscoverListCalls"
    DISCOVER_WINDOWS_UNSPLITTABLE = "DiscoverWindowsUnsplittable"  # over a page of posts within 1 ms
    POSTS_DISCOVERED = "PostsDiscovered"  # new posts watched, reported like registrations
    POSTS_BASELINED = "PostsBaselined"  # new posts created before DiscoverSince, recorded silently
    TRANSITIONS_POSTED = "TransitionsPosted"
    TRANSITIONS_FAILED = "TransitionsFailed"
    DELIVERIES_DELAYED = "DeliveriesDelayed"  # post.account.delayed events
    POSTS_COMPLETED = "PostsCompleted"  # post.completed events
    URLS_RESOLVED = "UrlsResolved"  # post.account.url_resolved events
    DETECTION_LAG = "DetectionLag"  # seconds from Genviral's change to its detection
    # Genviral refusing or failing a check, by code (after the client's own retries)
    GENVIRAL_ERRORS_401 = "GenviralErrors401"
    GENVIRAL_ERRORS_402 = "GenviralErrors402"
    GENVIRAL_ERRORS_403 = "GenviralErrors403"
    GENVIRAL_ERRORS_429 = "GenviralErrors429"
    GENVIRAL_ERRORS_5XX = "GenviralErrors5xx"
    GENVIRAL_ERRORS_UNREACHABLE = "GenviralErrorsUnreachable"  # timeouts, refused or reset connections
    GENVIRAL_ERRORS_BAD_RESPONSE = "GenviralErrorsBadResponse"  # non-JSON, truncated, unexpected status
    GENVIRAL_ERRORS_CONTRACT = "GenviralErrorsContract"  # a post that does not match the documented shape
    GENVIRAL_ERRORS_OTHER = "GenviralErrorsOther"
    SECRET_UNREADABLE = "SecretUnreadable"  # noqa: S105 - a metric name: the key could not be read
    GENVIRAL_PAUSES = "GenviralPauses"  # Genviral calls paused for a while after a refused key
    ACCOUNT_DIRECTORY_FAILURES = "AccountDirectoryFailures"  # GET /accounts (or the directory item) failed
    ACCOUNTS_DISCONNECTED = "AccountsDisconnected"  # account.disconnected notices (an account watched posts target)
    ACCOUNTS_RECONNECTED = "AccountsReconnected"  # account.reconnected notices
    # Publishing
    EVENTS_PUBLISHED = "EventsPublished"
    PUBLISH_FAILURES = "PublishFailures"  # an event a target did not take (retried later or parked)
    EVENTS_DEAD_LETTERED = "EventsDeadLettered"
    OUTBOX_ENTRIES_EXPIRED = "OutboxEntriesExpired"
    PENDING_OUTBOX_AGE = "PendingOutboxAge"  # seconds: the oldest outbox entry found by a check
    # Webhooks
    WEBHOOK_DELIVERIES_QUEUED = "WebhookDeliveriesQueued"  # one per event and matching endpoint (the fan-out)
    WEBHOOK_DELIVERIES = "WebhookDeliveries"  # attempts an endpoint accepted (2xx)
    WEBHOOK_DELIVERY_FAILURES = "WebhookDeliveryFailures"  # attempts that failed (retried later or parked)
    WEBHOOK_DELIVERIES_DEAD_LETTERED = "WebhookDeliveriesDeadLettered"  # retries ran out: parked in WebhookDLQ
    WEBHOOK_FAILING_AGE = "WebhookFailingAge"  # seconds an endpoint has been failing (0 once it succeeds)
    WEBHOOK_MESSAGES_REJECTED = "WebhookMessagesRejected"  # delivery messages naming no stored event: never signed
    WEBHOOK_ENDPOINTS_DISABLED = "WebhookEndpointsDisabled"  # endpoints turned off for failing too long (once each)

    @property
    def unit(self) -> MetricUnit:
        return MetricUnit.Seconds if self in SECONDS else MetricUnit.Count


SECONDS = frozenset(
    {
        Metric.DETECTION_LAG,
        Metric.PENDING_OUTBOX_AGE,
        Metric.WEBHOOK_FAILING_AGE,
        Metric.LONGEST_DEFERRAL,
        Metric.WORK_QUEUE_AGE,
        Metric.CHECK_DELAY,
    }
)


# Most specific first: TokenUnavailableError is a GenviralConfigError like the 401/402/403 ones.
_GENVIRAL_ERROR_METRICS: tuple[tuple[type[GenviralError], Metric], ...] = (
    (TokenUnavailableError, Metric.SECRET_UNREADABLE),
    (GenviralAuthError, Metric.GENVIRAL_ERRORS_401),
    (GenviralSubscriptionRequiredError, Metric.GENVIRAL_ERRORS_402),
    (GenviralTierNotAllowedError, Metric.GENVIRAL_ERRORS_403),
    (GenviralRateLimitedError, Metric.GENVIRAL_ERRORS_429),
    (GenviralServerError, Metric.GENVIRAL_ERRORS_5XX),
    (GenviralUnavailableError, Metric.GENVIRAL_ERRORS_UNREACHABLE),
    (GenviralBadResponseError, Metric.GENVIRAL_ERRORS_BAD_RESPONSE),
    (GenviralContractError, Metric.GENVIRAL_ERRORS_CONTRACT),
)


def genviral_error_metric(error: GenviralError) -> Metric:
    return next(
        (metric for kind, metric in _GENVIRAL_ERROR_METRICS if isinstance(error, kind)), Metric.GENVIRAL_ERRORS_OTHER
    )


BY_WORKSPACE = frozenset(
    {
        Metric.TICKS_PAUSED,
        Metric.CHECKS_QUEUED,
        Metric.POSTS_CHECKED,
        Metric.CHECK_FAILURES,
        Metric.TRANSITIONS_POSTED,
        Metric.GENVIRAL_PAUSES,
        Metric.WORKSPACE_TICK_FAILURES,
        Metric.UNKNOWN_WORKSPACE_MESSAGES,
        *(metric for _, metric in _GENVIRAL_ERROR_METRICS),
        Metric.GENVIRAL_ERRORS_OTHER,
    }
)
"""What an operator of several workspaces must tell apart (errors, pauses, checks): written a second time with a
`workspace` dimension. Alarms stay on the stack-wide series, so a workspace costs no alarm of its own."""
_by_workspace: dict[str, EphemeralMetrics] = {}
_by_workspace_lock = threading.Lock()


def emit(metric: Metric, value: float = 1) -> None:
    """Add to this invocation's metrics (written as one EMF document when the handler returns), and to its
    workspace's (`workspace_scope.working_for`)."""
    metrics.add_metric(name=metric.value, unit=metric.unit, value=value)
    workspace = current_workspace()
    if workspace is not None and metric in BY_WORKSPACE:
        with _by_workspace_lock:
            kept = _by_workspace.get(workspace)
            if kept is None:
                kept = _by_workspace[workspace] = EphemeralMetrics(namespace=METRICS_NAMESPACE, service=SERVICE)
                kept.set_default_dimensions(**metrics.default_dimensions, **{WORKSPACE_DIMENSION: workspace})
            kept.add_metric(name=metric.value, unit=metric.unit, value=value)


def flush_workspace_metrics() -> None:
    """Write each workspace's figures of the invocation as one EMF document (the handlers, as they return)."""
    for workspace in clear_workspace_metrics():
        workspace.flush_metrics()


def clear_workspace_metrics() -> list[EphemeralMetrics]:
    """Forget each workspace's figures (answered, to be written)."""
    with _by_workspace_lock:
        kept = list(_by_workspace.values())
        _by_workspace.clear()
    return kept


def emit_now(metric: Metric, value: float = 1) -> None:
    """Write `metric` as an EMF document of its own at once: for a figure an alarm must hear of even when the
    process dies before the handler returns (the invocation's other metrics are flushed only then)."""
    dimensions = {"service": SERVICE, **metrics.default_dimensions}
    with single_metric(
        name=metric.value, unit=metric.unit, value=value, namespace=METRICS_NAMESPACE, default_dimensions=dimensions
    ):
        pass


def label_stack(stack_name: str) -> None:
    """Give every metric of this process the stack's name as a dimension (it outlives `clear_metrics`)."""
    if metrics.default_dimensions.get(STACK_DIMENSION) != stack_name:  # Powertools warns about a re-set
        metrics.set_default_dimensions(**{STACK_DIMENSION: stack_name})


@contextmanager
def correlated(correlation_id: str | None) -> Iterator[None]:
    """Tag this thread's log lines with `correlation_id`: a worker checks posts queued by several ticks,
    on several threads, so the id is per thread, over the invocation-wide one."""
    if correlation_id is None:
        yield
        return
    logger.thread_safe_append_keys(**{CORRELATION_ID: correlation_id})
    try:
        yield
    finally:
        logger.thread_safe_remove_keys([CORRELATION_ID])


__all__ = [
    "Metric",
    "MetricUnit",
    "clear_workspace_metrics",
    "correlated",
    "emit",
    "emit_now",
    "flush_workspace_metrics",
    "genviral_error_metric",
    "label_stack",
    "logger",
    "logs_to",
    "metrics",
]
