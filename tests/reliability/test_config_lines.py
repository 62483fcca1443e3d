"""Malformed config and policy files fail with an error that names the field and its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from resource_agent.analysis.catalog import load_policy
from resource_agent.analysis.policy import PolicyError
from resource_agent.config.layered import SettingsError
from resource_agent.config.yaml_lines import key_lines, line_of
from resource_agent.node_agent.settings import AgentConfig

POLICY = """\
# a policy with one mistake
sustain:
  min_samples: 3
disabled_rules:
  - gpu-imbalance
  - {bad}
rules:
  gpu-underutilized:
    thresholds:
      {threshold}: {value}
"""


@pytest.mark.parametrize(
    ("bad", "threshold", "value", "expected"),
    [
        ("gpu-nope", "sm_utilization_mean_max", "5", "line 6: disabled_rules: unknown rule 'gpu-nope'"),
        ("gpu-imbalance", "sm_mean", "5", "line 10: rules.gpu-underutilized.thresholds.sm_mean: unknown threshold"),
        ("gpu-imbalance", "sm_utilization_mean_max", "lots", "line 10: rules.gpu-underutilized.thresholds.sm_utilization_mean_max: Input should be a valid number"),
    ],
)
def test_policy_errors_name_key_and_line(tmp_path: Path, bad: str, threshold: str, value: str, expected: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(bad=bad, threshold=threshold, value=value))
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sustain:\n  min_samples: 0\n", "line 2: sustain.min_samples"),
        ("sustain:\n  min_samples: 3\nrules: {gpu-underutilized: {severity: loud}}\n", "line 3: rules.gpu-underutilized.severity"),
        ("sustain:\n  nonsense: 1\n", "line 2: sustain.nonsense: unknown key"),
        ("sustain:\n  min_samples: [1\n", "line 3: not valid YAML"),
    ],
)
def test_more_policy_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nodeName: n1\n\ninterval: soon\n", "line 3: interval"),
        ("nodeName: n1\nlmcacheUrls: 5\nbogusSetting: 1\n", "line 3: bogusSetting: unknown setting"),
        ("nodeName: n1\ninterval: [\n", "line 3"),
    ],
)
def test_settings_errors_name_key_and_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str) -> None:
    for name in ("RESOURCE_AGENT_INTERVAL", "RESOURCE_AGENT_LMCACHE_URLS"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError) as caught:
        AgentConfig.load(path)
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)


def test_key_lines_and_longest_prefix() -> None:
    lines = key_lines("a:\n  b:\n    - x\n    - y: 1\n")
    assert lines[("a",)] == 1 and lines[("a", "b")] == 2 and lines[("a", "b", "0")] == 3 and lines[("a", "b", "x")] == 3
    assert line_of(lines, ["a", "b", "1", "y"]) == 4
    assert line_of(lines, ["a", "missing"]) == 1
    assert key_lines("a: [") == {}
