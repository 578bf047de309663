"""Where events go for a `PublishTargets` value: one derivation (`models/domain.publish_targets`) that the
functions' settings and the operations CLI share; the feed's outbox entry is none of them."""

from __future__ import annotations

import pytest

from genviral_relay.models.api import WatchView
from genviral_relay.models.domain import FEED_TARGET, PUBLISH_CHOICES, OutboxEntry, publish_targets
from genviral_relay.settings import CheckerSettings
from tests.builders import watch

TARGETS_OF = {"both": ("sns", "eventbridge"), "sns": ("sns",), "eventbridge": ("eventbridge",)}


@pytest.mark.parametrize("choice", PUBLISH_CHOICES)
def test_each_choice_names_its_targets_and_the_webhooks_come_with_a_fanout_queue(choice: str) -> None:
    assert publish_targets(choice) == TARGETS_OF[choice]
    assert publish_targets(choice, webhooks=True) == (*TARGETS_OF[choice], "webhooks")


def test_a_value_that_is_no_choice_is_refused() -> None:
    with pytest.raises(ValueError, match="must be both, sns or eventbridge, not 'all'"):
        publish_targets("all")


def test_the_functions_settings_derive_their_targets_the_same_way() -> None:
    environment = {
        "TABLE_NAME": "t", "STACK_NAME": "s", "GENVIRAL_SECRET_ARN": "arn", "GENVIRAL_API_URL": "https://g.example",
        "PUBLISH_TARGETS": "eventbridge", "EVENT_BUS_NAME": "bus", "EVENTS_DLQ_URL": "dlq",
        "POLL_SCHEDULE": "rate(1 minute)",
    }  # fmt: skip
    assert CheckerSettings.model_validate(environment).targets == ("eventbridge",)
    with_webhooks = CheckerSettings.model_validate({**environment, "WEBHOOK_FANOUT_QUEUE_URL": "fanout"})
    assert with_webhooks.targets == ("eventbridge", "webhooks")


def test_the_feed_outbox_entry_is_no_pending_delivery_in_any_view() -> None:
    owed = frozenset(OutboxEntry(event_id=event_id, target=target) for event_id, target in
                     [("e1", "sns"), ("e1", FEED_TARGET), ("e2", FEED_TARGET)])  # fmt: skip
    record = watch().model_copy(update={"outbox": owed})
    assert WatchView.of(record).pending_deliveries == 1  # the feed is never shown as a publish target
    fed_only = record.model_copy(update={"outbox": frozenset(e for e in owed if e.target == FEED_TARGET)})
    assert WatchView.of(fed_only).pending_deliveries == 0
