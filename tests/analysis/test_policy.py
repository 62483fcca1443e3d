import pytest

from resource_agent.analysis.catalog import RULES, load_policy
from resource_agent.analysis.policy import Policy, PolicyError
from resource_agent.api.findings import Severity


def test_defaults_come_from_the_rules():
    policy = Policy()
    assert RULES["gpu-idle-holding-memory"].thresholds(policy) == RULES["gpu-idle-holding-memory"].defaults
    assert policy.sustain.min_samples == 5
    assert all(policy.is_enabled(rule_id) for rule_id in RULES)


def test_from_yaml_applies_overrides(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        """
sustain: {min_samples: 10, min_window_seconds: 120}
disabled_rules: [gpu-imbalance]
rules:
  gpu-idle-holding-memory:
    severity: critical
    thresholds: {memory_used_percent_min: 50}
  lmcache-low-hit-rate-evicting:
    thresholds: {max_local_cpu_size_cap_gb: 64}
"""
    )
    policy = load_policy(path)
    assert policy.sustain.min_window_seconds == 120
    assert not policy.is_enabled("gpu-imbalance")
    assert policy.severity_override("gpu-idle-holding-memory") is Severity.CRITICAL
    limits = RULES["gpu-idle-holding-memory"].thresholds(policy)
    assert limits["memory_used_percent_min"] == 50 and limits["sm_utilization_mean_max"] == 5
    assert RULES["lmcache-low-hit-rate-evicting"].thresholds(policy)["max_local_cpu_size_cap_gb"] == 64


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("thresholds: {}", "thresholds: unknown key"),
        ("disabled_rules: [gpu-nope]", "disabled_rules: unknown rule 'gpu-nope'"),
        ("rules: {gpu-nope: {}}", "rules: unknown rule 'gpu-nope'"),
        ("rules: {gpu-underutilized: {thresholds: {sm_mean: 3}}}", "rules.gpu-underutilized.thresholds.sm_mean: unknown threshold"),
        ("rules: {gpu-underutilized: {thresholds: {sm_utilization_mean_max: lots}}}", "rules.gpu-underutilized.thresholds.sm_utilization_mean_max"),
        ("rules: {gpu-underutilized: {severity: loud}}", "rules.gpu-underutilized.severity"),
        ("sustain: {min_samples: 0}", "sustain.min_samples"),
        ("- a list", "must be a mapping"),
        ("rules: [unclosed", "not valid YAML"),
    ],
)
def test_bad_policies_name_the_key(tmp_path, text, message):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=r"policy\.yaml") as caught:
        load_policy(path)
    assert message in str(caught.value)


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "absent.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_policy(empty) == Policy()
