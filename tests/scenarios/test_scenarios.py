import pytest

from resource_agent.analysis.engine import analyze
from resource_agent.node_agent.collectors.system import IGNORED_INTERFACES
from resource_agent.node_agent.window import summarize
from resource_agent.scenarios import DEFAULT_START, ScenarioError, describe_target, generate, list_scenarios, load_profile

REQUIRED = {
    "healthy-busy",
    "idle-gpu-holding-memory",
    "thermal-throttle",
    "power-capped",
    "ecc-xid-failing",
    "pcie-degraded",
    "cpu-starved-gpus",
    "memory-pressure",
    "cache-thrash",
    "cache-unused",
    "serving-kv-bound",
    "serving-idle-replica",
}


def findings_of(name: str, seed: int = 0) -> list[tuple[str, str]]:
    """(rule, target) of every rule that fired, those correlated into another finding included."""
    summary = summarize(list(generate(name, seed=seed)), node_name="sim-node")
    return sorted((rule, describe_target(f.target)) for f in analyze(summary).findings for rule in f.rules())


def test_a_failing_gpu_is_one_recommendation_with_the_strongest_action():
    """Issue 12 item 9: one GPU's ECC, XID, row-remap and recovery findings were four actions."""
    summary = summarize(list(generate("ecc-xid-failing", seed=0)), node_name="sim-node")
    gpu5 = [f for f in analyze(summary).findings if describe_target(f.target) == "gpu5"]
    assert len(gpu5) == 1
    assert gpu5[0].action.type.value == "drain-node"
    assert sorted(gpu5[0].rules()) == ["gpu-ecc-uncorrectable", "gpu-recovery-action", "gpu-row-remap-pending", "gpu-xid-ecc"]
    assert all(item.evidence for item in gpu5[0].correlated)


def test_the_required_scenarios_exist_and_each_is_described():
    assert set(list_scenarios()) >= REQUIRED
    for name in list_scenarios():
        assert len(load_profile(name).description) > 40


@pytest.mark.parametrize("name", sorted(REQUIRED))
@pytest.mark.parametrize("seed", [0, 7])
def test_each_scenario_produces_exactly_its_expected_findings(name, seed):
    expected = sorted((e.rule, e.target) for e in load_profile(name).expect)
    assert findings_of(name, seed) == expected
    assert (name == "healthy-busy") == (expected == [])


def test_streams_are_deterministic_per_seed():
    first = [s.model_dump() for s in generate("thermal-throttle", seed=3, samples=5)]
    again = [s.model_dump() for s in generate("thermal-throttle", seed=3, samples=5)]
    other = [s.model_dump() for s in generate("thermal-throttle", seed=4, samples=5)]
    assert first == again
    assert first != other


def test_samples_are_realistic_h100_nodes():
    samples = list(generate("healthy-busy", samples=3, interval_seconds=5.0, gpus=8))
    assert [s.timestamp for s in samples] == [DEFAULT_START, DEFAULT_START + 5, DEFAULT_START + 10]
    device = samples[0].gpu.devices[0]
    assert len(samples[0].gpu.devices) == 8
    assert device.name == "NVIDIA H100 80GB HBM3"
    assert device.power_limit_watts == 700 and device.power_watts <= 700
    assert device.slowdown_temperature_celsius == 87 and device.shutdown_temperature_celsius == 92
    assert device.sm_clock_max_mhz == 1980 and device.memory_clock_max_mhz == 2619
    assert (device.pcie_link_generation_max, device.pcie_link_width_max) == (5, 16)
    assert 0 <= device.sm_utilization_percent <= 100
    assert len({d.uuid for d in samples[0].gpu.devices}) == 8
    assert samples[0].lmcache is None
    psi = [s.pressure.cpu.some.total_microseconds for s in samples]
    assert psi == sorted(psi) and psi[-1] > psi[0]


def test_cache_profiles_carry_lmcache_counters_that_grow():
    samples = list(generate("cache-thrash", samples=4))
    totals = [s.lmcache.instances[0].requested_tokens_total for s in samples]
    assert totals == sorted(totals) and totals[0] > 0
    assert samples[0].lmcache.instances[0].max_local_cpu_size_bytes == 20 * 1024**3


def test_gpu_count_is_a_parameter():
    sample = next(generate("ecc-xid-failing", gpus=2))
    assert [d.index for d in sample.gpu.devices] == [0, 1]
    assert next(generate("healthy-busy", gpus=0)).gpu is None


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ScenarioError, match=r"unknown scenario 'nope'.*healthy-busy"):
        list(generate("nope"))
    with pytest.raises(ValueError, match="interval_seconds"):
        list(generate("healthy-busy", interval_seconds=0))
    with pytest.raises(ValueError, match="samples"):
        list(generate("healthy-busy", samples=-1))


def test_serving_engines_are_scraped_shapes_linked_to_their_gpus():
    samples = list(generate("serving-kv-bound", seed=1, samples=12))
    engines = {engine.instance: engine for engine in samples[-1].serving.instances}
    bound = engines["llm/vllm-0"]
    assert bound.engine == "vllm" and bound.engine_index == "0" and bound.url == "http://10.0.3.17:8000/metrics"
    ttft = bound.ttft_seconds
    assert len(ttft.counts) == len(ttft.bounds) + 1 and ttft.counts == sorted(ttft.counts)  # cumulative, +Inf last
    assert ttft.counts[-1] == bound.requests_finished_total > 0
    before = samples[-2].serving.instances[0]
    assert bound.prompt_tokens_total >= before.prompt_tokens_total  # counters only grow
    # the engine's pod holds GPUs 0-3: their processes carry its pod uid, so the window links them
    gpus = samples[-1].gpu.devices
    assert {p.pod_uid for gpu in gpus[:4] for p in gpu.processes} == {bound.pod_uid}
    summary = summarize(samples, node_name="sim-node")
    linked = {engine.instance: engine.gpu_indices for engine in summary.serving.instances}
    assert linked == {"llm/vllm-0": [0, 1, 2, 3], "llm/vllm-1": [4, 5, 6, 7]}


@pytest.mark.parametrize("name", list_scenarios())
def test_scenarios_report_only_interfaces_the_system_collector_reports(name: str) -> None:
    """A real agent leaves out loopback and pod veths (IGNORED_INTERFACES); a scenario does too."""
    interfaces = [nic.interface for nic in load_profile(name).host.networks]
    assert interfaces and not [interface for interface in interfaces if IGNORED_INTERFACES.match(interface)]
