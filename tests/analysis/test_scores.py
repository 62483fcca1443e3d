from hypothesis import given
from hypothesis import strategies as st_

from resource_agent.analysis import scores
from resource_agent.analysis.engine import analyze
from resource_agent.api.findings import Severity
from resource_agent.api.summary import (
    CpuSummary,
    EccSummary,
    GpuFault,
    GpuFaultKind,
    GpuSection,
    LostGpuSummary,
    PressureSummary,
)
from tests.analysis.analysis_builders import gpu, lmcache, node, psi, st

percent = st_.floats(min_value=0, max_value=100, allow_nan=False)
stall = st_.floats(min_value=0, max_value=100, allow_nan=False)
severity = st_.sampled_from(list(Severity))
finding = st_.tuples(st_.sampled_from(["rule-a", "rule-b", "rule-c", "rule-d"]), st_.booleans(), severity)


@given(percent, percent)
def test_more_use_never_scores_less_efficient(a, b):
    low, high = sorted((a, b))
    assert scores.cpu_score(low) <= scores.cpu_score(high)
    assert scores.memory_score(low) <= scores.memory_score(high)


@given(percent, percent, stall, stall)
def test_more_use_or_more_stall_never_scores_less_saturated(a, b, stall_a, stall_b):
    low, high = sorted((a, b))
    less, more = sorted((stall_a, stall_b))
    assert scores.cpu_saturation(low, less) <= scores.cpu_saturation(high, less) <= scores.cpu_saturation(high, more)
    assert scores.memory_saturation(low, less) <= scores.memory_saturation(high, less) <= scores.memory_saturation(high, more)


@given(percent, st_.floats(min_value=0, max_value=1e9), st_.floats(min_value=0, max_value=1e9))
def test_more_swapping_never_scores_less_saturated(used, swap_a, swap_b):
    low, high = sorted((swap_a, swap_b))
    assert scores.memory_saturation(used, 0, low) <= scores.memory_saturation(used, 0, high)


@given(st_.lists(percent, min_size=1, max_size=8), st_.integers(min_value=0, max_value=7), st_.floats(min_value=0, max_value=100))
def test_less_gpu_work_never_scores_better(means, index, drop):
    index %= len(means)
    worse = list(means)
    worse[index] = max(0.0, worse[index] - drop)
    assert scores.gpu_score(worse) <= scores.gpu_score(means)


@given(st_.lists(st_.tuples(st_.floats(min_value=0, max_value=1e9), st_.floats(min_value=0, max_value=1)), min_size=1, max_size=4), st_.floats(min_value=0, max_value=1))
def test_fewer_hits_never_score_better(instances, loss):
    pairs = [(looked_up, looked_up * rate) for looked_up, rate in instances]
    worse = [(looked_up, hit * (1 - loss)) for looked_up, hit in pairs]
    better_score, worse_score = scores.cache_score(pairs), scores.cache_score(worse)
    if better_score is not None:
        assert worse_score <= better_score


@given(st_.lists(finding, max_size=12), finding, st_.integers(min_value=0, max_value=8), st_.integers(min_value=0, max_value=5))
def test_one_more_or_one_worse_finding_never_raises_health(found, extra, faulty, failed):
    base = scores.health_score(found, faulty, failed)
    assert scores.health_score([*found, extra], faulty, failed) <= base
    assert scores.health_score(found, faulty + 1, failed) <= base
    assert scores.health_score(found, faulty, failed + 1) <= base
    if found:
        rule_id, hardware, _ = found[0]
        assert scores.health_score([(rule_id, hardware, Severity.CRITICAL), *found[1:]], faulty, failed) <= base
    assert 0 <= base <= 100


@given(st_.lists(finding, max_size=12), st_.lists(finding.filter(lambda f: not f[1]), max_size=30), st_.integers(min_value=0, max_value=3))
def test_no_number_of_efficiency_findings_outweighs_one_broken_gpu(hardware, others, faulty):
    hardware = [f for f in hardware if f[1]]
    with_others = scores.health_score([*hardware, *others], faulty)
    one_more_fault = scores.health_score(hardware, faulty + 1)
    assert one_more_fault < with_others or one_more_fault == 0


