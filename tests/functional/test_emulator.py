"""The Genviral emulator, exercised over real loopback HTTP the way the relay will use it."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from local.emulator import DEFAULT_TOKEN, Fault, GenviralEmulator, format_timestamp
from tests.support.doubles import SteppingClock

NOW = datetime(2025, 1, 20, 12, 5, 11, 205_000, tzinfo=UTC)
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SEED_KEYS = [
    "id",
    "caption",
    "status",
    "scheduled_at",
    "created_at",
    "media",
    "music_url",
    "tiktok",
    "pinterest",
    "accounts",
]
STATE_KEYS = ["account_id", "status", "published_at", "error_message", "last_attempted_at", "published_url"]
SEED_PINTEREST = {
    "board_id": "123456789012345678",
    "title": "Dinner board",
    "link": "https://example.com/recipes",
    "tags": ["Italian recipes", "easy dinner"],
}


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock(NOW)


@pytest.fixture
def emulator(clock: SteppingClock) -> Iterator[GenviralEmulator]:
    with GenviralEmulator(clock=clock) as emu:
        yield emu
    assert emu.handler_errors == []


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {DEFAULT_TOKEN}"
    yield session
    session.close()


def get_post(http: requests.Session, emu: GenviralEmulator, post_id: str, **kwargs: Any) -> requests.Response:
    return http.get(f"{emu.base_url}/posts/{post_id}", timeout=2, **kwargs)


def list_posts(http: requests.Session, emu: GenviralEmulator, **params: str) -> requests.Response:
    return http.get(f"{emu.base_url}/posts", params=params, timeout=2)


def post_data(http: requests.Session, emu: GenviralEmulator, post_id: str) -> dict[str, Any]:
    response = get_post(http, emu, post_id)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def assert_error(response: requests.Response, status: int, error_code: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["ok"] is False
    assert body["code"] == status
    assert body["error_code"] == error_code
    assert isinstance(body["message"], str)
    assert body["message"]
    assert "data" not in body
    return body


# ---------------------------------------------------------------- GET /posts/{id}


def test_a_post_created_with_an_external_id_echoes_it_and_only_then(
    emulator: GenviralEmulator, http: requests.Session
) -> None:
    keyed = emulator.create_post(external_id="crm-42")
    plain = emulator.create_post()

    assert get_post(http, emulator, keyed).json()["data"]["external_id"] == "crm-42"
    assert "external_id" not in get_post(http, emulator, plain).json()["data"]  # the seed page shows none


def test_get_post_answers_the_seed_shape(emulator: GenviralEmulator, http: requests.Session) -> None:
    post_id = emulator.create_post(
        accounts=["0f4f54d4-8cce-4fb7-8c7b-befbcb8af812", "6b0c8c9c-55ac-4fcb-85ec-70b5a8b0d089"],
        scheduled_at=datetime(2025, 2, 1, 15, 0, tzinfo=UTC),
        caption="Holiday drops start Monday!",
        media={"type": "video", "url": "https://cdn.example.com/video.mp4"},
        pinterest=SEED_PINTEREST,
    )

    response = get_post(http, emulator, post_id)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["ok", "code", "message", "data"]
    assert (body["ok"], body["code"], body["message"]) == (True, 200, "Post retrieved")
    data = body["data"]
    assert list(data) == SEED_KEYS
    assert data["id"] == post_id
    assert data["caption"] == "Holiday drops start Monday!"
    assert data["status"] == "scheduled"
    assert data["scheduled_at"] == "2025-02-01T15:00:00.000Z"
    assert data["created_at"] == "2025-01-20T12:05:11.205Z"
    assert data["media"] == {"type": "video", "url": "https://cdn.example.com/video.mp4"}
    assert data["music_url"] is None
    assert data["tiktok"] is None
    assert data["pinterest"] == SEED_PINTEREST
    assert data["accounts"]["total"] == 2
    states = data["accounts"]["states"]
    assert [state["account_id"] for state in states] == emulator.account_ids(post_id)
    for state in states:
        assert list(state) == STATE_KEYS
        assert state["status"] == "scheduled"
        assert [state[key] for key in STATE_KEYS[2:]] == [None, None, None, None]
    assert data == emulator.post_json(post_id)


def test_defaults_give_a_video_post_with_one_fresh_account_scheduled_an_hour_ahead(
    emulator: GenviralEmulator, http: requests.Session
) -> None:
    post_id = emulator.create_post()

    data = post_data(http, emulator, post_id)

    assert data["media"]["type"] == "video"
    assert data["media"]["url"].startswith("https://")
    assert data["scheduled_at"] == format_timestamp(NOW + timedelta(hours=1))
    assert TIMESTAMP.match(data["created_at"])
    assert data["accounts"]["total"] == 1
    assert len(emulator.account_ids(post_id)[0]) == 36


def test_media_variants_and_settings_keep_exactly_the_given_keys(
    emulator: GenviralEmulator, http: requests.Session
) -> None:
    slideshow = emulator.create_post(
        media={"type": "slideshow", "urls": ["https://cdn.example.com/1.jpg", "https://cdn.example.com/2.jpg"]},
        music_url="https://www.tiktok.com/@x/video/1",
        tiktok={"post_mode": "MEDIA_UPLOAD", "privacy_level": "SELF_ONLY"},
        pinterest={"board_id": "42", "tags": []},
    )
    text_only = emulator.create_post(media=None, scheduled_at=None)

    first = post_data(http, emulator, slideshow)
    second = post_data(http, emulator, text_only)

    assert first["media"] == {
        "type": "slideshow",
        "urls": ["https://cdn.example.com/1.jpg", "https://cdn.example.com/2.jpg"],
    }
    assert first["music_url"] == "https://www.tiktok.com/@x/video/1"
    assert first["tiktok"] == {"post_mode": "MEDIA_UPLOAD", "privacy_level": "SELF_ONLY"}
    assert first["pinterest"] == {"board_id": "42", "tags": []}
    assert second["media"] is None
    assert second["scheduled_at"] is None
    assert second["status"] == "pending"
    assert second["accounts"]["states"][0]["status"] == "pending"


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic Z3ZhOnNlY3JldA==", "Bearer gva_live_other.secret", DEFAULT_TOKEN],
)
def test_missing_malformed_or_unknown_token_is_401(emulator: GenviralEmulator, authorization: str | None) -> None:
    post_id = emulator.create_post()
    headers = {} if authorization is None else {"Authorization": authorization}

    response = requests.get(f"{emulator.base_url}/posts/{post_id}", headers=headers, timeout=2)

    body = assert_error(response, 401, "invalid_token")
    assert body["message"] == "API key not found"
    assert emulator.requests_log[-1].authorized is False


def test_tokens_can_be_rotated_while_running(emulator: GenviralEmulator, http: requests.Session) -> None:
    post_id = emulator.create_post()
    assert get_post(http, emulator, post_id).status_code == 200

    emulator.tokens.discard(DEFAULT_TOKEN)
    emulator.tokens.add("gva_live_rotated.n3w")

    assert_error(get_post(http, emulator, post_id), 401, "invalid_token")
    rotated = get_post(http, emulator, post_id, headers={"Authorization": "Bearer gva_live_rotated.n3w"})
    assert rotated.status_code == 200
    assert [record.authorized for record in emulator.requests_log] == [True, False, True]


@pytest.mark.parametrize(("plan_error", "status"), [("subscription_required", 402), ("tier_not_allowed", 403)])
def test_plan_errors_apply_to_every_endpoint_after_auth(
    emulator: GenviralEmulator, http: requests.Session, plan_error: str, status: int
) -> None:
    post_id = emulator.create_post()
    emulator.plan_error = plan_error

    assert_error(get_post(http, emulator, post_id), status, plan_error)
    assert_error(list_posts(http, emulator), status, plan_error)
    unauthenticated = requests.get(f"{emulator.base_url}/posts/{post_id}", timeout=2)
    assert_error(unauthenticated, 401, "invalid_token")

    emulator.plan_error = None
    assert get_post(http, emulator, post_id).status_code == 200


def test_unknown_plan_error_is_rejected(emulator: GenviralEmulator) -> None:
    with pytest.raises(ValueError, match="plan_error"):
        emulator.plan_error = "free_tier"


def test_unknown_and_deleted_posts_are_404(emulator: GenviralEmulator, http: requests.Session) -> None:
    post_id = emulator.create_post()
    emulator.delete_post(post_id)

    assert_error(get_post(http, emulator, post_id), 404, "not_found")
    assert_error(get_post(http, emulator, "11111111-1111-1111-1111-111111111111"), 404, "not_found")
    assert_error(get_post(http, emulator, "post_789"), 404, "not_found")
    with pytest.raises(KeyError):
        emulator.post_json(post_id)


def test_scope_filters_states_and_hides_posts_without_an_account_in_scope(
    emulator: GenviralEmulator, http: requests.Session
) -> None:
    shared = emulator.create_post(accounts=["acct-a", "acct-b", "acct-c"])
    foreign = emulator.create_post(accounts=["acct-z"])
    emulator.mark_posted(shared, "acct-b")
    emulator.scope_accounts = {"acct-a", "acct-c"}

    data = post_data(http, emulator, shared)

    assert data["accounts"]["total"] == 2
    assert [state["account_id"] for state in data["accounts"]["states"]] == ["acct-a", "acct-c"]
    assert data["status"] == "pending"  # the post status still reflects every account
    assert_error(get_post(http, emulator, foreign), 404, "not_found")
    listed = list_posts(http, emulator).json()["data"]
    assert [post["id"] for post in listed["posts"]] == [shared]
    assert listed["summary"]["total"] == 1
    assert emulator.post_json(shared)["accounts"]["total"] == 3


# ---------------------------------------------------------------- transitions


@pytest.mark.parametrize(
    ("statuses", "scheduled", "expected"),
    [
        (["scheduled", "scheduled"], True, "scheduled"),
        (["pending", "pending"], False, "pending"),
        (["deleted", "void"], True, "scheduled"),
        (["posted", "posted"], True, "posted"),
        (["failed", "failed"], True, "failed"),
        (["posted", "failed"], True, "partial"),
        (["posted", "scheduled"], True, "pending"),
        (["failed", "processing"], False, "pending"),
        (["retry", "posted"], True, "retry"),
        (["retry", "scheduled"], True, "retry"),
    ],
)
def test_post_status_is_derived_from_the_account_states(
    emulator: GenviralEmulator, http: requests.Session, statuses: list[str], scheduled: bool, expected: str
) -> None:
    post_id = emulator.create_post(accounts=len(statuses), scheduled_at=NOW + timedelta(hours=2) if scheduled else None)
    for account_id, status in zip(emulator.account_ids(post_id), statuses, strict=True):
        emulator.set_account_state(post_id, account_id, status=status)

    data = post_data(http, emulator, post_id)

    assert data["status"] == expected
    assert [state["status"] for state in data["accounts"]["states"]] == statuses


def test_mark_posted_sets_publication_fields(emulator: GenviralEmulator, http: requests.Session) -> None:
    post_id = emulator.create_post(accounts=["a", "b"])
    at = datetime(2025, 1, 21, 9, 30, 0, 123_456, tzinfo=UTC)

    emulator.mark_posted(post_id, "a", published_url="https://www.tiktok.com/@me/video/7", at=at)
    emulator.mark_posted(post_id, "b")

    first, second = post_data(http, emulator, post_id)["accounts"]["states"]
    assert first == {
        "account_id": "a",
        "status": "posted",
        "published_at": "2025-01-21T09:30:00.123Z",
        "error_message": None,
        "last_attempted_at": "2025-01-21T09:30:00.123Z",
        "published_url": "https://www.tiktok.com/@me/video/7",
    }
    assert second["published_at"] == second["last_attempted_at"] == "2025-01-20T12:05:11.205Z"
    assert second["published_url"].startswith("https://")


def test_a_posting_can_get_its_url_later_in_emulated_time_or_when_told(
    emulator: GenviralEmulator, http: requests.Session, clock: SteppingClock
) -> None:
    post_id = emulator.create_post(accounts=["a", "b", "c"])
    emulator.mark_posted(post_id, "a", url_after=timedelta(minutes=10))
    emulator.mark_posted(post_id, "b", published_url=None)
    emulator.mark_posted(post_id, "c", url_after=timedelta(minutes=10))
    emulator.mark_failed(post_id, "c")  # an account that leaves `posted` gets no URL

    def urls() -> list[str | None]:
        return [state["published_url"] for state in post_data(http, emulator, post_id)["accounts"]["states"]]

    assert urls() == [None, None, None]
    clock.now += timedelta(minutes=9, seconds=59)
    assert urls() == [None, None, None]
    clock.now += timedelta(seconds=1)
    assert urls() == [f"https://social.example.com/a/posts/{post_id}", None, None]
    listed = list_posts(http, emulator).json()["data"]["posts"]
    assert listed[0]["accounts"]["states"][0]["published_url"] == urls()[0]

    emulator.resolve_url(post_id, "b", "https://www.tiktok.com/@me/video/8")
    assert urls()[1] == "https://www.tiktok.com/@me/video/8"
    clock.now += timedelta(hours=1)
    assert urls()[2] is None
    assert post_data(http, emulator, post_id)["accounts"]["states"][0]["published_at"] == format_timestamp(NOW)


def test_mark_failed_then_retry_rearms_only_the_failed_accounts(
    emulator: GenviralEmulator, http: requests.Session, clock: SteppingClock
) -> None:
    post_id = emulator.create_post(accounts=["a", "b", "c"])
    emulator.mark_failed(post_id, "a", error_message="spam_risk_too_many_pending_share")
    emulator.mark_failed(post_id, "b")
    emulator.mark_posted(post_id, "c")
    failed = post_data(http, emulator, post_id)
    assert failed["status"] == "partial"
    assert failed["accounts"]["states"][0] == {
        "account_id": "a",
        "status": "failed",
        "published_at": None,
        "error_message": "spam_risk_too_many_pending_share",
        "last_attempted_at": "2025-01-20T12:05:11.205Z",
        "published_url": None,
    }

    emulator.retry(post_id, ["a", "c"])

    states = {state["account_id"]: state for state in post_data(http, emulator, post_id)["accounts"]["states"]}
    assert states["a"]["status"] == "retry"
    assert states["a"]["error_message"] is None
    assert states["a"]["last_attempted_at"] == "2025-01-20T12:05:11.205Z"
    assert states["b"]["status"] == "failed"
    assert states["c"]["status"] == "posted"

    emulator.retry(post_id)
    clock.now = NOW + timedelta(minutes=5)
    emulator.mark_posted(post_id, "a")
    emulator.mark_posted(post_id, "b")
    final = post_data(http, emulator, post_id)
    assert final["status"] == "posted"
    assert final["accounts"]["states"][1]["last_attempted_at"] == "2025-01-20T12:10:11.205Z"


def test_set_account_state_accepts_provider_strings_datetimes_and_extra_fields(
    emulator: GenviralEmulator, http: requests.Session
) -> None:
    post_id = emulator.create_post(accounts=["a"])

    emulator.set_account_state(post_id, "a", status="deleted", last_attempted_at=NOW, attempts=3)

    state = post_data(http, emulator, post_id)["accounts"]["states"][0]
    assert state["status"] == "deleted"
    assert state["last_attempted_at"] == "2025-01-20T12:05:11.205Z"
    assert state["attempts"] == 3
    with pytest.raises(KeyError):
        emulator.set_account_state(post_id, "nope", status="posted")
    with pytest.raises(TypeError):
        emulator.set_account_state(post_id, "a", published_url=42)


def test_reschedule_moves_waiting_accounts_between_scheduled_and_pending(
    emulator: GenviralEmulator, http: requests.Session
) -> None:
    post_id = emulator.create_post(accounts=["a", "b"])
    emulator.mark_failed(post_id, "b")

    emulator.reschedule(post_id, None)

    data = post_data(http, emulator, post_id)
    assert data["scheduled_at"] is None
    assert [state["status"] for state in data["accounts"]["states"]] == ["pending", "failed"]

    emulator.reschedule(post_id, datetime(2025, 3, 1, tzinfo=UTC))
    data = post_data(http, emulator, post_id)
    assert data["scheduled_at"] == "2025-03-01T00:00:00.000Z"
    assert data["accounts"]["states"][0]["status"] == "scheduled"


def test_create_post_rejects_bad_accounts_and_duplicate_ids(emulator: GenviralEmulator) -> None:
    post_id = emulator.create_post(post_id="11111111-1111-1111-1111-111111111111")

    assert post_id == "11111111-1111-1111-1111-111111111111"
    with pytest.raises(ValueError, match="already exists"):
        emulator.create_post(post_id=post_id)
    with pytest.raises(ValueError, match="unique"):
        emulator.create_post(accounts=["a", "a"])
    with pytest.raises(ValueError, match="at least one"):
        emulator.create_post(accounts=0)


# ---------------------------------------------------------------- GET /posts


def test_list_is_newest_first_with_a_summary(emulator: GenviralEmulator, http: requests.Session) -> None:
    old = emulator.create_post(created_at=NOW - timedelta(days=2))
    new = emulator.create_post(created_at=NOW)
    middle = emulator.create_post(created_at=NOW - timedelta(days=1), accounts=["a"])
    emulator.mark_posted(middle, "a")

    response = list_posts(http, emulator)

    body = response.json()
    assert (response.status_code, body["message"]) == (200, "Posts retrieved")
    assert [post["id"] for post in body["data"]["posts"]] == [new, middle, old]
    assert body["data"]["posts"][1] == emulator.post_json(middle)
    assert body["data"]["summary"] == {
        "total": 3,
        "pending": 2,
        "published": 1,
        "by_status": {"scheduled": 2, "posted": 1},
    }


def test_list_filters_on_status(emulator: GenviralEmulator, http: requests.Session) -> None:
    failed = emulator.create_post(accounts=["a"])
    emulator.create_post()
    emulator.mark_failed(failed, "a")

    posts = list_posts(http, emulator, status="failed").json()["data"]["posts"]

    assert [post["id"] for post in posts] == [failed]
    assert list_posts(http, emulator, status="partial").json()["data"]["posts"] == []


def test_list_since_and_until_are_inclusive_on_created_at(emulator: GenviralEmulator, http: requests.Session) -> None:
    ids = [emulator.create_post(created_at=NOW + timedelta(hours=hour)) for hour in range(4)]

    def window(**params: str) -> list[str]:
        return [post["id"] for post in list_posts(http, emulator, **params).json()["data"]["posts"]]

    assert window(since=format_timestamp(NOW + timedelta(hours=1))) == [ids[3], ids[2], ids[1]]
    assert window(until=format_timestamp(NOW + timedelta(hours=1))) == [ids[1], ids[0]]
    assert window(since=(NOW + timedelta(hours=1)).isoformat(), until=(NOW + timedelta(hours=2)).isoformat()) == [
        ids[2],
        ids[1],
    ]


@pytest.mark.parametrize(("limit", "expected"), [(None, 50), ("0", 1), ("-3", 1), ("7", 7), ("500", 100)])
def test_list_limit_defaults_to_50_and_is_clamped(
    emulator: GenviralEmulator, http: requests.Session, limit: str | None, expected: int
) -> None:
    for _ in range(101):
        emulator.create_post()

    params = {} if limit is None else {"limit": limit}
    data = list_posts(http, emulator, **params).json()["data"]

    assert len(data["posts"]) == expected
    assert data["summary"]["total"] == 101


@pytest.mark.parametrize(
    ("params", "error_code"),
    [
        ({"limit": "ten"}, "invalid_query_parameter"),
        ({"since": "yesterday"}, "invalid_since"),
        ({"since": ""}, "invalid_since"),
        ({"until": "2025-13-45T00:00:00Z"}, "invalid_until"),
    ],
)
def test_list_rejects_bad_query_parameters(
    emulator: GenviralEmulator, http: requests.Session, params: dict[str, str], error_code: str
) -> None:
    assert_error(list_posts(http, emulator, **params), 400, error_code)


def test_unknown_path_is_404_and_wrong_method_is_405(emulator: GenviralEmulator, http: requests.Session) -> None:
    post_id = emulator.create_post()

    assert_error(http.get(f"{emulator.base_url}/subscription", timeout=2), 404, "not_found")
    assert_error(http.get(f"{emulator.base_url}/posts/{post_id}/extra", timeout=2), 404, "not_found")
    not_allowed = http.delete(f"{emulator.base_url}/posts/{post_id}", timeout=2)
    assert_error(not_allowed, 405, "method_not_allowed")
    assert not_allowed.headers["Allow"] == "GET"
    assert_error(http.post(f"{emulator.base_url}/posts", json={"caption": "x"}, timeout=2), 405, "method_not_allowed")
    assert get_post(http, emulator, post_id).status_code == 200  # the connection survived the bodies


# ---------------------------------------------------------------- faults


@pytest.mark.parametrize("retry_after", ["1", "0", "-5", "99999", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_rate_limited_sends_retry_after_verbatim(
    emulator: GenviralEmulator, http: requests.Session, retry_after: str
) -> None:
    post_id = emulator.create_post()
    emulator.inject(Fault.rate_limited(retry_after))

    response = get_post(http, emulator, post_id)

    assert_error(response, 429, "rate_limited")
    assert response.headers["Retry-After"] == retry_after
    assert get_post(http, emulator, post_id).status_code == 200


def test_rate_limited_without_retry_after(emulator: GenviralEmulator, http: requests.Session) -> None:
    post_id = emulator.create_post()
    emulator.inject(Fault.rate_limited(None))

    response = get_post(http, emulator, post_id)

    assert_error(response, 429, "rate_limited")
    assert "Retry-After" not in response.headers


def test_server_error_is_get_failed_or_list_failed(emulator: GenviralEmulator, http: requests.Session) -> None:
    post_id = emulator.create_post()
    emulator.inject(Fault.server_error(), times=2)

    assert_error(get_post(http, emulator, post_id), 500, "get_failed")
    assert_error(list_posts(http, emulator), 500, "list_failed")


@pytest.mark.parametrize("status", [502, 504])
def test_html_fault_is_a_gateway_page(emulator: GenviralEmulator, http: requests.Session, status: int) -> None:
    post_id = emulator.create_post()
    emulator.inject(Fault.html(status))

    response = get_post(http, emulator, post_id)

    assert response.status_code == status
    assert response.headers["Content-Type"] == "text/html"
    assert response.text.startswith("<html>")
    with pytest.raises(ValueError, match="Expecting value"):
        json.loads(response.text)


def test_raw_fault_sends_exactly_the_given_answer(emulator: GenviralEmulator, http: requests.Session) -> None:
    post_id = emulator.create_post()
    emulator.inject(Fault.raw(418, b"short and stout", {"Content-Type": "text/plain", "X-Teapot": "yes"}))
    emulator.inject(Fault.raw(200, b""))

    teapot = get_post(http, emulator, post_id)
    empty = get_post(http, emulator, post_id)

    assert (teapot.status_code, teapot.content) == (418, b"short and stout")
    assert teapot.headers["X-Teapot"] == "yes"
    assert (empty.status_code, empty.content, empty.headers["Content-Length"]) == (200, b"", "0")
    assert "Content-Type" not in empty.headers


def test_not_ok_fault_is_http_200_with_ok_false(emulator: GenviralEmulator, http: requests.Session) -> None:
    post_id = emulator.create_post()
    emulator.inject(Fault.not_ok())

    response = get_post(http, emulator, post_id)

    assert response.status_code == 200
    body = response.json()
    assert (body["ok"], body["code"]) == (False, 200)
    assert "data" not in body


def test_truncated_json_is_cut_with_a_matching_content_length(
    emulator: GenviralEmulator, http: requests.Session
) -> None:
    post_id = emulator.create_post()
    full = json.dumps({"ok": True, "code": 200, "message": "Post retrieved", "data": emulator.post_json(post_id)})
    emulator.inject(Fault.truncated_json())

    response = get_post(http, emulator, post_id)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert int(response.headers["Content-Length"]) == len(response.content) < len(full.encode())
    assert full.encode().startswith(response.content)
    with pytest.raises(requests.exceptions.JSONDecodeError):
        response.json()


def test_reset_aborts_the_connection_without_a_response(emulator: GenviralEmulator, http: requests.Session) -> None:
    post_id = emulator.create_post()
    emulator.inject(Fault.reset())

    with pytest.raises(requests.exceptions.ConnectionError):
        get_post(http, emulator, post_id)

    assert emulator.requests_log[-1].status == 0
    assert get_post(http, emulator, post_id).status_code == 200


def test_hang_triggers_a_client_read_timeout_and_stop_interrupts_it(
    emulator: GenviralEmulator, http: requests.Session
) -> None:
    post_id = emulator.create_post()
    emulator.inject(Fault.hang(5))

    with pytest.raises(requests.exceptions.ReadTimeout):
        http.get(f"{emulator.base_url}/posts/{post_id}", timeout=(2, 0.2))
    started = time.monotonic()
    emulator.stop()

    assert time.monotonic() - started < 1.5
    assert emulator.calls(post_id) == 1
    assert emulator.requests_log[-1].status == 0  # the hung request ended without an answer


def test_short_hang_answers_normally(emulator: GenviralEmulator, http: requests.Session) -> None:
    post_id = emulator.create_post()
    emulator.inject(Fault.hang(0.05))

    response = get_post(http, emulator, post_id)

    assert response.status_code == 200
    assert response.json()["data"]["id"] == post_id


def test_a_hang_without_seconds_holds_until_released(emulator: GenviralEmulator, http: requests.Session) -> None:
    post_id = emulator.create_post()
    emulator.inject(Fault.hang())
    answered: list[int] = []
    thread = threading.Thread(target=lambda: answered.append(get_post(http, emulator, post_id).status_code))
    thread.start()
    emulator.wait_held(1)
    assert answered == []

    emulator.release_hangs()
    thread.join(timeout=5)

    assert answered == [200]


def test_trickle_sends_the_normal_answer_a_byte_at_a_time(emulator: GenviralEmulator, http: requests.Session) -> None:
    post_id = emulator.create_post()
    emulator.inject(Fault.trickle(0.001))

    response = get_post(http, emulator, post_id)

    assert response.status_code == 200
    assert response.json()["data"]["id"] == post_id


def test_trickle_with_head_sends_the_status_line_and_headers_a_byte_at_a_time(emulator: GenviralEmulator) -> None:
    post_id = emulator.create_post()
    emulator.inject(Fault.trickle(0.005, head=True))
    url = urlsplit(f"{emulator.base_url}/posts/{post_id}")
    host, port = url.hostname or "", url.port or 80
    request = f"GET {url.path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {DEFAULT_TOKEN}\r\n"
    started = time.monotonic()

    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(f"{request}Connection: close\r\n\r\n".encode())
        answer = b"".join(iter(lambda: connection.recv(65536), b""))

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert json.loads(body)["data"]["id"] == post_id
    assert time.monotonic() - started >= (len(head) + 4) * 0.005  # each byte of the head waited for its turn


def test_nested_and_error_faults_answer_exactly_that(emulator: GenviralEmulator, http: requests.Session) -> None:
    post_id = emulator.create_post()
    emulator.inject(Fault.nested(3, status=500))
    emulator.inject(Fault.error(404, "m" * 10_000, "not_found"))

    nested, error = get_post(http, emulator, post_id), get_post(http, emulator, post_id)

    assert (nested.status_code, nested.content) == (500, b"[[[]]]")
    assert error.status_code == 404
    assert error.json() == {"ok": False, "code": 404, "message": "m" * 10_000, "error_code": "not_found"}


def test_body_fault_wraps_any_data_in_a_success_envelope(emulator: GenviralEmulator, http: requests.Session) -> None:
    post_id = emulator.create_post()
    emulator.inject(Fault.body({"id": post_id, "status": 7, "accounts": None}))

    body = get_post(http, emulator, post_id).json()

    assert body == {
        "ok": True,
        "code": 200,
        "message": "Post retrieved",
        "data": {"id": post_id, "status": 7, "accounts": None},
    }


def test_faults_are_consumed_in_order_and_times_is_honoured(emulator: GenviralEmulator, http: requests.Session) -> None:
    post_id = emulator.create_post()
    emulator.inject(Fault.rate_limited(), times=2)
    emulator.inject(Fault.server_error())

    statuses = [get_post(http, emulator, post_id).status_code for _ in range(4)]

    assert statuses == [429, 429, 500, 200]
    assert emulator.pending_faults() == 0


def test_targeted_faults_only_hit_their_post_and_unauthorized_requests_consume_none(
    emulator: GenviralEmulator, http: requests.Session
) -> None:
    target = emulator.create_post()
    other = emulator.create_post()
    emulator.inject(Fault.server_error(), post_id=target)

    assert requests.get(f"{emulator.base_url}/posts/{target}", timeout=2).status_code == 401
    assert get_post(http, emulator, other).status_code == 200
    assert list_posts(http, emulator).status_code == 200
    assert get_post(http, emulator, target).status_code == 500
    assert get_post(http, emulator, target).status_code == 200


def test_clear_faults_drops_everything_queued(emulator: GenviralEmulator, http: requests.Session) -> None:
    post_id = emulator.create_post()
    emulator.inject(Fault.server_error(), times=3)
    emulator.inject(Fault.reset(), post_id=post_id)

    emulator.clear_faults()

    assert emulator.pending_faults() == 0
    assert get_post(http, emulator, post_id).status_code == 200


def test_fault_factories_validate_their_arguments() -> None:
    with pytest.raises(ValueError, match="seconds"):
        Fault.hang(-1)
    with pytest.raises(ValueError, match="status"):
        Fault.raw(99, b"")
    with pytest.raises(ValueError, match="line breaks"):
        Fault.rate_limited("1\r\nX-Injected: yes")


# ---------------------------------------------------------------- observation


def test_calls_counts_every_get_post_whatever_the_answer(emulator: GenviralEmulator, http: requests.Session) -> None:
    first = emulator.create_post()
    second = emulator.create_post()
    emulator.inject(Fault.server_error(), post_id=first)

    get_post(http, emulator, first)
    get_post(http, emulator, first)
    requests.get(f"{emulator.base_url}/posts/{first}", timeout=2)
    get_post(http, emulator, second)
    get_post(http, emulator, "11111111-1111-1111-1111-111111111111")
    list_posts(http, emulator)

    assert emulator.calls(first) == 3
    assert emulator.calls(second) == 1
    assert emulator.calls() == 5
    assert len(emulator.requests_log) == 6
    assert [record.status for record in emulator.requests_log] == [500, 200, 401, 200, 404, 200]


def test_requests_log_and_output_never_contain_the_token(
    emulator: GenviralEmulator, http: requests.Session, capfd: pytest.CaptureFixture[str]
) -> None:
    post_id = emulator.create_post()

    get_post(http, emulator, post_id)
    list_posts(http, emulator, limit="5", status="posted")
    requests.get(f"{emulator.base_url}/posts/{post_id}", headers={"Authorization": "Bearer gva_wrong.key"}, timeout=2)

    assert emulator.requests_log[1].query == {"limit": "5", "status": "posted"}
    assert emulator.requests_log[0].post_id == post_id
    logged = repr(emulator.requests_log)
    assert "s3cr3t" not in logged
    assert "gva_wrong" not in logged
    out, err = capfd.readouterr()
    assert "s3cr3t" not in out + err
    assert "GET /api" not in err


def test_stop_is_idempotent_and_base_url_needs_a_running_server(clock: SteppingClock) -> None:
    emu = GenviralEmulator(clock=clock)
    with pytest.raises(RuntimeError):
        _ = emu.base_url

    emu.start()
    url = emu.base_url
    emu.stop()
    emu.stop()

    assert url.startswith("http://127.0.0.1:")
    assert url.endswith("/api/partner/v1")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{url}/posts", timeout=1)


# ---------------------------------------------------------------- GET /accounts


def list_accounts(http: requests.Session, emu: GenviralEmulator) -> requests.Response:
    return http.get(f"{emu.base_url}/accounts", timeout=2)


def accounts_data(http: requests.Session, emu: GenviralEmulator) -> dict[str, Any]:
    response = list_accounts(http, emu)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_accounts_lists_every_account_a_post_was_created_for_in_workspace_scope(
    emulator: GenviralEmulator, http: requests.Session
) -> None:
    emulator.create_post(accounts=["acct-a", "acct-b"])
    emulator.set_account("acct-a", platform="instagram", username="cafe", display_name="Cafe", type="hosted")

    data = accounts_data(http, emulator)

    assert data["scope"] == "workspace"
    assert isinstance(data["owner_user_id"], str)
    assert isinstance(data["workspace_id"], str)
    by_id = {account["id"]: account for account in data["accounts"]}
    assert set(by_id) == {"acct-a", "acct-b"}
    assert by_id["acct-a"] | {"capabilities": None} == {
        "id": "acct-a",
        "platform": "instagram",
        "type": "hosted",
        "username": "cafe",
        "display_name": "Cafe",
        "status": "active",
        "workspace_id": data["workspace_id"],
        "capabilities": None,
    }
    assert by_id["acct-b"]["platform"] == "tiktok"
    assert by_id["acct-b"]["type"] == "byo"
    assert "supported_content_kinds" in by_id["acct-b"]["capabilities"]


def test_accounts_lists_only_active_accounts_in_the_key_scope(
    emulator: GenviralEmulator, http: requests.Session
) -> None:
    emulator.create_post(accounts=["acct-a", "acct-b", "acct-c", "acct-d"])
    emulator.set_account("acct-b", status="revoked")
    emulator.remove_account("acct-c")
    emulator.scope_accounts = {"acct-a", "acct-b", "acct-c"}

    assert [account["id"] for account in accounts_data(http, emulator)["accounts"]] == ["acct-a"]

    emulator.scope_accounts = {"acct-x"}
    assert accounts_data(http, emulator)["accounts"] == []


def test_a_paused_or_revoked_account_can_be_listed_with_its_status_and_restored(
    emulator: GenviralEmulator, http: requests.Session
) -> None:
    emulator.create_post(accounts=["acct-a", "acct-b", "acct-c"])
    emulator.set_account("acct-a", status="paused")
    emulator.set_account("acct-b", status="revoked")
    emulator.list_inactive_accounts = True

    statuses = {account["id"]: account["status"] for account in accounts_data(http, emulator)["accounts"]}
    assert statuses == {"acct-a": "paused", "acct-b": "revoked", "acct-c": "active"}

    emulator.list_inactive_accounts = False
    emulator.restore_account("acct-a")
    assert [account["id"] for account in accounts_data(http, emulator)["accounts"]] == ["acct-a", "acct-c"]


def test_accounts_in_personal_scope_have_no_workspace(emulator: GenviralEmulator, http: requests.Session) -> None:
    emulator.create_post(accounts=["acct-a"])
    emulator.account_scope = "personal"

    data = accounts_data(http, emulator)

    assert data["scope"] == "personal"
    assert data["workspace_id"] is None
    assert [account["workspace_id"] for account in data["accounts"]] == [None]


def test_set_account_rejects_unknown_fields(emulator: GenviralEmulator) -> None:
    with pytest.raises(TypeError, match="unknown account fields"):
        emulator.set_account("acct-a", followers=3)


def test_accounts_errors_auth_plan_and_server(emulator: GenviralEmulator, http: requests.Session) -> None:
    assert_error(
        http.get(f"{emulator.base_url}/accounts", headers={"Authorization": "Bearer nope"}, timeout=2),
        401,
        "invalid_token",
    )
    for plan_error, status in (("subscription_required", 402), ("tier_not_allowed", 403)):
        emulator.plan_error = plan_error
        assert_error(list_accounts(http, emulator), status, plan_error)
    emulator.plan_error = None
    emulator.inject(Fault.server_error(), accounts=True)

    assert_error(list_accounts(http, emulator), 500, "accounts_failed")
    assert list_accounts(http, emulator).status_code == 200


def test_post_faults_leave_accounts_alone_and_accounts_faults_leave_posts_alone(
    emulator: GenviralEmulator, http: requests.Session
) -> None:
    post_id = emulator.create_post()
    emulator.inject(Fault.server_error())
    assert list_accounts(http, emulator).status_code == 200
    assert_error(get_post(http, emulator, post_id), 500, "get_failed")

    emulator.inject(Fault.html(502), accounts=True)
    assert get_post(http, emulator, post_id).status_code == 200
    assert list_accounts(http, emulator).status_code == 502
    with pytest.raises(ValueError, match="cannot target a post"):
        emulator.inject(Fault.server_error(), post_id=post_id, accounts=True)
