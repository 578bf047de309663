"""`GenviralClient` over real loopback HTTP against the Genviral emulator.

No test sleeps for real: the client's `sleep` is a recorder. Only read timeouts cost wall time (0.3 s each).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests

from genviral_relay.deadlines import Deadline, calls_until
from genviral_relay.errors import (
    ECHO_LIMIT,
    GenviralAuthError,
    GenviralBadResponseError,
    GenviralConfigError,
    GenviralContractError,
    GenviralError,
    GenviralNotFoundError,
    GenviralRateLimitedError,
    GenviralServerError,
    GenviralSubscriptionRequiredError,
    GenviralTierNotAllowedError,
    GenviralUnavailableError,
)
from genviral_relay.genviral import client as client_module
from genviral_relay.genviral.client import (
    ClientSettings,
    GenviralClient,
    TokenSource,
    build_session,
    parse_retry_after,
)
from genviral_relay.models.upstream import Post, VideoMedia
from genviral_relay.observability import logger as relay_logger
from local.emulator import DEFAULT_WORKSPACE_ID, Fault, GenviralEmulator
from tests.conftest import TOKEN

NOW = datetime(2025, 2, 1, 15, 0, tzinfo=UTC)
ROTATED = "gva_live_test.rotated-fedcba9876543210"
STALE = "gva_live_test.stale-0000000000000000"
DEFAULTS = ClientSettings(read_timeout=2.0)


class FakeTokens(TokenSource):
    """Returns `tokens[0]` until a refresh, then the next token in the sequence (the last one sticks)."""

    def __init__(self, *tokens: str) -> None:
        self._tokens = list(tokens) or [TOKEN]
        self._index = 0
        self.plain_calls = 0
        self.refresh_calls = 0

    def token(self, *, refresh: bool = False) -> str:
        if refresh:
            self.refresh_calls += 1
            self._index = min(self._index + 1, len(self._tokens) - 1)
        else:
            self.plain_calls += 1
        return self._tokens[self._index]


@dataclass
class Rig:
    client: GenviralClient
    tokens: FakeTokens
    sleeps: list[float]
    settings: ClientSettings
    authorization: list[str | None] = field(default_factory=list)


@pytest.fixture
def make(emulator: GenviralEmulator) -> Callable[..., Rig]:
    def build(
        *tokens: str,
        settings: ClientSettings = DEFAULTS,
        clock: Callable[[], datetime] = lambda: NOW,
        sleep: Callable[[float], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> Rig:
        sleeps: list[float] = []
        session = build_session(settings.pool_size)
        source = FakeTokens(*tokens)

        def recorded(seconds: float) -> None:
            sleeps.append(seconds)
            if sleep is not None:
                sleep(seconds)

        rig = Rig(
            client=GenviralClient(
                emulator.base_url,
                source,
                settings=settings,
                session=session,
                sleep=recorded,
                clock=clock,
                monotonic=monotonic,
            ),
            tokens=source,
            sleeps=sleeps,
            settings=settings,
        )

        def record(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            rig.authorization.append(response.request.headers.get("Authorization"))

        session.hooks["response"].append(record)
        return rig

    return build


@pytest.fixture
def post_id(emulator: GenviralEmulator) -> str:
    return emulator.create_post(accounts=2)


def expect(error_type: type[GenviralError], rig: Rig, post_id: str) -> GenviralError:
    """The error `get_post` raises, checked to be exactly `error_type` and never to quote a token."""
    with pytest.raises(GenviralError) as caught:
        rig.client.get_post(post_id)
    error = caught.value
    assert type(error) is error_type, f"{type(error).__name__}: {error}"
    for token in (TOKEN, ROTATED, STALE):
        assert token not in str(error)
        assert token not in repr(error)
    return error


# ---------------------------------------------------------------- success


def test_success_returns_the_post(emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str) -> None:
    rig = make(TOKEN)
    emulator.mark_posted(post_id, emulator.account_ids(post_id)[0])

    post = rig.client.get_post(post_id)

    assert isinstance(post, Post)
    assert post == Post.model_validate(emulator.post_json(post_id))
    assert post.id == post_id
    assert isinstance(post.media, VideoMedia)
    assert [s.status for s in post.accounts.states] == ["posted", "scheduled"]
    assert post.status == "pending"
    assert emulator.calls(post_id) == 1
    assert rig.sleeps == []
    assert (rig.tokens.plain_calls, rig.tokens.refresh_calls) == (1, 0)


def test_authorization_header_is_bearer_token(make: Callable[..., Rig], post_id: str) -> None:
    rig = make(TOKEN)

    rig.client.get_post(post_id)

    assert rig.authorization == [f"Bearer {TOKEN}"]


def test_the_session_is_reused_across_calls(emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str) -> None:
    rig = make(TOKEN)

    first = rig.client.get_post(post_id)
    emulator.mark_failed(post_id, emulator.account_ids(post_id)[1])
    second = rig.client.get_post(post_id)

    assert first.accounts.states[1].status == "scheduled"
    assert second.accounts.states[1].status == "failed"
    assert emulator.calls(post_id) == 2


# ---------------------------------------------------------------- documented errors


def test_401_raises_auth_error_after_one_refresh(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    rig = make(STALE)

    error = expect(GenviralAuthError, rig, post_id)

    assert isinstance(error, GenviralConfigError)
    assert error.status == 401
    assert error.error_code == "invalid_token"
    assert rig.tokens.refresh_calls == 1
    assert rig.tokens.plain_calls == 1
    assert emulator.calls(post_id) == 2
    assert rig.authorization == [f"Bearer {STALE}", f"Bearer {STALE}"]
    assert rig.sleeps == []


def test_401_then_success_after_token_rotation(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    emulator.tokens = {ROTATED}  # the secret rotated; the cached token is now revoked
    rig = make(TOKEN, ROTATED)

    post = rig.client.get_post(post_id)

    assert post.id == post_id
    assert rig.tokens.refresh_calls == 1
    assert emulator.calls(post_id) == 2
    assert rig.authorization == [f"Bearer {TOKEN}", f"Bearer {ROTATED}"]
    assert rig.sleeps == []


@pytest.mark.parametrize(
    ("plan_error", "error_type", "status"),
    [
        ("subscription_required", GenviralSubscriptionRequiredError, 402),
        ("tier_not_allowed", GenviralTierNotAllowedError, 403),
    ],
)
def test_plan_errors_are_distinct_and_not_retried(
    emulator: GenviralEmulator,
    make: Callable[..., Rig],
    post_id: str,
    plan_error: str,
    error_type: type[GenviralError],
    status: int,
) -> None:
    emulator.plan_error = plan_error
    rig = make(TOKEN)

    error = expect(error_type, rig, post_id)

    assert isinstance(error, GenviralConfigError)
    assert (error.status, error.error_code) == (status, plan_error)
    assert emulator.calls(post_id) == 1
    assert rig.tokens.refresh_calls == 0
    assert rig.sleeps == []


def test_404_raises_not_found_without_retry(emulator: GenviralEmulator, make: Callable[..., Rig]) -> None:
    rig = make(TOKEN)
    missing = "22222222-2222-2222-2222-222222222222"

    error = expect(GenviralNotFoundError, rig, missing)

    assert (error.status, error.error_code) == (404, "not_found")
    assert emulator.calls(missing) == 1
    assert rig.sleeps == []


def test_deleted_post_raises_not_found(emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str) -> None:
    rig = make(TOKEN)
    rig.client.get_post(post_id)
    emulator.delete_post(post_id)

    expect(GenviralNotFoundError, rig, post_id)

    assert emulator.calls(post_id) == 2


def test_500_get_failed_retries_with_capped_backoff_then_raises(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    settings = ClientSettings(read_timeout=2.0, max_attempts=4, backoff_base=0.5, backoff_cap=0.8)
    rig = make(TOKEN, settings=settings)
    emulator.inject(Fault.server_error(), post_id=post_id, times=4)

    error = expect(GenviralServerError, rig, post_id)

    assert (error.status, error.error_code) == (500, "get_failed")
    assert emulator.calls(post_id) == 4
    assert len(rig.sleeps) == 3
    assert all(0 <= delay <= settings.backoff_cap for delay in rig.sleeps)
    assert rig.sleeps[0] <= settings.backoff_base


def test_backoff_doubles_per_attempt_up_to_the_cap(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Full jitter drawn at its maximum: the sleeps are the ceilings themselves.
    monkeypatch.setattr(client_module.random, "uniform", lambda low, high: high)
    settings = ClientSettings(read_timeout=2.0, max_attempts=5, backoff_base=0.5, backoff_cap=1.5)
    rig = make(TOKEN, settings=settings)
    emulator.inject(Fault.server_error(), post_id=post_id, times=5)

    expect(GenviralServerError, rig, post_id)

    assert rig.sleeps == [0.5, 1.0, 1.5, 1.5]
    assert emulator.calls(post_id) == 5


def test_500_then_success_recovers(emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str) -> None:
    rig = make(TOKEN)
    emulator.inject(Fault.server_error(), post_id=post_id, times=2)

    post = rig.client.get_post(post_id)

    assert post.id == post_id
    assert emulator.calls(post_id) == 3
    assert len(rig.sleeps) == 2


# ---------------------------------------------------------------- 429 and Retry-After


def test_429_with_retry_after_seconds_waits_then_succeeds(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    rig = make(TOKEN)
    emulator.inject(Fault.rate_limited("2"), post_id=post_id)

    post = rig.client.get_post(post_id)

    assert post.id == post_id
    assert len(rig.sleeps) == 1
    assert rig.sleeps[0] >= 2
    assert rig.sleeps[0] == 2.0  # the hint dominates the (<= 0.5 s) jitter
    assert emulator.calls(post_id) == 2


def test_429_with_retry_after_http_date_waits_until_then(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    rig = make(TOKEN, clock=lambda: NOW)
    emulator.inject(Fault.rate_limited(format_datetime(NOW + timedelta(seconds=3), usegmt=True)), post_id=post_id)

    rig.client.get_post(post_id)

    assert rig.sleeps == [3.0]
    assert emulator.calls(post_id) == 2


def test_429_with_retry_after_http_date_in_the_past_uses_backoff(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    rig = make(TOKEN, clock=lambda: NOW)
    emulator.inject(Fault.rate_limited(format_datetime(NOW - timedelta(minutes=5), usegmt=True)), post_id=post_id)

    rig.client.get_post(post_id)

    assert len(rig.sleeps) == 1
    assert 0 <= rig.sleeps[0] <= rig.settings.backoff_base


@pytest.mark.parametrize("retry_after", ["0", "-5", "soon", "", None])
def test_429_with_zero_negative_garbage_or_no_retry_after_uses_normal_backoff(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str, retry_after: str | None
) -> None:
    rig = make(TOKEN)
    emulator.inject(Fault.rate_limited(retry_after), post_id=post_id)

    post = rig.client.get_post(post_id)

    assert post.id == post_id
    assert len(rig.sleeps) == 1
    assert 0 <= rig.sleeps[0] <= rig.settings.backoff_base
    assert emulator.calls(post_id) == 2


def test_429_with_retry_after_over_the_cap_raises_at_once(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    rig = make(TOKEN)
    emulator.inject(Fault.rate_limited("99999"), post_id=post_id)

    error = expect(GenviralRateLimitedError, rig, post_id)

    assert isinstance(error, GenviralRateLimitedError)
    assert error.retry_after == 99999.0
    assert error.status == 429
    assert error.transient is True
    assert rig.sleeps == []
    assert emulator.calls(post_id) == 1


def test_retry_after_exactly_at_the_cap_is_still_waited(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    rig = make(TOKEN, settings=ClientSettings(read_timeout=2.0, retry_after_cap=5.0))
    emulator.inject(Fault.rate_limited("5"), post_id=post_id)

    rig.client.get_post(post_id)

    assert rig.sleeps == [5.0]


def test_429_every_time_raises_rate_limited_after_max_attempts(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    rig = make(TOKEN)
    emulator.inject(Fault.rate_limited("1"), post_id=post_id, times=3)

    error = expect(GenviralRateLimitedError, rig, post_id)

    assert isinstance(error, GenviralRateLimitedError)
    assert error.retry_after == 1.0
    assert emulator.calls(post_id) == rig.settings.max_attempts == 3
    assert rig.sleeps == [1.0, 1.0]


# ---------------------------------------------------------------- answers that are not envelopes


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_html_raises_server_error_after_retries(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str, status: int
) -> None:
    rig = make(TOKEN)
    emulator.inject(Fault.html(status), post_id=post_id, times=3)

    error = expect(GenviralServerError, rig, post_id)

    assert error.status == status
    assert error.error_code is None
    assert emulator.calls(post_id) == 3
    assert len(rig.sleeps) == 2


def test_gateway_html_once_then_success(emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str) -> None:
    rig = make(TOKEN)
    emulator.inject(Fault.html(502), post_id=post_id)

    assert rig.client.get_post(post_id).id == post_id
    assert emulator.calls(post_id) == 2


@pytest.mark.parametrize(
    "fault",
    [
        Fault.truncated_json(),
        Fault.not_ok(),
        Fault.raw(200, b"", {"Content-Type": "application/json"}),
        Fault.raw(200, b"<html>hello</html>", {"Content-Type": "text/html"}),
        Fault.raw(200, b'{"code": 200, "data": {}}', {"Content-Type": "application/json"}),
    ],
    ids=["truncated", "ok-false", "empty", "html-200", "no-ok-field"],
)
def test_2xx_that_is_not_a_good_envelope_raises_bad_response_after_retries(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str, fault: Fault
) -> None:
    rig = make(TOKEN)
    emulator.inject(fault, post_id=post_id, times=3)

    error = expect(GenviralBadResponseError, rig, post_id)

    assert error.status == 200
    assert emulator.calls(post_id) == 3
    assert len(rig.sleeps) == 2


def test_truncated_json_once_then_success(emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str) -> None:
    rig = make(TOKEN)
    emulator.inject(Fault.truncated_json(), post_id=post_id)

    assert rig.client.get_post(post_id).id == post_id
    assert emulator.calls(post_id) == 2


def test_unexpected_4xx_is_a_bad_response(emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str) -> None:
    rig = make(TOKEN)
    body = json.dumps({"ok": False, "code": 422, "message": "Invalid path", "error_code": "invalid_path"}).encode()
    emulator.inject(Fault.raw(422, body, {"Content-Type": "application/json"}), post_id=post_id, times=3)

    error = expect(GenviralBadResponseError, rig, post_id)

    assert (error.status, error.error_code) == (422, "invalid_path")


# ---------------------------------------------------------------- transport failures


def test_connection_reset_once_recovers_on_retry(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    rig = make(TOKEN)
    emulator.inject(Fault.reset(), post_id=post_id)

    post = rig.client.get_post(post_id)

    assert post.id == post_id
    assert emulator.calls(post_id) == 2
    assert len(rig.sleeps) == 1


def test_connection_reset_every_time_raises_unavailable(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    rig = make(TOKEN)
    emulator.inject(Fault.reset(), post_id=post_id, times=3)

    error = expect(GenviralUnavailableError, rig, post_id)

    assert error.transient is True
    assert emulator.calls(post_id) == 3
    assert len(rig.sleeps) == 2


def test_connection_refused_raises_unavailable(make: Callable[..., Rig], emulator: GenviralEmulator) -> None:
    rig = make(TOKEN, settings=ClientSettings(read_timeout=0.3, connect_timeout=0.3, max_attempts=2))
    emulator.stop()

    error = expect(GenviralUnavailableError, rig, "33333333-3333-3333-3333-333333333333")

    assert len(rig.sleeps) == 1
    assert "ConnectionError" in str(error)


def test_hang_beyond_read_timeout_raises_unavailable(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    rig = make(TOKEN, settings=ClientSettings(read_timeout=0.3, max_attempts=2))
    emulator.inject(Fault.hang(5.0), post_id=post_id, times=2)

    error = expect(GenviralUnavailableError, rig, post_id)

    assert "did not answer in time" in str(error)
    assert emulator.calls(post_id) == 2
    assert len(rig.sleeps) == 1


def test_hang_once_then_success(emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str) -> None:
    rig = make(TOKEN, settings=ClientSettings(read_timeout=0.3))
    emulator.inject(Fault.hang(5.0), post_id=post_id)

    assert rig.client.get_post(post_id).id == post_id
    assert emulator.calls(post_id) == 2


def test_short_hang_within_read_timeout_is_no_error(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    rig = make(TOKEN, settings=ClientSettings(read_timeout=1.0))
    emulator.inject(Fault.hang(0.05), post_id=post_id)

    assert rig.client.get_post(post_id).id == post_id
    assert emulator.calls(post_id) == 1
    assert rig.sleeps == []


# ---------------------------------------------------------------- the call's deadline
# A hang or a trickle costs real time: the deadlines here are short, the bounds generous (a missed deadline
# would take the read timeout, 5 s, per attempt).
SLOW = ClientSettings(read_timeout=5.0, call_deadline=0.5)
WITHIN = 2.0  # the deadline and slack for a loaded machine


def test_a_hang_is_cut_at_the_calls_deadline_across_attempts(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    rig = make(TOKEN, settings=SLOW)
    emulator.inject(Fault.hang(), post_id=post_id, times=3)
    started = time.monotonic()

    error = expect(GenviralUnavailableError, rig, post_id)

    assert time.monotonic() - started < WITHIN
    assert "did not answer in time" in str(error)
    assert emulator.calls(post_id) == 1  # no time left for another attempt
    emulator.release_hangs()


def test_a_trickled_body_is_cut_at_the_calls_deadline(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    rig = make(TOKEN, settings=SLOW)
    emulator.inject(Fault.trickle(0.02), post_id=post_id, times=3)  # a byte each 20 ms: the read timeout never fires
    started = time.monotonic()

    error = expect(GenviralUnavailableError, rig, post_id)

    assert time.monotonic() - started < WITHIN
    assert "deadline" in str(error)
    assert emulator.calls(post_id) == 1


def test_a_trickled_status_line_and_headers_are_cut_at_the_calls_deadline(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    rig = make(TOKEN, settings=SLOW)
    emulator.inject(Fault.trickle(0.05, head=True), post_id=post_id, times=3)  # each byte within the read timeout
    started = time.monotonic()

    error = expect(GenviralUnavailableError, rig, post_id)

    assert time.monotonic() - started < WITHIN  # the head alone takes over 6 s
    assert "did not answer in time" in str(error)
    assert emulator.calls(post_id) == 1


def test_a_head_trickled_within_each_read_timeout_ends_by_the_deadline(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    """The reviewer's case (issue 21, item 9): a byte each 0.2 s, a 1 s read timeout, a 2 s deadline; it took
    13.2 s."""
    rig = make(TOKEN, settings=ClientSettings(call_deadline=2.0, read_timeout=1.0, max_attempts=1))
    emulator.inject(Fault.trickle(0.2, head=True), post_id=post_id)
    started = time.monotonic()

    expect(GenviralUnavailableError, rig, post_id)

    assert time.monotonic() - started < 2.0 + 1.5


def test_the_callers_budget_bounds_a_trickled_head_too(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    rig = make(TOKEN, settings=ClientSettings(read_timeout=5.0))  # the default deadline: far beyond the budget
    emulator.inject(Fault.trickle(0.05, head=True), post_id=post_id, times=3)
    started = time.monotonic()

    with calls_until(Deadline.after(0.5)):
        expect(GenviralUnavailableError, rig, post_id)

    assert time.monotonic() - started < WITHIN


def test_a_pooled_connection_is_bounded_by_the_current_calls_deadline(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    now = [0.0]  # a monotonic clock only the test moves: the first call's deadline is long past at the second
    rig = make(TOKEN, settings=ClientSettings(read_timeout=2.0, call_deadline=1.0), monotonic=lambda: now[0])
    rig.client.get_post(post_id)
    now[0] = 1000.0

    assert rig.client.get_post(post_id).id == post_id
    assert emulator.connections_accepted == 1  # the second call reused the first one's connection


def test_the_callers_budget_bounds_the_call_too(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    rig = make(TOKEN, settings=ClientSettings(read_timeout=5.0))  # the default deadline: far beyond the budget
    emulator.inject(Fault.hang(), post_id=post_id, times=3)
    started = time.monotonic()

    with calls_until(Deadline.after(0.5)):
        expect(GenviralUnavailableError, rig, post_id)

    assert time.monotonic() - started < WITHIN
    emulator.release_hangs()


def test_no_back_off_is_slept_past_the_deadline(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [100.0]  # a monotonic clock that only the back-off moves

    def advance(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(client_module.random, "uniform", lambda low, high: high)
    settings = ClientSettings(read_timeout=2.0, call_deadline=3.0, backoff_base=1.0, backoff_cap=4.0)
    rig = make(TOKEN, settings=settings, sleep=advance, monotonic=lambda: now[0])
    emulator.inject(Fault.server_error(), post_id=post_id, times=3)

    expect(GenviralServerError, rig, post_id)

    assert rig.sleeps == [1.0]  # the second back-off (2 s) would end past the deadline (1 s left): not slept
    assert emulator.calls(post_id) == 2


def test_a_call_with_no_time_left_asks_genviral_nothing(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    rig = make(TOKEN)

    with calls_until(Deadline.after(-1.0)):
        error = expect(GenviralUnavailableError, rig, post_id)

    assert "deadline" in str(error)
    assert emulator.calls(post_id) == 0


# ---------------------------------------------------------------- contract violations


def _envelope_bytes(emulator: GenviralEmulator, post_id: str) -> bytes:
    payload = {"ok": True, "code": 200, "message": "Post retrieved", "data": emulator.post_json(post_id)}
    return json.dumps(payload).encode()


def test_body_over_max_body_bytes_is_a_contract_error_without_retry(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    body = _envelope_bytes(emulator, post_id)
    rig = make(TOKEN, settings=ClientSettings(read_timeout=2.0, max_body_bytes=len(body) - 1))
    emulator.inject(Fault.raw(200, body, {"Content-Type": "application/json"}), post_id=post_id, times=3)

    error = expect(GenviralContractError, rig, post_id)

    assert f"over {len(body) - 1} bytes" in str(error)
    assert emulator.calls(post_id) == 1
    assert rig.sleeps == []


def test_body_exactly_max_body_bytes_is_accepted(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    body = _envelope_bytes(emulator, post_id)
    rig = make(TOKEN, settings=ClientSettings(read_timeout=2.0, max_body_bytes=len(body)))
    emulator.inject(Fault.raw(200, body, {"Content-Type": "application/json"}), post_id=post_id)

    assert rig.client.get_post(post_id).id == post_id


def test_huge_body_is_cut_off_at_the_limit(emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str) -> None:
    rig = make(TOKEN, settings=ClientSettings(read_timeout=2.0, max_body_bytes=64 * 1024))
    emulator.inject(Fault.raw(200, b"x" * (1024 * 1024), {"Content-Type": "application/json"}), post_id=post_id)

    expect(GenviralContractError, rig, post_id)

    assert emulator.calls(post_id) == 1


def _missing_accounts(data: dict[str, Any]) -> None:
    del data["accounts"]


def _states_not_a_list(data: dict[str, Any]) -> None:
    data["accounts"]["states"] = {"x": "posted"}


def _status_a_number(data: dict[str, Any]) -> None:
    data["status"] = 7


def _account_status_a_number(data: dict[str, Any]) -> None:
    data["accounts"]["states"][0]["status"] = 7


def _total_negative(data: dict[str, Any]) -> None:
    data["accounts"]["total"] = -2


def _duplicate_account_ids(data: dict[str, Any]) -> None:
    data["accounts"]["states"][1]["account_id"] = data["accounts"]["states"][0]["account_id"]


def _account_without_id(data: dict[str, Any]) -> None:
    del data["accounts"]["states"][0]["account_id"]


MALFORMED = [
    _missing_accounts,
    _states_not_a_list,
    _status_a_number,
    _account_status_a_number,
    _total_negative,
    _duplicate_account_ids,
    _account_without_id,
]


@pytest.mark.parametrize("depth", [100_000, 5_000])
def test_json_nested_too_deep_is_a_contract_error_without_retry(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str, depth: int
) -> None:
    rig = make(TOKEN)
    emulator.inject(Fault.nested(depth), post_id=post_id, times=3)

    error = expect(GenviralContractError, rig, post_id)

    assert "nested too deeply" in str(error)
    assert emulator.calls(post_id) == 1
    assert rig.sleeps == []


def test_an_unknown_media_nested_too_deep_to_write_again_is_a_contract_error(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    """Parsed, but it would pass into every event and fail every write: the post breaks the contract."""
    data = emulator.post_json(post_id)
    data["media"] = {"type": "carousel", "items": json.loads("[" * 900 + "]" * 900)}
    rig = make(TOKEN)
    emulator.inject(Fault.body(data), post_id=post_id, times=3)

    error = expect(GenviralContractError, rig, post_id)

    assert "nested too deeply" in str(error)
    assert emulator.calls(post_id) == 1


def test_a_500_nested_too_deep_is_a_server_error(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    rig = make(TOKEN)
    emulator.inject(Fault.nested(100_000, status=500), post_id=post_id, times=3)

    error = expect(GenviralServerError, rig, post_id)

    assert str(error) == "HTTP 500"
    assert emulator.calls(post_id) == 3


@pytest.mark.parametrize("status", [500, 404, 402, 418])
def test_genviral_error_text_is_cut_to_500_characters(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str, status: int
) -> None:
    message = "Upstream exploded: " + "é" * 750_000  # 1.5 MB (é is two bytes)
    rig = make(TOKEN)
    emulator.inject(Fault.error(status, message, error_code="x" * 10_000), post_id=post_id, times=3)

    with pytest.raises(GenviralError) as caught:
        rig.client.get_post(post_id)

    text = str(caught.value)
    assert len(text) <= ECHO_LIMIT + len("unexpected HTTP 418: ")
    assert "Upstream exploded: ééé" in text
    assert text.endswith("\N{HORIZONTAL ELLIPSIS}")
    assert len(caught.value.error_code or "") <= ECHO_LIMIT


@pytest.mark.parametrize("breakage", MALFORMED, ids=[f.__name__.lstrip("_") for f in MALFORMED])
def test_malformed_post_is_a_contract_error_without_retry(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str, breakage: Callable[[dict[str, Any]], None]
) -> None:
    rig = make(TOKEN)
    data = emulator.post_json(post_id)
    breakage(data)
    emulator.inject(Fault.body(data), post_id=post_id, times=3)

    error = expect(GenviralContractError, rig, post_id)

    assert post_id in str(error)
    assert "does not match the documented shape" in str(error)
    assert emulator.calls(post_id) == 1
    assert rig.sleeps == []


@pytest.mark.parametrize("data", [None, [], "a post"], ids=["null", "list", "string"])
def test_ok_envelope_with_unusable_data_is_a_contract_error(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str, data: Any
) -> None:
    rig = make(TOKEN)
    emulator.inject(Fault.body(data), post_id=post_id, times=3)

    expect(GenviralContractError, rig, post_id)

    assert emulator.calls(post_id) == 1


def test_contract_error_does_not_quote_upstream_values(
    emulator: GenviralEmulator, make: Callable[..., Rig], post_id: str
) -> None:
    rig = make(TOKEN)
    data = emulator.post_json(post_id)
    data["accounts"]["states"][0]["status"] = ["MARKER-value-from-upstream"]
    emulator.inject(Fault.body(data), post_id=post_id)

    error = expect(GenviralContractError, rig, post_id)

    assert "accounts.states.0.status" in str(error)
    assert "MARKER-value-from-upstream" not in str(error)


# ---------------------------------------------------------------- the token never leaks


def route_relay_logs_to_sys_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point Powertools' JSON handler at the current (capsys) stdout: it bound the process stdout at import.

    Called from the test body: during fixture setup `sys.stdout` is not yet the stream capsys reads.
    """
    handlers = [h for h in relay_logger.handlers if isinstance(h, logging.StreamHandler)]
    assert handlers, "Powertools logger has no stream handler"
    for handler in handlers:
        monkeypatch.setattr(handler, "stream", sys.stdout)


