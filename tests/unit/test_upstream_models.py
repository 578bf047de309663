"""The upstream models: what `GET /posts/{id}` may answer, and what the relay refuses."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from genviral_relay.models.upstream import (
    AccountState,
    Envelope,
    OtherMedia,
    PinterestSettings,
    Post,
    SlideshowMedia,
    VideoMedia,
)

# The documented example of GET /posts/{id} (docs.genviral.io/api-reference/get-post), verbatim.
SEED_RESPONSE = """
{
  "ok": true,
  "code": 200,
  "message": "Post retrieved",
  "data": {
    "id": "11111111-1111-1111-1111-111111111111",
    "caption": "Holiday drops start Monday!",
    "status": "scheduled",
    "scheduled_at": "2025-02-01T15:00:00Z",
    "created_at": "2025-01-20T12:05:11.205Z",
    "media": {
      "type": "video",
      "url": "https://cdn.example.com/video.mp4"
    },
    "music_url": null,
    "tiktok": null,
    "pinterest": {
      "board_id": "123456789012345678",
      "title": "Dinner board",
      "link": "https://example.com/recipes",
      "tags": ["Italian recipes", "easy dinner"]
    },
    "accounts": {
      "total": 2,
      "states": [
        {
          "account_id": "0f4f54d4-8cce-4fb7-8c7b-befbcb8af812",
          "status": "scheduled",
          "published_at": null,
          "error_message": null,
          "last_attempted_at": null,
          "published_url": null
        },
        {
          "account_id": "6b0c8c9c-55ac-4fcb-85ec-70b5a8b0d089",
          "status": "scheduled",
          "published_at": null,
          "error_message": null,
          "last_attempted_at": null,
          "published_url": null
        }
      ]
    }
  }
}
"""
ACCOUNT_A = "0f4f54d4-8cce-4fb7-8c7b-befbcb8af812"
ACCOUNT_B = "6b0c8c9c-55ac-4fcb-85ec-70b5a8b0d089"


def seed() -> dict[str, Any]:
    """A fresh deep copy of the seed's `data`, safe to mutate."""
    return copy.deepcopy(json.loads(SEED_RESPONSE)["data"])


def state(account_id: str = ACCOUNT_A, status: str = "scheduled", **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "account_id": account_id,
        "status": status,
        "published_at": None,
        "error_message": None,
        "last_attempted_at": None,
        "published_url": None,
    }
    document.update(fields)
    return document


# ---------------------------------------------------------------- the seed example


def test_seed_example_parses_with_every_field() -> None:
    post = Post.model_validate(seed())

    assert post.id == "11111111-1111-1111-1111-111111111111"
    assert post.caption == "Holiday drops start Monday!"
    assert post.status == "scheduled"
    assert post.scheduled_at == "2025-02-01T15:00:00Z"
    assert post.created_at == "2025-01-20T12:05:11.205Z"
    assert isinstance(post.media, VideoMedia)
    assert post.media.type == "video"
    assert post.media.url == "https://cdn.example.com/video.mp4"
    assert post.music_url is None
    assert post.tiktok is None
    assert post.pinterest == PinterestSettings(
        board_id="123456789012345678",
        title="Dinner board",
        link="https://example.com/recipes",
        tags=["Italian recipes", "easy dinner"],
    )
    assert post.accounts.total == 2
    assert [s.account_id for s in post.accounts.states] == [ACCOUNT_A, ACCOUNT_B]
    for account in post.accounts.states:
        assert account.status == "scheduled"
        assert account.published_at is None
        assert account.error_message is None
        assert account.last_attempted_at is None
        assert account.published_url is None


def test_seed_envelope_parses_and_its_data_is_the_post() -> None:
    envelope = Envelope.model_validate_json(SEED_RESPONSE)

    assert envelope.ok is True
    assert envelope.code == 200
    assert envelope.message == "Post retrieved"
    assert envelope.error_code is None
    assert Post.model_validate(envelope.data) == Post.model_validate(seed())


