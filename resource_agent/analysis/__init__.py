"""The analysis engine: pure functions from a node's window summary and a policy to findings.

    from resource_agent.analysis import Policy, analyze
    result = analyze(summary, load_policy("policy.yaml"))
"""

from resource_agent.analysis.catalog import load_policy
from resource_agent.analysis.engine import analyze
from resource_agent.analysis.policy import Policy, PolicyError

__all__ = ["Policy", "PolicyError", "analyze", "load_policy"]