def test_eight_gpus_at_one_efficiency_warning_cost_one_warning():
    """Eight GPUs at their default power limit are one rule's warning, not eight."""
    eight = [("gpu-power-capped", False, Severity.WARNING)] * 8
    assert scores.health_score(eight) == 100 - scores.OTHER_SEVERITY_PENALTY[Severity.WARNING]
    assert scores.health_score([("gpu-ecc-uncorrected", True, Severity.CRITICAL)]) < scores.health_score(eight)


IDLE = dict(cpu=CpuSummary(utilization_percent=st(2), iowait_percent=st(0), load1=st(0.1)), pressure=PressureSummary(available=True, cpu=psi(0)))
SATURATED = dict(cpu=CpuSummary(utilization_percent=st(99.7), iowait_percent=st(0), load1=st(4)), pressure=PressureSummary(available=True, cpu=psi(66)))


def test_cpu_scores_tell_idle_from_saturated():
    """As `resource-agent scan` saw on a 2-core machine: idle and saturated both scored 0 before."""
    idle, saturated = scores.score(node(**IDLE), []), scores.score(node(**SATURATED), [])
    assert idle.efficiency["cpu"] < 10 and idle.saturation["cpu"] == 0
    assert saturated.efficiency["cpu"] == 100 and saturated.saturation["cpu"] >= 90


def test_memory_scores_tell_idle_from_saturated():
    from tests.analysis.test_host_rules import memory

    idle = scores.score(node(memory=memory(95)), [])
    full = scores.score(node(memory=memory(3, swap_mib=20)), [])
    assert idle.efficiency["memory"] < 10 and idle.saturation["memory"] == 0
    assert full.efficiency["memory"] == 100 and full.saturation["memory"] >= 90


def test_gpu_efficiency_counts_gpus_with_work_not_free_capacity():
    free = gpu(2, sm_utilization_percent=st(0), memory_used_percent=st(0.5), processes=[])
    busy_and_free = node(gpus=[gpu(0), gpu(1), free, free.model_copy(update={"index": 3})])
    assert scores.score(busy_and_free, []).efficiency["gpu"] == 88.0
    holding = gpu(2, sm_utilization_percent=st(0))  # holds a model, computes nothing: counts
    assert scores.score(node(gpus=[gpu(0), holding]), []).efficiency["gpu"] == 44.0
    assert "gpu" not in scores.score(node(gpus=[free]), []).efficiency


def test_cache_score_is_the_lookup_hit_rate():
    """Retrieve only asks for tokens the lookup found, so hit/requested is ~1 by construction."""
    cache = lmcache(lookup_tokens=1_000_000.0, lookup_hits=250_000.0, requested_tokens=250_000.0, hit_tokens=250_000.0)
    assert scores.score(node(caches=[cache]), []).efficiency["cache"] == 25.0


def test_broken_hardware_keeps_health_down_until_fixed():
    fault = GpuFault(kind=GpuFaultKind.FATAL_XID, since=100.0, detail="XID 79", xid=79)
    standing = node(gpus=[gpu(0, faults=[fault]), gpu(1)])  # the XID left the window, the fault stands
    assert scores.score(standing, []).health == 100 - scores.FAULTY_GPU_PENALTY
    lost = node(gpus=[gpu(0)])
    lost = lost.model_copy(update={"gpu": GpuSection(available=True, devices=[gpu(0)], lost=[LostGpuSummary(index=1, error="GPU is lost", since=50.0)])})
    assert scores.score(lost, []).health == 100 - scores.FAULTY_GPU_PENALTY
    missing = lost.model_copy(update={"gpu": GpuSection(available=True, devices=[gpu(0)], expected_count=3)})
    assert scores.score(missing, []).health == 100 - 2 * scores.FAULTY_GPU_PENALTY


def test_scores_of_a_node():
    healthy = scores.score(node(), [])
    assert healthy.health == 100.0
    assert healthy.efficiency["gpu"] == 88.0
    assert healthy.efficiency["cpu"] == round(100 * 35 / 70, 1) and healthy.saturation["cpu"] == 2.0
    broken = node(gpus=[gpu(0, ecc=EccSummary(remapped_rows_failure=True)), gpu(1, xid_counts={"79": 1})])
    assert scores.score(broken, []).health == 100 - 2 * scores.FAULTY_GPU_PENALTY
    assert scores.use_score(80, 70) == 100 and scores.use_score(35, 70) == 50 and scores.over_band(95, 90) == 50
    assert scores.gpu_score([]) is None and scores.cache_score([(0, 0)]) is None
    assert analyze(node()).scores == healthy