def test_posted_and_failed_state_fields_are_kept_verbatim() -> None:
    document = seed()
    document["accounts"]["states"] = [
        state(
            ACCOUNT_A,
            "posted",
            published_at="2025-02-01T15:00:07.120Z",
            last_attempted_at="2025-02-01T15:00:05.000Z",
            published_url="https://www.tiktok.com/@shop/video/7300000000000000000",
        ),
        state(
            ACCOUNT_B,
            "failed",
            error_message="spam_risk_too_many_pending_share",
            last_attempted_at="2025-02-01T15:00:06.000Z",
        ),
    ]

    posted, failed = Post.model_validate(document).accounts.states

    assert posted == AccountState(
        account_id=ACCOUNT_A,
        status="posted",
        published_at="2025-02-01T15:00:07.120Z",
        error_message=None,
        last_attempted_at="2025-02-01T15:00:05.000Z",
        published_url="https://www.tiktok.com/@shop/video/7300000000000000000",
    )
    assert failed.status == "failed"
    assert failed.error_message == "spam_risk_too_many_pending_share"
    assert failed.last_attempted_at == "2025-02-01T15:00:06.000Z"
    assert failed.published_at is None
    assert failed.published_url is None


# ---------------------------------------------------------------- tolerated variants


def test_slideshow_media_keeps_urls_in_order() -> None:
    document = seed()
    urls = ["https://cdn.example.com/3.png", "https://cdn.example.com/1.jpg", "https://cdn.example.com/2.jpg"]
    document["media"] = {"type": "slideshow", "urls": urls}

    media = Post.model_validate(document).media

    assert isinstance(media, SlideshowMedia)
    assert media.type == "slideshow"
    assert media.urls == urls


def test_text_only_post_has_no_media() -> None:
    document = seed()
    document["media"] = None

    assert Post.model_validate(document).media is None


def test_unknown_media_type_is_kept_with_its_fields() -> None:
    document = seed()
    document["media"] = {"type": "carousel", "items": [{"url": "https://cdn.example.com/a.jpg"}], "count": 1}

    media = Post.model_validate(document).media

    assert isinstance(media, OtherMedia)
    assert media.type == "carousel"
    assert media.model_dump() == {
        "type": "carousel",
        "items": [{"url": "https://cdn.example.com/a.jpg"}],
        "count": 1,
    }


def test_video_media_with_extra_metadata_is_still_a_video() -> None:
    document = seed()
    document["media"] = {"type": "video", "url": "https://cdn.example.com/v.mp4", "duration_sec": 12, "width": 1080}

    media = Post.model_validate(document).media

    assert isinstance(media, VideoMedia)
    assert media.url == "https://cdn.example.com/v.mp4"


def test_pinterest_with_absent_keys_defaults_them_to_none() -> None:
    document = seed()
    document["pinterest"] = {"board_id": "123456789012345678", "title": "Dinner board", "tags": ["easy dinner"]}

    pinterest = Post.model_validate(document).pinterest

    assert pinterest is not None
    assert pinterest.board_id == "123456789012345678"
    assert pinterest.title == "Dinner board"
    assert pinterest.link is None
    assert pinterest.tags == ["easy dinner"]


def test_pinterest_with_only_a_board() -> None:
    document = seed()
    document["pinterest"] = {"board_id": "42"}

    assert Post.model_validate(document).pinterest == PinterestSettings(board_id="42")


def test_pinterest_null() -> None:
    document = seed()
    document["pinterest"] = None

    assert Post.model_validate(document).pinterest is None


def test_tiktok_object_is_kept_as_given() -> None:
    tiktok = {
        "title": "Drop #1",
        "description": "Holiday drops",
        "post_mode": "MEDIA_UPLOAD",
        "privacy_level": "SELF_ONLY",
        "disable_comment": False,
        "auto_add_music": True,
        "video_cover_timestamp_ms": 1500,
    }
    document = seed()
    document["tiktok"] = tiktok
    document["pinterest"] = None

    post = Post.model_validate(document)

    assert post.tiktok == tiktok
    assert post.pinterest is None


def test_unknown_fields_are_ignored_at_every_level() -> None:
    document = seed()
    document["client_reference"] = "order-42"
    document["settings"] = {"youtube": {"privacy": "public"}}
    document["updated_at"] = "2025-02-01T15:00:00Z"
    document["media"]["mime_type"] = "video/mp4"
    document["pinterest"]["alt_text"] = "A plate of pasta"
    document["accounts"]["in_scope"] = 2
    for account in document["accounts"]["states"]:
        account["platform"] = "tiktok"
        account["attempts"] = 3

    post = Post.model_validate(document)

    assert post == Post.model_validate(seed())
    dumped = post.model_dump()
    assert "client_reference" not in dumped
    assert "settings" not in dumped
    assert "updated_at" not in dumped
    assert "mime_type" not in dumped["media"]
    assert "alt_text" not in dumped["pinterest"]
    assert "in_scope" not in dumped["accounts"]
    assert all("platform" not in s and "attempts" not in s for s in dumped["accounts"]["states"])


