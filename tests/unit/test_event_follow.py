"""What `silhouette events` subscribes to and how it prints an event."""

from __future__ import annotations

from silhouette.client.event_follow import describe, event_pattern

JOB = "0123456789abcdef0123456789abcdef"


def test_the_rule_matches_job_events_narrowed_by_tenant_and_job():
    assert event_pattern(None, None) == {"source": ["silhouette.job"]}
    assert event_pattern("acme", JOB) == {
        "source": ["silhouette.job"],
        "detail": {"tenant": ["acme"], "job_id": [JOB]},
    }


def test_one_line_per_event_says_why_a_job_did_not_complete():
    def event(detail_type: str, status: str, **why: str) -> dict:
        detail = {"job_id": JOB, "status": status, "reason": None, "error": None, **why}
        return {"time": "2026-11-21T10:00:00Z", "detail-type": detail_type, "detail": detail}

    assert describe(event("Job Completed", "COMPLETED")) == (
        f"2026-11-21T10:00:00Z  Job Completed  {JOB}  COMPLETED"
    )
    assert describe(event("Job Failed", "FAILED", error="pose: TransientError: throttled")) == (
        f"2026-11-21T10:00:00Z  Job Failed  {JOB}  FAILED  pose: TransientError: throttled"
    )