def test_token_never_appears_in_errors_or_logs(
    emulator: GenviralEmulator,
    make: Callable[..., Rig],
    post_id: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    route_relay_logs_to_sys_stdout(monkeypatch)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger=relay_logger.name)
    errors: list[GenviralError] = []

    # A rotation (401 + refresh), retries of every transient kind, then each documented failure.
    emulator.tokens = {ROTATED}
    rig = make(TOKEN, ROTATED, settings=ClientSettings(read_timeout=0.3, max_attempts=6))
    for fault in (
        Fault.server_error(),
        Fault.rate_limited("1"),
        Fault.html(502),
        Fault.truncated_json(),
        Fault.reset(),
    ):
        emulator.inject(fault, post_id=post_id)
    assert rig.client.get_post(post_id).id == post_id

    stale = make(STALE)
    for plan_error in ("subscription_required", "tier_not_allowed"):
        emulator.plan_error = plan_error
        errors.append(expect_any(make(ROTATED), post_id))
    emulator.plan_error = None
    errors.append(expect_any(stale, post_id))
    errors.append(expect_any(make(ROTATED), "44444444-4444-4444-4444-444444444444"))
    emulator.inject(Fault.server_error(), post_id=post_id, times=3)
    errors.append(expect_any(make(ROTATED), post_id))
    emulator.inject(Fault.rate_limited("99999"), post_id=post_id)
    errors.append(expect_any(make(ROTATED), post_id))
    emulator.inject(Fault.hang(5.0), post_id=post_id)
    errors.append(expect_any(make(ROTATED, settings=ClientSettings(read_timeout=0.3, max_attempts=1)), post_id))
    data = emulator.post_json(post_id)
    del data["accounts"]
    emulator.inject(Fault.body(data), post_id=post_id)
    errors.append(expect_any(make(ROTATED), post_id))

    assert {type(error) for error in errors} >= {
        GenviralSubscriptionRequiredError,
        GenviralTierNotAllowedError,
        GenviralAuthError,
        GenviralNotFoundError,
        GenviralServerError,
        GenviralRateLimitedError,
        GenviralUnavailableError,
        GenviralContractError,
    }
    out = capsys.readouterr()
    records = caplog.records
    assert any(r.name == relay_logger.name and "re-reading the token" in r.getMessage() for r in records)
    assert any(r.name == relay_logger.name and "Retrying a Genviral call" in r.getMessage() for r in records)
    # Powertools' JSON lines, extra keys included, reached the captured stdout.
    logged = [json.loads(line) for line in out.out.splitlines() if line.startswith("{")]
    assert any(line.get("message") == "Retrying a Genviral call" and "delay_seconds" in line for line in logged)
    for token in (TOKEN, ROTATED, STALE):
        for error in errors:
            assert token not in str(error)
            assert token not in repr(error.args)
        for record in records:
            assert token not in record.getMessage()
            assert token not in repr(record.__dict__)
        assert token not in caplog.text
        assert token not in out.out
        assert token not in out.err