def test_the_external_id_is_read_when_genviral_gives_one() -> None:
    assert Post.model_validate({**seed(), "external_id": "order-42"}).external_id == "order-42"
    assert Post.model_validate(seed()).external_id is None


@pytest.mark.parametrize("status", ["void", "deleted", "processing", "canceled", "PUBLISHED-ON-PROVIDER"])
def test_unknown_status_strings_are_kept_at_post_and_account_level(status: str) -> None:
    document = seed()
    document["status"] = status
    document["accounts"]["states"][1]["status"] = status

    post = Post.model_validate(document)

    assert post.status == status
    assert [s.status for s in post.accounts.states] == ["scheduled", status]


def test_scheduled_at_null_for_immediate_publish() -> None:
    document = seed()
    document["scheduled_at"] = None
    document["status"] = "pending"

    post = Post.model_validate(document)

    assert post.scheduled_at is None
    assert post.status == "pending"


def test_gen_a_post_without_tiktok_and_pinterest_keys() -> None:
    document = seed()
    document["id"] = "post_789"
    del document["tiktok"]
    del document["pinterest"]

    post = Post.model_validate(document)

    assert post.id == "post_789"
    assert post.tiktok is None
    assert post.pinterest is None
    assert post.accounts.total == 2


def test_state_with_only_account_id_and_status_defaults_the_rest_to_none() -> None:
    document = seed()
    document["accounts"] = {"total": 1, "states": [{"account_id": ACCOUNT_A, "status": "pending"}]}

    (account,) = Post.model_validate(document).accounts.states

    assert account == AccountState(account_id=ACCOUNT_A, status="pending")
    assert account.published_at is None
    assert account.error_message is None
    assert account.last_attempted_at is None
    assert account.published_url is None


def test_parsed_post_is_frozen() -> None:
    post = Post.model_validate(seed())

    with pytest.raises(ValidationError):
        post.status = "posted"  # type: ignore[misc]


# ---------------------------------------------------------------- rejections


def _without_accounts(document: dict[str, Any]) -> None:
    del document["accounts"]


def _accounts_null(document: dict[str, Any]) -> None:
    document["accounts"] = None


def _states_not_a_list(document: dict[str, Any]) -> None:
    document["accounts"]["states"] = {ACCOUNT_A: "scheduled"}


def _states_a_string(document: dict[str, Any]) -> None:
    document["accounts"]["states"] = "scheduled"


def _states_missing(document: dict[str, Any]) -> None:
    del document["accounts"]["states"]


def _total_missing(document: dict[str, Any]) -> None:
    del document["accounts"]["total"]


def _duplicate_account_ids(document: dict[str, Any]) -> None:
    document["accounts"]["states"][1]["account_id"] = ACCOUNT_A


def _account_without_account_id(document: dict[str, Any]) -> None:
    del document["accounts"]["states"][0]["account_id"]


def _account_id_empty(document: dict[str, Any]) -> None:
    document["accounts"]["states"][0]["account_id"] = ""


def _account_without_status(document: dict[str, Any]) -> None:
    del document["accounts"]["states"][0]["status"]


def _post_status_number(document: dict[str, Any]) -> None:
    document["status"] = 3


def _post_status_missing(document: dict[str, Any]) -> None:
    del document["status"]


def _post_status_empty(document: dict[str, Any]) -> None:
    document["status"] = ""


def _account_status_number(document: dict[str, Any]) -> None:
    document["accounts"]["states"][0]["status"] = 1


def _total_negative(document: dict[str, Any]) -> None:
    document["accounts"]["total"] = -1


def _total_not_a_number(document: dict[str, Any]) -> None:
    document["accounts"]["total"] = "two"


def _id_missing(document: dict[str, Any]) -> None:
    del document["id"]


def _id_number(document: dict[str, Any]) -> None:
    document["id"] = 11111111


def _published_url_number(document: dict[str, Any]) -> None:
    document["accounts"]["states"][0]["published_url"] = 404


