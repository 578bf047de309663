"""The relay's error hierarchy. Adapters translate SDK and HTTP failures into these; nothing else leaks up."""

from __future__ import annotations

ECHO_LIMIT = 500
"""The most characters of someone else's text (Genviral's error messages) the relay repeats."""


def echoed(text: str, limit: int = ECHO_LIMIT) -> str:
    """Someone else's text as the relay repeats it in errors, log lines, API answers and the CLI's output: at most
    `limit` characters, cut with an ellipsis (a 1.5 MB message must not become a 1.5 MB log line or answer)."""
    return text if len(text) <= limit else text[: limit - 1] + "\N{HORIZONTAL ELLIPSIS}"


class RelayError(Exception):
    """Base of every error the relay raises on purpose."""


class ConfigurationError(RelayError):
    """The deployment is misconfigured (environment, secret): no retry will help until someone fixes it."""


class GenviralError(RelayError):
    """Any failed call to the Genviral Partner API. `transient` errors are worth a later retry."""

    transient = False

    def __init__(self, message: str, *, status: int | None = None, error_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class GenviralConfigError(GenviralError):
    """The key cannot use the API (401 after a fresh token, 402, 403): stop calling until it is fixed."""


class TokenUnavailableError(GenviralConfigError):
    """The Genviral token could not be read from Secrets Manager (missing, unreadable, malformed).

    `summary` is the relay's own words, fit to publish (every workspace's `relay.paused` carries it); `problem` the
    operator's words, which may name workspaces (never a key): for the log line, the registry and the CLI (by
    default the summary); `aws_error_code` the SDK's code when the read failed (`AccessDeniedException`). The text
    (`str`) is the problem, and may add the SDK's message, which names the account, the role and the secret's ARN:
    for logs and the operator's CLI only."""

    def __init__(
        self,
        summary: str,
        *,
        aws_error_code: str | None = None,
        detail: str | None = None,
        problem: str | None = None,
    ) -> None:
        text = problem or summary
        super().__init__(f"{text}: {detail}" if detail else text)
        self.summary = summary
        self.problem = text
        self.aws_error_code = aws_error_code


class GenviralAuthError(GenviralConfigError):
    """401: the token is missing, invalid or revoked, even after re-reading the secret."""


class GenviralSubscriptionRequiredError(GenviralConfigError):
    """402 `subscription_required`: the workspace has no plan that includes the Partner API."""


class GenviralTierNotAllowedError(GenviralConfigError):
    """403 `tier_not_allowed`: the plan's tier cannot use the Partner API."""


class GenviralNotFoundError(GenviralError):
    """404 `not_found`: the post does not exist in the key's scope (deleted, or never there)."""


class GenviralRateLimitedError(GenviralError):
    """429: too many requests; `retry_after` is the server's hint in seconds, when it gave a usable one."""

    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, status=429, error_code="rate_limited")
        self.retry_after = retry_after


class GenviralServerError(GenviralError):
    """500 `get_failed` or another 5xx answer."""

    transient = True


class GenviralUnavailableError(GenviralError):
    """No answer: connection refused or reset, or a timeout."""

    transient = True


class GenviralBadResponseError(GenviralError):
    """An answer that is not a Genviral envelope: non-JSON, truncated, `ok: false` with a 2xx, unexpected status."""

    transient = True


class GenviralContractError(GenviralError):
    """A well-formed envelope whose post does not match the documented shape: skip the post, keep its state."""


class StateConflictError(RelayError):
    """Another check committed this watch first (optimistic lock lost)."""


class FeedLateError(RelayError):
    """Feed entries kept answering later than the commit window: they stay owed to the feed (the outbox's entry)."""


class EventNotFoundError(RelayError):
    """The feed keeps no event with this id (never published, past its retention, or published before 0.5)."""


class CursorExpiredError(RelayError):
    """A cursor older than the feed's retention; the error's text names the oldest position kept."""


class DeadLetterError(RelayError):
    """An event could not be parked in the dead-letter queue."""


class WatchNotFoundError(RelayError):
    """The post is not watched."""


class OutboxNotEmptyError(RelayError):
    """A watch cannot be forgotten while some of its events are still unpublished."""


class EnqueueError(RelayError):
    """Some work requests could not be queued."""


class MissedNotQueuedError(EnqueueError):
    """An enable turned the endpoint on but SQS refused some of what it missed: enabling again finds it on and
    resends nothing, so the error carries the range to resend (`since`, an ISO-8601 timestamp)."""

    def __init__(self, message: str, *, webhook_id: str, since: str) -> None:
        super().__init__(message)
        self.webhook_id = webhook_id
        self.since = since


class WebhookNotFoundError(RelayError):
    """No webhook endpoint has this id (never registered, or deleted)."""


class TooManyWebhooksError(RelayError):
    """A registration over the deployment's limit of endpoints."""


class WebhookExistsError(RelayError):
    """A registration of a URL and event types an endpoint already has; the error's text is that endpoint's id."""


class WebhookConflictError(RelayError):
    """An endpoint kept changing while an edit was written (other edits came first each time); the text is its id."""


class WebhookDisabledError(RelayError):
    """A resend or a test to a disabled endpoint: enable it first. The text is its id."""


class ResendRefusedError(RelayError):
    """A resend that is not made (answered 400): the text says why and how to change it."""


class EndpointRefusedError(RelayError):
    """A registration or edit the endpoint's format cannot take (answered 400): the text says why and what to give."""


class WebhookSecretError(ConfigurationError):
    """A signing key could not be sealed or opened with the KMS key (access refused, a key disabled or gone, a
    sealed key that is not this endpoint's)."""
