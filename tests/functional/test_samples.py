"""The sample events under events/ are real: each inbound one drives its handler, each outbound one
is a valid event document in the envelope its target delivers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from genviral_relay.models.events import DETAIL_TYPE_BY_EVENT_TYPE, parse_event
from local.__main__ import main
from local.emulator import GenviralEmulator
from local.runner import API, POLLER, WORKER, LocalRunner

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLE_POST = "11111111-1111-1111-1111-111111111111"


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def test_every_inbound_sample_drives_its_handler(emulator: GenviralEmulator, runner: LocalRunner) -> None:
    emulator.create_post(post_id=SAMPLE_POST, accounts=["0f4f54d4-8cce-4fb7-8c7b-befbcb8af812"])

    answers = [
        runner.invoke(API, sample("api-register-watch.json"))["statusCode"],
        runner.invoke(API, sample("api-get-watch.json"))["statusCode"],
        runner.invoke(API, sample("api-check-watch.json"))["statusCode"],
        runner.invoke(POLLER, sample("schedule-tick.json")),
        runner.invoke(WORKER, sample("sqs-check-batch.json")),
        runner.invoke(API, sample("api-delete-watch.json"))["statusCode"],
    ]

    assert answers == [201, 200, 200, {"enqueued": 0}, {"batchItemFailures": []}, 200]
    assert emulator.calls(SAMPLE_POST) == 3  # register, check now, and the worker's check


def test_inbound_samples_cover_every_trigger_and_route() -> None:
    names = {path.name for path in EVENTS.glob("*.json")}
    assert names == {
        "schedule-tick.json",
        "sqs-check-batch.json",
        "api-register-watch.json",
        "api-get-watch.json",
        "api-check-watch.json",
        "api-delete-watch.json",
    }


@pytest.mark.parametrize("event_type", list(DETAIL_TYPE_BY_EVENT_TYPE))
def test_outbound_samples_are_valid_event_documents(event_type: str) -> None:
    name = event_type.replace(".", "-")
    eventbridge = sample(f"outbound/eventbridge-{name}.json")
    sns = sample(f"outbound/sns-{name}.json")

    from_bus = parse_event(eventbridge["detail"])
    from_topic = parse_event(sns["Message"])

    assert from_bus == from_topic
    assert from_bus.event_type == event_type
    assert eventbridge["detail-type"] == from_bus.detail_type
    assert eventbridge["source"] == "genviral.relay"
    assert {name: value["Value"] for name, value in sns["MessageAttributes"].items()} == from_bus.sns_attributes()


def test_outbound_samples_are_one_pair_per_event_type() -> None:
    names = {path.name for path in (EVENTS / "outbound").glob("*.json")}
    kinds = [event_type.replace(".", "-") for event_type in DETAIL_TYPE_BY_EVENT_TYPE]
    assert names == {f"{target}-{kind}.json" for target in ("sns", "eventbridge") for kind in kinds}


def test_demo_runs_the_whole_scenario_over_moto_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0  # what `make demo` runs
    output = capsys.readouterr().out
    assert "result: OK" in output
    assert '"level"' not in output  # handler logs go to the log file
    assert "retry -> posted" in output
    assert "ended_reason=post_not_found" in output
    # An event that names its account, a categorised failure, a delay and a completion
    assert "instagram @brand.shop scheduled -> failed [media_rejected]" in output
    assert "post.account.delayed post=" in output
    assert "outcome=partial (tiktok @brand posted, instagram @brand.shop failed)" in output
