from __future__ import annotations

from datetime import UTC, datetime, timedelta

from resource_agent.api.findings import ActionType
from resource_agent.api.resources import ApplyResult, Decision, Phase
from resource_agent.operator.lifecycle import decide_phase, effective_decision

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def phase(**overrides):
    arguments = dict(active=True, decision=Decision.PENDING, snooze_until=None,
                     action_type=ActionType.RECLAIM_GPU_MEMORY, apply_result=None, now=NOW)
    arguments.update(overrides)
    return decide_phase(**arguments)


def test_pending_is_open():
    assert phase().phase is Phase.OPEN


def test_dismissed_is_dismissed_and_never_applies():
    result = phase(decision=Decision.DISMISSED, action_type=ActionType.SET_LMCACHE_CONFIG)
    assert result.phase is Phase.DISMISSED and not result.should_apply


def test_cleared_condition_is_resolved_even_when_dismissed():
    assert phase(active=False, decision=Decision.DISMISSED).phase is Phase.RESOLVED


def test_snooze_hides_until_it_runs_out():
    snoozed = phase(snooze_until=NOW + timedelta(hours=1))
    assert snoozed.phase is Phase.DISMISSED and snoozed.snoozed
    assert phase(snooze_until=NOW - timedelta(seconds=1)).phase is Phase.OPEN


def test_approved_advisory_action_stays_open_with_a_clear_message():
    result = phase(decision=Decision.APPROVED, action_type=ActionType.DRAIN_NODE)
    assert result.phase is Phase.OPEN and not result.should_apply
    assert "advisory" in result.message and "drain-node" in result.message


def test_approved_applicable_action_applies_once():
    first = phase(decision=Decision.APPROVED, action_type=ActionType.SET_LMCACHE_CONFIG)
    assert first.phase is Phase.APPLYING and first.should_apply
    done = ApplyResult(attempted_at="2026-11-24T00:00:00Z", succeeded=True, attempts=1, message="ok")
    applied = phase(decision=Decision.APPROVED, action_type=ActionType.SET_LMCACHE_CONFIG, apply_result=done)
    assert applied.phase is Phase.APPLIED and not applied.should_apply
    broken = ApplyResult(attempted_at="2026-11-24T00:00:00Z", succeeded=False, attempts=3, error="HTTP 500")
    failed = phase(decision=Decision.APPROVED, action_type=ActionType.SET_LMCACHE_CONFIG, apply_result=broken)
    assert failed.phase is Phase.FAILED and failed.message == "HTTP 500"


def test_unknown_decision_reads_as_pending():
    assert effective_decision("Maybe") is Decision.PENDING
    assert effective_decision(None) is Decision.PENDING
    assert effective_decision("Approved") is Decision.APPROVED
