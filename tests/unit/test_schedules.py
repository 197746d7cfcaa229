"""The embedded stack fires EventBridge schedules (moto stores them but never does)."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest

from silhouette.local.events import Schedules

RULE = "arn:aws:events:us-east-1:123456789012:rule/silhouette-local-SweeperFunction-Sweep"


def test_a_rate_schedule_sends_its_function_the_scheduled_event_every_interval(monkeypatch):
    monkeypatch.setitem(Schedules._UNIT_SECONDS, "minute", 0.05)
    delivered: list[tuple[str, dict]] = []
    twice = threading.Event()

    def deliver(function_name: str, event: dict) -> None:
        delivered.append((function_name, event))
        if len(delivered) == 2:
            twice.set()

    schedules = Schedules(deliver)
    schedules.add("sweeper", RULE, "rate(1 minute)")
    assert twice.wait(5)
    schedules.stop()
    count = len(delivered)

    assert {name for name, _ in delivered} == {"sweeper"}
    event = delivered[0][1]
    assert (event["detail-type"], event["source"], event["resources"]) == (
        "Scheduled Event",
        "aws.events",
        [RULE],
    )
    assert datetime.fromisoformat(event["time"]).tzinfo is not None
    threading.Event().wait(0.2)
    assert len(delivered) == count  # stopped means stopped


def test_a_schedule_the_local_stack_cannot_run_is_refused():
    with pytest.raises(ValueError, match="rate"):
        Schedules(lambda name, event: None).add("f", RULE, "cron(0 12 * * ? *)")