def expect_any(rig: Rig, post_id: str) -> GenviralError:
    with pytest.raises(GenviralError) as caught:
        rig.client.get_post(post_id)
    return caught.value


# ---------------------------------------------------------------- parse_retry_after


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("0.0", 0.0),
        ("120", 120.0),
        ("-5", 0.0),
        ("-0.25", 0.0),
    ],
)
def test_parse_retry_after_seconds(value: str, expected: float) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sat, 01 Feb 2025 15:00:30 GMT", 30.0),
        ("Sat, 01 Feb 2025 15:02:00 GMT", 120.0),
        ("Sat, 01 Feb 2025 16:00:00 +0100", 0.0),  # the same instant as NOW
        ("Sat, 01 Feb 2025 15:00:10 -0000", 10.0),  # "-0000" parses as naive: read as UTC
        ("Sat, 01 Feb 2025 14:59:00 GMT", 0.0),  # in the past
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
    ],
)
def test_parse_retry_after_http_date(value: str, expected: float) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_http_date_depends_on_now() -> None:
    header = format_datetime(NOW + timedelta(seconds=45), usegmt=True)

    assert parse_retry_after(header, NOW) == 45.0
    assert parse_retry_after(header, NOW + timedelta(seconds=40)) == 5.0
    assert parse_retry_after(header, NOW + timedelta(hours=1)) == 0.0


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", "soon", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e999", "2 seconds", "Sat, 99 Foo"],
)
def test_parse_retry_after_unusable_is_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


