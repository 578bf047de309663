"""template.yaml's alarms and dashboard are what tools/monitoring.py generates from its spec (`make monitoring`)."""

from __future__ import annotations

import pytest

from local.template import TEMPLATE_PATH, load_template
from tools.monitoring import BEGIN, END, REGENERATE, resources, with_monitoring

GENERATED_TYPES = {"AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard"}


def test_the_templates_alarms_and_dashboard_are_the_generated_ones() -> None:
    template = TEMPLATE_PATH.read_text()
    assert with_monitoring(template) == template, (
        f"the alarms or the dashboard in template.yaml are stale: run `{REGENERATE}` and commit the result"
    )


def test_every_alarm_and_dashboard_of_the_template_is_generated() -> None:
    in_template = [logical_id for logical_id, r in load_template()["Resources"].items() if r["Type"] in GENERATED_TYPES]
    assert in_template == list(resources()), "add alarms and dashboards to the spec in tools/monitoring.py"


def test_a_hand_edit_of_the_generated_section_is_undone() -> None:
    template = TEMPLATE_PATH.read_text()
    start, end = template.index(BEGIN), template.index(END)
    section = template[start:end]
    edited = template[:start] + section.replace("Threshold: 1\n", "Threshold: 2\n", 1) + template[end:]
    assert edited != template
    assert with_monitoring(edited) == template


def test_the_generator_needs_its_section() -> None:
    with pytest.raises(ValueError, match="needs exactly one section"):
        with_monitoring(TEMPLATE_PATH.read_text().replace(END, "  # the end"))
