"""A simulated node: fills the whole sample from a scenario profile, one step per update.

Enabled with `--collector.scenario --scenario NAME [--scenario-seed N]` (the sampler
then turns the real collectors off unless asked for). Timestamps are the real
ones; counters grow by the real time between updates. The number of simulated
GPUs comes from the context option `scenario_gpus` (default 8).
"""

from __future__ import annotations

from resource_agent.api.samples import Sample
from resource_agent.node_agent.collectors.base import Collector, CollectorContext, CollectorUnavailable, register_collector

DEFAULT_GPUS = 8


class ScenarioCollector(Collector):
    name = "scenario"

    def __init__(self, context: CollectorContext) -> None:
        if context.scenario is None:
            raise CollectorUnavailable("no scenario chosen (use --scenario NAME)")
        from resource_agent.scenarios import ScenarioError, stream  # only a simulated node pays for the profiles

        gpus_option = context.options.get("scenario_gpus", str(DEFAULT_GPUS))
        try:
            gpus = int(gpus_option)
        except ValueError:
            raise ValueError(f"option scenario_gpus must be a whole number, got {gpus_option!r}") from None
        try:
            self.stream = stream(context.scenario, seed=context.scenario_seed, gpus=gpus, hostname=context.node_name)
        except ScenarioError as exc:
            raise ValueError(str(exc)) from None
        self.step = 0
        self.previous: float | None = None

    def update(self, sample: Sample) -> None:
        elapsed = sample.timestamp - self.previous if self.previous is not None else None
        simulated = self.stream.sample(self.step, sample.timestamp, elapsed if elapsed and elapsed > 0 else None)
        self.step += 1
        self.previous = sample.timestamp
        sample.system = simulated.system
        sample.pressure = simulated.pressure
        sample.gpu = simulated.gpu
        if sample.lmcache is None:  # a real lmcache collector that ran (it sorts first) wins over the profile
            sample.lmcache = simulated.lmcache
        sample.serving = simulated.serving  # a real serving collector, when asked for, sorts after and replaces it


@register_collector("scenario", enabled_by_default=False)
def scenario_collector(context: CollectorContext) -> Collector:
    return ScenarioCollector(context)
