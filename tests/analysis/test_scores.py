from hypothesis import given
from hypothesis import strategies as st_

from resource_agent.analysis import scores
from resource_agent.api.findings import Severity
from resource_agent.api.summary import EccSummary
from tests.analysis.analysis_builders import gpu, node, st

percent = st_.floats(min_value=0, max_value=100, allow_nan=False)
stall = st_.floats(min_value=0, max_value=100, allow_nan=False)
severity = st_.sampled_from(list(Severity))


def _further_from_band(a: float, b: float, low: float, high: float) -> bool:
    """Whether b is at least as far outside [low, high] as a, on the same side."""
    return (b <= a <= low) or (high <= a <= b)


@given(percent, percent, stall)
def test_cpu_score_never_improves_further_from_its_band(a, b, pressure):
    if _further_from_band(a, b, *scores.CPU_BAND):
        assert scores.cpu_score(b, pressure) <= scores.cpu_score(a, pressure)


@given(percent, stall, stall)
def test_more_stall_never_scores_better(utilization, a, b):
    low, high = sorted((a, b))
    assert scores.cpu_score(utilization, high) <= scores.cpu_score(utilization, low)
    assert scores.memory_score(utilization, high) <= scores.memory_score(utilization, low)


@given(percent, percent, st_.floats(min_value=0, max_value=1e9), st_.floats(min_value=0, max_value=1e9))
def test_memory_score_never_improves_with_more_swapping_or_further_from_band(a, b, swap_a, swap_b):
    if _further_from_band(a, b, *scores.MEMORY_BAND):
        assert scores.memory_score(b) <= scores.memory_score(a)
    low, high = sorted((swap_a, swap_b))
    assert scores.memory_score(a, 0, high) <= scores.memory_score(a, 0, low)


@given(st_.lists(percent, min_size=1, max_size=8), st_.integers(min_value=0, max_value=7), st_.floats(min_value=0, max_value=100))
def test_less_gpu_work_never_scores_better(means, index, drop):
    index %= len(means)
    worse = list(means)
    worse[index] = max(0.0, worse[index] - drop)
    assert scores.gpu_score(worse) <= scores.gpu_score(means)


@given(st_.lists(st_.tuples(st_.floats(min_value=0, max_value=1e9), st_.floats(min_value=0, max_value=1)), min_size=1, max_size=4), st_.floats(min_value=0, max_value=1))
def test_fewer_hits_never_score_better(instances, loss):
    pairs = [(requested, requested * rate) for requested, rate in instances]
    worse = [(requested, hit * (1 - loss)) for requested, hit in pairs]
    better_score, worse_score = scores.cache_score(pairs), scores.cache_score(worse)
    if better_score is not None:
        assert worse_score <= better_score


@given(st_.lists(severity, max_size=10), severity, st_.integers(min_value=0, max_value=8), st_.integers(min_value=0, max_value=5))
def test_one_more_or_one_worse_finding_never_raises_health(found, extra, faulty, failed):
    base = scores.health_score(found, faulty, failed)
    assert scores.health_score([*found, extra], faulty, failed) <= base
    assert scores.health_score(found, faulty + 1, failed) <= base
    assert scores.health_score(found, faulty, failed + 1) <= base
    if found:
        raised = [Severity.CRITICAL, *found[1:]]
        assert scores.health_score(raised, faulty, failed) <= base
    assert 0 <= base <= 100


def test_scores_of_a_node():
    healthy = scores.score(node(), [])
    assert healthy.health == 100.0
    assert healthy.efficiency["gpu"] == 88.0
    assert healthy.efficiency["cpu"] == round(100 * 35 / 70 - 2, 1)  # band below 70%, minus 2% CPU stall
    broken = node(gpus=[gpu(0, ecc=EccSummary(remapped_rows_failure=True)), gpu(1, xid_counts={"79": 1})])
    assert scores.score(broken, []).health == 100 - 2 * scores.FAULTY_GPU_PENALTY
    assert scores.band_score(80, 70, 90) == 100 and scores.band_score(95, 70, 90) == 75 and scores.band_score(35, 70, 90) == 50
    assert scores.gpu_score([]) is None and scores.cache_score([(0, 0)]) is None
    assert node(gpus=[gpu(0, sm_utilization_percent=st(10))]).gpu.devices[0].sm_utilization_percent.mean == 10
