"""One table says what goes with each event type (`models.events.event_kind`); these keep it whole."""

from __future__ import annotations

from typing import get_args

from genviral_relay.models.event_kinds import EVENT_KINDS, event_kind
from genviral_relay.models.events import EventDocument, EventType
from genviral_relay.observability import Metric


def test_every_event_type_has_one_kind_and_its_metric_exists() -> None:
    assert list(EVENT_KINDS) == list(get_args(EventType))
    for event_type, kind in EVENT_KINDS.items():
        assert Metric(kind.metric).value == kind.metric, event_type
        assert kind.log_line.endswith("detected"), event_type
        assert event_type in get_args(kind.model.model_fields["event_type"].annotation), event_type


def test_the_detail_types_and_metrics_are_distinct_per_kind_of_document() -> None:
    kinds = [event_kind(event_type) for event_type in get_args(EventType)]
    assert len({kind.detail_type for kind in kinds}) == len(kinds)
    assert len({kind.metric for kind in kinds}) == len(kinds)


def test_every_kind_is_a_document_the_parser_reads() -> None:
    union = get_args(get_args(EventDocument)[0])
    assert {kind.model for kind in EVENT_KINDS.values()} == set(union)