def test_parse_retry_after_takes_plain_delay_seconds_only() -> None:
    # RFC 9110 delay-seconds are digits; exponents, underscores and signs other than "-" are not a delay.
    for value in ("1e2", "1_0", "+5", "-1e308", "0x10"):
        assert parse_retry_after(value, NOW) is None
    assert parse_retry_after("-0", NOW) == 0.0


def test_post_id_is_escaped_in_the_url(emulator: GenviralEmulator) -> None:
    client = GenviralClient(emulator.base_url, FakeTokens(TOKEN), sleep=lambda _: None)

    with pytest.raises(GenviralNotFoundError):
        client.get_post("../accounts")

    assert emulator.requests_log[-1].path.endswith("/posts/..%2Faccounts")


# ---------------------------------------------------------------- GET /accounts


def accounts_requests(emulator: GenviralEmulator) -> int:
    return sum(1 for record in emulator.requests_log if record.path.endswith("/accounts"))


def test_list_accounts_returns_the_active_accounts(emulator: GenviralEmulator, make: Callable[..., Rig]) -> None:
    emulator.create_post(accounts=["acct-a", "acct-b", "acct-c"])
    emulator.set_account("acct-a", platform="instagram", username="cafe", display_name="Cafe", type="hosted")
    emulator.set_account("acct-c", status="revoked")

    listing = make(TOKEN).client.list_accounts()
    accounts = {account.id: account for account in listing.accounts}

    assert set(accounts) == {"acct-a", "acct-b"}
    assert (listing.scope, listing.workspace_id, listing.unreadable_ids) == ("workspace", DEFAULT_WORKSPACE_ID, ())
    assert accounts["acct-a"].model_dump() == {
        "id": "acct-a",
        "platform": "instagram",
        "type": "hosted",
        "username": "cafe",
        "display_name": "Cafe",
        "status": "active",
    }


