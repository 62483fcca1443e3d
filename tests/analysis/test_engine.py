from resource_agent.analysis.catalog import RULES
from resource_agent.analysis.engine import analyze, window_is_sustained
from resource_agent.analysis.policy import Policy
from resource_agent.api.findings import Severity
from resource_agent.api.summary import EccSummary
from tests.analysis.analysis_builders import gpu, lmcache, node, st

TROUBLED = dict(
    gpus=[
        gpu(0, sm_utilization_percent=st(18, 35, 40, 5)),  # underutilized: info
        gpu(1, ecc=EccSummary(uncorrected_increase=1)),  # ECC: critical
        gpu(2, clock_event_reasons={"SwThermalSlowdown": 0.5}),  # thermal: warning
        gpu(3, memory_used_percent=st(90, 97, 97.5, 80, 97)),  # memory pressure (grew to the limit): warning
    ],
    caches=[lmcache(lookup_hit_rate=0.0, lookup_hits=0.0)],  # never hit: info
)


def test_findings_are_ranked_by_severity_then_weight_then_target():
    findings = analyze(node(**TROUBLED)).findings
    assert [(f.severity, f.rule, f.target.name) for f in findings] == [
        (Severity.CRITICAL, "gpu-ecc-uncorrectable", "gpu1"),
        (Severity.WARNING, "gpu-thermal-throttling", "gpu2"),
        (Severity.WARNING, "gpu-memory-pressure", "gpu3"),
        (Severity.INFO, "lmcache-never-hit", "vllm-0"),
        (Severity.INFO, "gpu-underutilized", "gpu0"),
        (Severity.INFO, "gpu-imbalance", "gpu-node-1"),
    ]


def test_analysis_is_deterministic_and_identities_are_unique():
    first, second = analyze(node(**TROUBLED)), analyze(node(**TROUBLED))
    assert first.model_dump() == second.model_dump()
    identities = [f.identity() for f in first.findings]
    assert len(identities) == len(set(identities))


def test_sustained_rules_wait_for_enough_window_but_events_do_not():
    short = node(samples=2, **TROUBLED)
    assert not window_is_sustained(short, Policy())
    assert [f.rule for f in analyze(short).findings] == ["gpu-ecc-uncorrectable"]
    relaxed = Policy.from_mapping({"sustain": {"min_samples": 2}})
    assert len(analyze(short, relaxed).findings) == 6
    long_only = Policy.from_mapping({"sustain": {"min_window_seconds": 600}})
    assert [f.rule for f in analyze(node(**TROUBLED), long_only).findings] == ["gpu-ecc-uncorrectable"]


def test_policy_enables_disables_and_overrides_severity():
    only = Policy(enabled_rules=["gpu-underutilized", "gpu-thermal-throttling"])
    assert {f.rule for f in analyze(node(**TROUBLED), only).findings} == {"gpu-underutilized", "gpu-thermal-throttling"}
    disabled = Policy.from_mapping({"disabled_rules": ["gpu-ecc-uncorrectable"], "rules": {"gpu-underutilized": {"enabled": False}}})
    rules = {f.rule for f in analyze(node(**TROUBLED), disabled).findings}
    assert "gpu-ecc-uncorrectable" not in rules and "gpu-underutilized" not in rules and "gpu-memory-pressure" in rules
    louder = Policy.from_mapping({"rules": {"gpu-underutilized": {"severity": "critical"}}})
    ranked = [(f.severity, f.rule) for f in analyze(node(**TROUBLED), louder).findings]
    assert ranked[:2] == [(Severity.CRITICAL, "gpu-ecc-uncorrectable"), (Severity.CRITICAL, "gpu-underutilized")]


def test_every_finding_carries_evidence_action_impact_and_the_node_as_sensitive():
    for finding in analyze(node(**TROUBLED)).findings:
        assert finding.evidence and finding.expected_impact and finding.summary
        assert all(e.window_seconds == 295.0 for e in finding.evidence)
        assert "gpu-node-1" in {s.unmasked for s in finding.sensitive}
        assert finding.category == RULES[finding.rule].category


def test_scores_come_with_the_analysis():
    healthy, troubled = analyze(node()), analyze(node(**TROUBLED))
    assert healthy.scores.health == 100.0
    assert troubled.scores.health < healthy.scores.health
    assert set(troubled.scores.efficiency) == {"gpu", "cpu", "memory", "cache"}
    assert "cache" not in healthy.scores.efficiency


def test_every_rule_is_documented_with_a_rationale_and_a_known_family():
    for info in RULES.values():
        assert len(info.rationale) > 40
        assert info.family in {"gpu", "gpu_health", "host", "cache", "serving"}


def test_findings_only_carry_the_actions_their_rule_declares():
    from resource_agent.node_agent.window import summarize
    from resource_agent.scenarios import generate, list_scenarios

    analyses = [analyze(node(**TROUBLED))]
    analyses += [analyze(summarize(list(generate(name)), "sim")) for name in list_scenarios()]
    for finding in (f for analysis in analyses for f in analysis.findings):
        assert finding.action.type in RULES[finding.rule].actions, finding.rule
