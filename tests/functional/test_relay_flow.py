"""The relay end to end: API Gateway, scheduler and SQS events through the template's handlers,
Genviral on loopback HTTP, AWS on moto; events checked as subscribers receive them."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from genviral_relay.aws.work_queue import SqsWorkQueue
from genviral_relay.models.messages import CheckRequest
from genviral_relay.polling.bulk_refresh import WINDOW_GAP
from local.emulator import Fault, GenviralEmulator
from local.runner import LocalRunner
from local.stack import MotoStack
from tests.conftest import SYNC, TOKEN
from tests.functional.shared_rig import stored_item
from tests.functional.subscribers import drain, transitions
from tests.support.doubles import SteppingClock

_APART = itertools.count(1)


def publishing_now(emulator: GenviralEmulator, accounts: int = 1) -> tuple[str, list[str]]:
    """A post in its publishing window: due every tick until its accounts finish. Each is created apart from
    the others (more than a refresh window's gap), so that each is checked on its own; posts created together
    are refreshed by one list call (tests/unit/test_bulk_refresh_spec.py, and below)."""
    created_at = datetime.now(UTC) - timedelta(hours=1) - next(_APART) * (WINDOW_GAP + timedelta(minutes=1))
    post_id = emulator.create_post(
        accounts=accounts, scheduled_at=datetime.now(UTC) - timedelta(minutes=1), created_at=created_at
    )
    return post_id, emulator.account_ids(post_id)


def test_register_tick_work_publishes_every_field_to_both_targets(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    # Given a watched post with two scheduled accounts
    post_id, (posted_account, failed_account) = publishing_now(emulator, accounts=2)
    emulator.set_account(failed_account, platform="instagram", username="brand.shop", display_name="Brand Shop")
    registered = runner.api("POST", "/watches", {"post_id": post_id})
    assert registered.status == 201
    assert registered.body["transitions"] == []
    assert [account["status"] for account in registered.body["watch"]["accounts"]] == ["scheduled", "scheduled"]

    # When Genviral delivers one and fails the other, and the relay ticks
    emulator.mark_posted(post_id, posted_account, published_url="https://social.example/p/1")
    emulator.mark_failed(post_id, failed_account, error_message="Media rejected by platform")
    assert runner.tick()["enqueued"] == 1 + SYNC
    report = runner.drain_work_queue()

    # Then each target received exactly the two events and the post's completion, with every field of the contract
    assert (report.processed, report.failed) == (1 + SYNC, 0)
    received = drain(stack)
    published = ["post.account.failed", "post.account.posted", "post.completed"]
    assert sorted(received.sns_event_types()) == sorted(received.eventbridge_event_types()) == published
    upstream = emulator.post_json(post_id)
    states = {state["account_id"]: state for state in upstream["accounts"]["states"]}
    by_account = {document["account_id"]: document for document in received.sns_transitions()}
    assert set(by_account) == {posted_account, failed_account}
    for account_id, document in by_account.items():
        state = states[account_id]
        assert set(document) == {
            "schema_version", "event_id", "event_type", "detected_at", "workspace", "post_id", "account_id", "account",
            "status", "previous_status", "published_url", "published_at", "error_message", "error_category",
            "last_attempted_at", "sequence", "post",
        }  # fmt: skip
        assert document["schema_version"] == "1"
        assert document["workspace"] == "default"  # a single-workspace stack's
        assert document["sequence"] == 1  # the account's first document
        assert document["post_id"] == post_id
        assert document["status"] == state["status"]
        assert document["event_type"] == f"post.account.{state['status']}"
        assert document["previous_status"] == "scheduled"
        for field in ("published_url", "published_at", "error_message", "last_attempted_at"):
            assert document[field] == state[field]
        assert document["post"] == {
            **{key: upstream[key] for key in ("caption", "status", "scheduled_at", "created_at", "media", "music_url")},
            "external_id": None,  # created without one
        }
        assert datetime.fromisoformat(document["detected_at"].replace("Z", "+00:00")) <= datetime.now(UTC)
    assert by_account[posted_account]["published_url"] == "https://social.example/p/1"
    assert by_account[failed_account]["error_message"] == "Media rejected by platform"
    assert by_account[failed_account]["account"] == {
        "id": failed_account,
        "platform": "instagram",
        "username": "brand.shop",
        "display_name": "Brand Shop",
        "type": "byo",
    }
    assert by_account[posted_account]["account"]["platform"] == "tiktok"  # the emulator's default

    sns_by_account = {
        json.loads(message["Message"])["account_id"]: message for message in received.sns_transition_messages()
    }
    attributes = sns_by_account[failed_account]["MessageAttributes"]
    assert {name: value["Value"] for name, value in attributes.items()} == {
        "event_type": "post.account.failed",
        "workspace": "default",
        "status": "failed",
        "post_id": post_id,
        "account_id": failed_account,
        "platform": "instagram",
        "error_category": "unknown",  # "Media rejected by platform" names no rule's words
    }
    (completion,) = (message for message in received.sns if message not in received.sns_transition_messages())
    assert {name: value["Value"] for name, value in completion["MessageAttributes"].items()} == {
        "event_type": "post.completed",
        "workspace": "default",
        "post_id": post_id,
        "outcome": "partial",
    }
    assert sorted(event["detail-type"] for event in received.eventbridge) == [
        "Post Account Failed",
        "Post Account Posted",
        "Post Completed",
    ]
    assert {event["source"] for event in received.eventbridge} == {"genviral.relay"}
    assert sorted(received.eventbridge_documents(), key=lambda d: d["event_id"]) == sorted(
        received.sns_documents(), key=lambda d: d["event_id"]
    )

    # And neither a second tick nor a check-now emits anything again
    runner.tick()
    runner.drain_work_queue()
    assert runner.api("POST", f"/watches/{post_id}/check").body["transitions"] == []
    assert drain(stack).event_ids() == ([], [])


def accounts_calls(emulator: GenviralEmulator) -> int:
    return sum(1 for record in emulator.requests_log if record.path.endswith("/accounts"))


def test_a_revoked_account_is_named_by_id_and_the_directory_is_listed_once_per_unknown_id(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    # Given a post whose account was revoked since (Genviral lists only active accounts)
    post_id, (account_id,) = publishing_now(emulator)
    emulator.set_account(account_id, status="revoked")
    emulator.mark_failed(post_id, account_id, error_message="Access token expired")

    # When it is registered, already failed
    runner.api("POST", "/watches", {"post_id": post_id})

    # Then the event names the account by its id alone, and the SNS message has no platform attribute
    (message,) = drain(stack).sns_transition_messages()
    assert json.loads(message["Message"])["account"] == {
        "id": account_id,
        "platform": None,
        "username": None,
        "display_name": None,
        "type": None,
    }
    assert "platform" not in message["MessageAttributes"]
    assert accounts_calls(emulator) == 1

    # And another post on the same unknown account within minutes does not list the accounts again
    other_id = emulator.create_post(accounts=[account_id], scheduled_at=None)
    emulator.mark_posted(other_id, account_id)
    runner.api("POST", "/watches", {"post_id": other_id})
    assert accounts_calls(emulator) == 1
    (again,) = drain(stack).sns_transitions()
    assert again["account"]["platform"] is None


def test_a_failing_accounts_call_never_fails_or_delays_the_event(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    post_id, (account_id,) = publishing_now(emulator)
    emulator.mark_posted(post_id, account_id)
    emulator.inject(Fault.server_error(), accounts=True, times=10)

    answer = runner.api("POST", "/watches", {"post_id": post_id})

    assert answer.status == 201
    (document,) = drain(stack).sns_transitions()
    assert document["account"] == {
        "id": account_id,
        "platform": None,
        "username": None,
        "display_name": None,
        "type": None,
    }
    assert accounts_calls(emulator) >= 1


def test_accounts_already_final_at_registration_are_reported_with_null_previous_status(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    post_id, (account_id,) = publishing_now(emulator)
    emulator.mark_posted(post_id, account_id)

    answer = runner.api("POST", "/watches", {"post_id": post_id})

    assert answer.status == 201
    (transition,) = transitions(answer.body["transitions"])
    assert (transition["status"], transition["previous_status"]) == ("posted", None)
    assert [event["event_type"] for event in answer.body["transitions"]] == ["post.account.posted", "post.completed"]
    event_ids = sorted(event["event_id"] for event in answer.body["transitions"])
    received = drain(stack)
    assert received.event_ids() == (event_ids, event_ids)  # the transition and the completion
    assert answer.body["watch"]["watching"] is False
    assert answer.body["watch"]["ended_reason"] == "finished"


def test_unchanged_post_costs_no_event_and_no_state_write(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    post_id, _ = publishing_now(emulator)
    runner.api("POST", "/watches", {"post_id": post_id})
    before = stored_item(stack, post_id)

    for _ in range(3):
        runner.tick()
        runner.drain_work_queue()

    assert emulator.calls(post_id) == 4  # registration + three ticks
    assert stored_item(stack, post_id) == before
    assert drain(stack).event_ids() == ([], [])


def test_failed_retry_posted_is_two_events_under_two_ids(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    post_id, (account_id,) = publishing_now(emulator)
    runner.api("POST", "/watches", {"post_id": post_id})
    emulator.mark_failed(post_id, account_id, error_message="rate limited by platform")
    runner.api("POST", f"/watches/{post_id}/check")
    emulator.retry(post_id)
    runner.api("POST", f"/watches/{post_id}/check")
    emulator.mark_posted(post_id, account_id)

    answer = runner.api("POST", f"/watches/{post_id}/check")

    assert answer.status == 200
    received = drain(stack)
    documents = received.sns_transitions()
    assert [(d["previous_status"], d["status"]) for d in documents] == [("scheduled", "failed"), ("retry", "posted")]
    assert len({d["event_id"] for d in documents}) == 2
    # each outcome completed the post: two completions, under two more ids
    assert received.sns_event_types() == [
        "post.account.failed",
        "post.completed",
        "post.account.posted",
        "post.completed",
    ]
    assert len({d["event_id"] for d in received.sns_documents()}) == 4


def test_rotated_secret_recovers_after_one_401(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    post_id, (account_id,) = publishing_now(emulator)
    runner.api("POST", "/watches", {"post_id": post_id})  # warms the token cache with the old token
    emulator.mark_posted(post_id, account_id)

    # When the key is rotated in Genviral and in the secret
    emulator.tokens.clear()
    emulator.tokens.add("gva_live_test.rotated")
    stack.rotate_token("gva_live_test.rotated")
    answer = runner.api("POST", f"/watches/{post_id}/check")

    assert answer.status == 200
    assert [t["status"] for t in transitions(answer.body["transitions"])] == ["posted"]
    statuses = [record.status for record in emulator.requests_log if record.post_id == post_id]
    assert statuses[-2:] == [401, 200]


def test_persistent_401_is_an_error_with_no_state_change(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    post_id, (account_id,) = publishing_now(emulator)
    runner.api("POST", "/watches", {"post_id": post_id})
    before = stored_item(stack, post_id)
    emulator.mark_posted(post_id, account_id)
    emulator.tokens.clear()

    answer = runner.api("POST", f"/watches/{post_id}/check")

    assert answer.status == 502
    assert answer.body["error"] == "genviral_refused"
    assert "Genviral refused the key (HTTP 401" in answer.body["message"]
    assert TOKEN not in json.dumps(answer.body)
    assert stored_item(stack, post_id) == before
    received = drain(stack)  # nothing about the post; the API's refusal paused calls, and said so once
    assert (received.sns_event_types(), received.eventbridge_event_types()) == (["relay.paused"], ["relay.paused"])
    assert received.sns_documents()[0]["http_status"] == 401


def test_deleted_post_ends_the_watch(emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack) -> None:
    post_id, _ = publishing_now(emulator)
    runner.api("POST", "/watches", {"post_id": post_id})
    emulator.delete_post(post_id)

    runner.tick()
    runner.drain_work_queue()
    calls_after_404 = emulator.calls(post_id)
    runner.tick()
    runner.drain_work_queue()

    watch = runner.api("GET", f"/watches/{post_id}")
    assert watch.status == 200
    assert (watch.body["watching"], watch.body["ended_reason"]) == (False, "post_not_found")
    assert watch.body["next_check_at"] is None
    assert emulator.calls(post_id) == calls_after_404  # no more calls once the watch ended
    assert drain(stack).event_ids() == ([], [])


def test_registering_an_unknown_post_is_a_404_and_stores_nothing(
    emulator: GenviralEmulator, runner: LocalRunner
) -> None:
    post_id = "99999999-9999-4999-8999-999999999999"

    answer = runner.api("POST", "/watches", {"post_id": post_id})

    assert answer.status == 404
    assert answer.body["error"] == "post_not_found"
    assert runner.api("GET", f"/watches/{post_id}").status == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/watches", {"post_id": "not-a-uuid"}),
        ("POST", "/watches", {"post_id": "../../etc/passwd"}),
        ("POST", "/watches", {"post_id": 12345}),
        ("POST", "/watches", {"post_id": "11111111-1111-1111-1111-111111111111", "extra": 1}),
        ("POST", "/watches", {}),
        ("POST", "/watches", None),
        ("POST", "/watches", ["11111111-1111-1111-1111-111111111111"]),
        ("POST", "/watches/not-a-uuid/check", None),
        ("GET", "/watches/..%2F..%2Fsecret", None),
        ("DELETE", "/watches/1111", None),
    ],
)
def test_bad_input_is_a_400_before_any_genviral_call(
    emulator: GenviralEmulator, runner: LocalRunner, method: str, path: str, body: Any
) -> None:
    answer = runner.api(method, path, body)

    assert answer.status == 400
    assert answer.body["error"] == "bad_request"
    assert answer.body["message"]
    assert emulator.requests_log == []


def test_non_json_and_oversized_bodies_are_rejected(emulator: GenviralEmulator, runner: LocalRunner) -> None:
    assert runner.api("POST", "/watches", raw_body="{post_id: nope").status == 400
    oversized = runner.api("POST", "/watches", raw_body=json.dumps({"post_id": "x" * 10_000}))
    assert oversized.status == 413
    assert emulator.requests_log == []


def test_unknown_routes_and_methods(runner: LocalRunner) -> None:
    assert runner.api("GET", "/nothing").status == 404
    wrong_method = runner.api("PUT", "/watches")
    assert wrong_method.status == 405
    assert "POST" in wrong_method.body["message"]


def test_check_and_read_of_an_unwatched_post_are_404s(emulator: GenviralEmulator, runner: LocalRunner) -> None:
    post_id, _ = publishing_now(emulator)

    assert runner.api("GET", f"/watches/{post_id}").body["error"] == "not_watched"
    assert runner.api("POST", f"/watches/{post_id}/check").status == 404
    assert runner.api("DELETE", f"/watches/{post_id}").status == 404
    assert emulator.calls(post_id) == 0


def test_delete_stops_watching(emulator: GenviralEmulator, runner: LocalRunner) -> None:
    post_id, _ = publishing_now(emulator)
    assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
    assert runner.api("POST", "/watches", {"post_id": post_id}).status == 200  # registering again is harmless

    answer = runner.api("DELETE", f"/watches/{post_id}")
    runner.tick()
    runner.drain_work_queue()

    assert answer.status == 200
    assert answer.body == {"post_id": post_id, "watching": False, "message": "watch removed"}
    assert runner.api("GET", f"/watches/{post_id}").status == 404
    assert emulator.calls(post_id) == 2


def test_transient_genviral_failure_defers_the_check_and_keeps_the_registration(
    emulator: GenviralEmulator, runner: LocalRunner
) -> None:
    post_id, _ = publishing_now(emulator)
    emulator.inject(Fault.server_error(), post_id=post_id, times=10)

    answer = runner.api("POST", "/watches", {"post_id": post_id})

    assert answer.status == 202
    assert "GenviralServerError" in answer.body["message"]
    assert answer.body["watch"]["status"] is None
    emulator.clear_faults()
    runner.tick()
    runner.drain_work_queue()
    assert runner.api("GET", f"/watches/{post_id}").body["status"] == "scheduled"


def test_subscription_error_pauses_genviral_calls(emulator: GenviralEmulator, runner: LocalRunner) -> None:
    posts = [publishing_now(emulator)[0] for _ in range(3)]
    for post_id in posts:
        runner.api("POST", "/watches", {"post_id": post_id})
    emulator.plan_error = "subscription_required"
    calls_before = emulator.calls()

    runner.tick()
    runner.drain_work_queue()
    env = runner.stack.function_env("WorkerFunction")
    threads = int(env["GENVIRAL_MAX_CONCURRENCY"]) // int(env["WORKER_MAX_INVOCATIONS"])
    assert 1 <= emulator.calls() - calls_before <= threads < len(posts)  # checks already in flight, no more
    calls_before = emulator.calls()
    tick = runner.tick()

    assert tick["enqueued"] == SYNC
    assert "subscription_required" in tick["paused"]
    assert emulator.calls() == calls_before


def test_poison_messages_are_reported_as_batch_item_failures(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    post_id, _ = publishing_now(emulator)
    runner.api("POST", "/watches", {"post_id": post_id})
    sqs = stack.client("sqs")
    queue = stack.ref("WorkQueue")
    for body in ("not json", json.dumps({"unexpected": "shape"}), json.dumps({"post_id": post_id})):
        sqs.send_message(QueueUrl=queue, MessageBody=body)

    report = runner.drain_work_queue(max_batches=1)

    assert (report.processed, report.failed) == (1, 2)


def test_poison_messages_reach_the_dlq_after_the_templates_receive_limit(runner: LocalRunner, stack: MotoStack) -> None:
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=stack.ref("WorkQueue"), MessageBody="not json")
    max_receives = stack.template["Resources"]["WorkQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]

    runner.drain_work_queue(max_batches=max_receives + 2)

    dead = sqs.receive_message(QueueUrl=stack.ref("WorkDLQ"), MaxNumberOfMessages=10)["Messages"]
    assert [message["Body"] for message in dead] == ["not json"]


def test_check_now_on_a_finished_watch_asks_genviral_and_revives_it(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    # Given a post whose only account posted: the watch ended
    post_id, (account_id,) = publishing_now(emulator)
    runner.api("POST", "/watches", {"post_id": post_id})
    emulator.mark_posted(post_id, account_id)
    assert runner.api("POST", f"/watches/{post_id}/check").body["watch"]["watching"] is False
    drain(stack)

    # When the platform takes the post down and Genviral reports it failed
    emulator.mark_failed(post_id, account_id, error_message="Removed by the platform")
    answer = runner.api("POST", f"/watches/{post_id}/check")

    # Then the check asks Genviral, reports posted -> failed, and watches the post again
    assert [(t["previous_status"], t["status"]) for t in transitions(answer.body["transitions"])] == [
        ("posted", "failed")
    ]
    assert answer.body["watch"]["watching"] is True
    (reported,) = drain(stack).sns_transitions()
    assert reported["error_message"] == "Removed by the platform"


def test_publish_targets_sns_only(emulator: GenviralEmulator) -> None:
    with MotoStack(genviral_api_url=emulator.base_url, token=TOKEN, parameters={"PublishTargets": "sns"}) as stack:
        runner = LocalRunner(stack)
        assert set(stack.subscribers) == {"sns"}
        assert runner.stack.function_env("WorkerFunction")["EVENT_BUS_NAME"] == ""
        post_id, (account_id,) = publishing_now(emulator)
        emulator.mark_failed(post_id, account_id)

        answer = runner.api("POST", "/watches", {"post_id": post_id})

        assert answer.body["watch"]["pending_deliveries"] == 0
        received = drain(stack)
        assert [document["status"] for document in received.sns_transitions()] == ["failed"]
        assert received.sns_event_types() == ["post.account.failed", "post.completed"]
        assert received.eventbridge == []


def test_retried_failure_is_found_by_the_retry_sweep_without_checking_each_failed_post(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    # Given three finished posts with a failure each: the watches wait for the retry sweep
    posts = [publishing_now(emulator) for _ in range(3)]
    for post_id, (account_id,) in posts:
        runner.api("POST", "/watches", {"post_id": post_id})
        emulator.mark_failed(post_id, account_id)
        runner.api("POST", f"/watches/{post_id}/check")
    assert all(runner.api("GET", f"/watches/{post_id}").body["watching"] for post_id, _ in posts)
    drain(stack)
    requests_before = len(emulator.requests_log)

    # When nothing is retried, a tick costs one list call, not one call per failed post
    assert runner.tick()["enqueued"] == 1 + SYNC
    runner.drain_work_queue()
    (sweep,) = emulator.requests_log[requests_before:]
    assert (sweep.path.rsplit("/", 1)[-1], sweep.query.get("status")) == ("posts", "retry")

    # When one is retried and then posted, the sweeps find it and report it
    retried_post, (retried_account,) = posts[1]
    emulator.retry(retried_post)
    runner.tick()
    runner.drain_work_queue()
    emulator.mark_posted(retried_post, retried_account)
    runner.tick()
    runner.drain_work_queue()

    received = drain(stack)
    documents = received.sns_transitions()
    assert [(d["post_id"], d["previous_status"], d["status"]) for d in documents] == [(retried_post, "retry", "posted")]
    assert received.sns_event_types() == ["post.account.posted", "post.completed"]  # the post completed again


def test_the_secret_sentinel_sees_relay_log_records(secret_sentinel: Any) -> None:
    from genviral_relay.observability import logger

    logger.info("planted", extra={"header": f"Bearer {TOKEN}"})

    assert secret_sentinel.leaks
    secret_sentinel.leaks.clear()  # planted on purpose; the sentinel must not fail this test


def test_the_work_queue_backlog_counts_waiting_and_received_messages(stack: MotoStack) -> None:
    queue = SqsWorkQueue(stack.client("sqs"), stack.ref("WorkQueue"))
    assert queue.backlog() == 0
    requests = [CheckRequest(post_id=f"00000000-0000-4000-8000-{index:012d}") for index in range(12)]
    assert queue.send(requests) == 12
    stack.client("sqs").receive_message(QueueUrl=stack.ref("WorkQueue"), MaxNumberOfMessages=5)

    assert queue.backlog() == 12  # 7 waiting and 5 being worked on

    broken = SqsWorkQueue(stack.client("sqs"), stack.ref("WorkQueue") + "-gone")
    assert broken.backlog() is None  # unknown: the tick then limits nothing


def test_hot_posts_created_together_are_refreshed_by_one_list_call_through_the_handlers(
    emulator: GenviralEmulator, runner: LocalRunner, stack: MotoStack
) -> None:
    created = datetime.now(UTC) - timedelta(hours=1)
    scheduled = datetime.now(UTC) - timedelta(minutes=1)
    post_ids = [
        emulator.create_post(scheduled_at=scheduled, created_at=created + index * timedelta(milliseconds=10))
        for index in range(3)
    ]
    for post_id in post_ids:
        assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
    emulator.mark_posted(post_ids[0], emulator.account_ids(post_ids[0])[0])
    emulator.delete_post(post_ids[2])  # gone: not in the list, and its own call says so
    emulator.requests_log.clear()

    assert runner.tick()["enqueued"] == 1 + SYNC  # one refresh message for the three
    runner.drain_work_queue()

    asked = [
        (record.path.rsplit("/", 1)[-1], record.query.get("limit"))
        for record in emulator.requests_log
        if not record.path.endswith("/accounts")  # the account directory, listed for the event
    ]
    assert sorted(asked) == sorted([("posts", "100"), (post_ids[2], None)])
    assert [document["post_id"] for document in drain(stack).sns_transitions()] == [post_ids[0]]
    assert stored_item(stack, post_ids[2])["ended_reason"] == {"S": "post_not_found"}


def test_a_check_now_makes_the_checks_queued_before_it_duplicates_that_ask_genviral_nothing(
    emulator: GenviralEmulator, runner: LocalRunner, relay_clock: SteppingClock
) -> None:
    post_id = emulator.create_post(scheduled_at=relay_clock.now - timedelta(minutes=1))  # due every tick
    assert runner.api("POST", "/watches", {"post_id": post_id}).status == 201
    assert runner.tick()["enqueued"] == 1 + SYNC  # queued, not taken yet
    emulator.requests_log.clear()

    relay_clock.now += timedelta(minutes=1)
    assert runner.api("POST", f"/watches/{post_id}/check").status == 200
    relay_clock.now += timedelta(minutes=1)  # the queued check is late: it would claim the post and call
    report = runner.drain_work_queue()

    assert (report.processed, report.failed) == (1 + SYNC, 0)
    assert [record.post_id for record in emulator.requests_log] == [post_id]  # the check now's call alone
