import pytest

from resource_agent.analysis.engine import analyze
from resource_agent.api.samples import CollectorState
from resource_agent.node_agent.collectors.base import REGISTRY, CollectorContext, CollectorUnavailable
from resource_agent.node_agent.collectors.scenario import ScenarioCollector
from resource_agent.node_agent.sampler import Sampler
from resource_agent.node_agent.window import summarize
from resource_agent.scenarios import describe_target, load_profile


def test_registered_off_by_default():
    assert REGISTRY["scenario"].enabled_by_default is False


def test_fills_the_whole_sample_with_real_timestamps_and_node_name():
    context = CollectorContext(scenario="ecc-xid-failing", scenario_seed=2, node_name="kwok-gpu-3")
    with Sampler(context, {"scenario": True}) as sampler:
        assert [c.name for c in sampler.collectors] == ["scenario"]
        samples = [sampler.sample(timestamp=2_000_000 + 10.0 * step) for step in range(30)]
    first = samples[0]
    assert first.system.hostname == "kwok-gpu-3"
    assert first.pressure is not None and len(first.gpu.devices) == 8
    assert [s.state for s in first.collectors] == [CollectorState.OK]
    xid_times = [e.timestamp for s in samples for d in s.gpu.devices for e in d.xid_events]
    assert xid_times and all(2_000_000 <= t <= 2_000_290 for t in xid_times)
    # counters grow by the real elapsed time (10 s here, not the profile's 5 s)
    totals = [s.pressure.cpu.some.total_microseconds for s in samples[:2]]
    assert totals[1] - totals[0] == pytest.approx(samples[1].pressure.cpu.some.avg10 / 100 * 10 * 1e6, rel=1e-6, abs=1)
    findings = analyze(summarize(samples, "kwok-gpu-3")).findings
    expected = sorted((e.rule, e.target) for e in load_profile("ecc-xid-failing").expect)
    assert sorted((rule, describe_target(f.target)) for f in findings for rule in f.rules()) == expected


def test_gpu_count_option_and_errors():
    collector = ScenarioCollector(CollectorContext(scenario="healthy-busy", options={"scenario_gpus": "2"}))
    assert len(collector.stream.identity.gpu_uuids) == 2
    with pytest.raises(CollectorUnavailable, match="--scenario"):
        ScenarioCollector(CollectorContext())
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        ScenarioCollector(CollectorContext(scenario="nope"))
    with pytest.raises(ValueError, match="scenario_gpus"):
        ScenarioCollector(CollectorContext(scenario="healthy-busy", options={"scenario_gpus": "many"}))
