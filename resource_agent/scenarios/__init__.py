"""Simulated node profiles: deterministic `Sample` streams for tests, the demo and benchmarks.

    from resource_agent.scenarios import generate, list_scenarios
    samples = list(generate("thermal-throttle", seed=1, samples=60))
"""

from resource_agent.scenarios.generator import DEFAULT_START, ScenarioStream, generate, stream
from resource_agent.scenarios.profile import Profile, ScenarioError, list_scenarios, load_profile
from resource_agent.scenarios.targets import describe_target

__all__ = [
    "DEFAULT_START",
    "Profile",
    "ScenarioError",
    "ScenarioStream",
    "describe_target",
    "generate",
    "list_scenarios",
    "load_profile",
    "stream",
]