def test_list_accounts_reports_the_unreadable_items_and_tolerates_missing_fields(
    emulator: GenviralEmulator, make: Callable[..., Rig]
) -> None:
    items = [{"platform": "tiktok"}, {"id": "acct-a"}, "junk", {"id": "acct-b", "username": 123}, {"id": 7}]
    emulator.inject(Fault.body({"scope": "personal", "workspace_id": None, "accounts": items}), accounts=True)

    listing = make(TOKEN).client.list_accounts()

    assert [(account.id, account.platform, account.username) for account in listing.accounts] == [
        ("acct-a", None, None)
    ]
    assert listing.unreadable_ids == ("acct-b",)  # listed: account health does not read it as gone
    assert listing.unidentified == 3  # no readable id: any missing account may be one of them
    assert (listing.scope, listing.workspace_id) == ("personal", None)


def test_list_accounts_without_an_accounts_array_is_a_contract_error(
    emulator: GenviralEmulator, make: Callable[..., Rig]
) -> None:
    emulator.inject(Fault.body({"scope": "workspace"}), accounts=True)

    with pytest.raises(GenviralContractError, match="no accounts array"):
        make(TOKEN).client.list_accounts()


@pytest.mark.parametrize(
    ("plan_error", "error_type"),
    [("subscription_required", GenviralSubscriptionRequiredError), ("tier_not_allowed", GenviralTierNotAllowedError)],
)
def test_list_accounts_plan_errors_are_not_retried(
    emulator: GenviralEmulator, make: Callable[..., Rig], plan_error: str, error_type: type[GenviralError]
) -> None:
    emulator.plan_error = plan_error
    rig = make(TOKEN)

    with pytest.raises(error_type):
        rig.client.list_accounts()

    assert accounts_requests(emulator) == 1
    assert rig.sleeps == []


def test_list_accounts_401_refreshes_the_token_once(emulator: GenviralEmulator, make: Callable[..., Rig]) -> None:
    rig = make(STALE, STALE)

    with pytest.raises(GenviralAuthError):
        rig.client.list_accounts()

    assert rig.tokens.refresh_calls == 1
    assert accounts_requests(emulator) == 2


def test_list_accounts_500_accounts_failed_is_raised_at_once_without_waiting(
    emulator: GenviralEmulator, make: Callable[..., Rig]
) -> None:
    # The listing only enriches events: a check about to emit does not wait for its retries.
    rig = make(TOKEN)
    emulator.inject(Fault.server_error(), accounts=True)

    with pytest.raises(GenviralServerError) as caught:
        rig.client.list_accounts()

    assert (caught.value.status, caught.value.error_code) == (500, "accounts_failed")
    assert accounts_requests(emulator) == 1
    assert rig.sleeps == []
    assert [account.id for account in rig.client.list_accounts().accounts] == []  # the next listing goes through