def _tiktok_a_list(document: dict[str, Any]) -> None:
    document["tiktok"] = ["DIRECT_POST"]


def _pinterest_tags_a_string(document: dict[str, Any]) -> None:
    document["pinterest"]["tags"] = "Italian recipes"


def _media_a_string(document: dict[str, Any]) -> None:
    document["media"] = "https://cdn.example.com/video.mp4"


def _media_without_type(document: dict[str, Any]) -> None:
    document["media"] = {"url": "https://cdn.example.com/video.mp4"}


REJECTED = [
    _without_accounts,
    _accounts_null,
    _states_not_a_list,
    _states_a_string,
    _states_missing,
    _total_missing,
    _duplicate_account_ids,
    _account_without_account_id,
    _account_id_empty,
    _account_without_status,
    _post_status_number,
    _post_status_missing,
    _post_status_empty,
    _account_status_number,
    _total_negative,
    _total_not_a_number,
    _id_missing,
    _id_number,
    _published_url_number,
    _tiktok_a_list,
    _pinterest_tags_a_string,
    _media_a_string,
    _media_without_type,
]


@pytest.mark.parametrize("breakage", REJECTED, ids=[f.__name__.lstrip("_") for f in REJECTED])
def test_malformed_post_is_rejected(breakage: Any) -> None:
    document = seed()
    breakage(document)

    with pytest.raises(ValidationError):
        Post.model_validate(document)


def test_duplicate_account_ids_error_names_the_problem() -> None:
    document = seed()
    _duplicate_account_ids(document)

    with pytest.raises(ValidationError, match="same account_id more than once"):
        Post.model_validate(document)


def test_a_whole_envelope_is_not_a_post() -> None:
    with pytest.raises(ValidationError):
        Post.model_validate(json.loads(SEED_RESPONSE))


# ---------------------------------------------------------------- envelopes


def test_error_envelope_has_no_data() -> None:
    envelope = Envelope.model_validate(
        {"ok": False, "code": 401, "message": "API key not found", "error_code": "invalid_token"}
    )

    assert envelope.ok is False
    assert envelope.code == 401
    assert envelope.message == "API key not found"
    assert envelope.error_code == "invalid_token"
    assert envelope.data is None


@pytest.mark.parametrize(
    ("code", "error_code"),
    [(402, "subscription_required"), (403, "tier_not_allowed"), (404, "not_found"), (500, "get_failed")],
)
def test_documented_error_envelopes(code: int, error_code: str) -> None:
    envelope = Envelope.model_validate_json(
        json.dumps({"ok": False, "code": code, "message": "nope", "error_code": error_code})
    )

    assert (envelope.ok, envelope.code, envelope.error_code) == (False, code, error_code)


def test_ok_envelope_without_data_and_with_extra_fields() -> None:
    envelope = Envelope.model_validate({"ok": True, "code": 200, "message": "Accounts retrieved", "request_id": "r1"})

    assert envelope.ok is True
    assert envelope.data is None
    assert "request_id" not in envelope.model_dump()


def test_minimal_envelope_only_needs_ok() -> None:
    envelope = Envelope.model_validate({"ok": False})

    assert envelope.ok is False
    assert envelope.code is None
    assert envelope.message is None
    assert envelope.error_code is None


@pytest.mark.parametrize(
    "document",
    [
        {"code": 200, "message": "Post retrieved", "data": {}},
        {"ok": "maybe", "code": 200},
        {"ok": True, "code": "two hundred"},
        {"ok": True, "message": ["a", "list"]},
    ],
)
def test_broken_envelopes_are_rejected(document: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Envelope.model_validate(document)


@pytest.mark.parametrize("text", ['["ok", true]', '"ok"', "null", "<html>502</html>", '{"ok": true, "code": 2'])
def test_non_envelope_json_is_rejected(text: str) -> None:
    with pytest.raises(ValidationError):
        Envelope.model_validate_json(text)


@pytest.mark.parametrize(
    "media",
    [{"type": "video"}, {"type": "video", "url": 5}, {"type": "slideshow", "urls": "x"}, {"type": "slideshow"}],
)
def test_known_media_type_with_the_wrong_shape_is_rejected(media: dict[str, Any]) -> None:
    document = json.loads(SEED_RESPONSE)["data"]
    document["media"] = media

    with pytest.raises(ValidationError):
        Post.model_validate(document)
