from __future__ import annotations

import pytest

from resource_agent.workloads.histogram import GPU_COUNT_BUCKETS, MAX_DECAY_EXPONENT, PERCENT_BUCKETS, QUEUE_BUCKETS, DecayingHistogram

DAY = 86400.0


def test_percentile_is_the_upper_bound_of_the_bucket() -> None:
    h = DecayingHistogram(PERCENT_BUCKETS, DAY)
    for value in range(100):
        h.add(value, 1.0, 0.0)
    assert h.percentile(0.95) == pytest.approx(95.0)  # the 95th value is 94, in [92.5, 95)
    assert h.percentile(0.5) == pytest.approx(50.0)
    assert DecayingHistogram(PERCENT_BUCKETS, DAY).percentile(0.95) == 0.0


def test_old_observations_decay_by_half_per_half_life() -> None:
    h = DecayingHistogram(PERCENT_BUCKETS, DAY)
    h.add(90.0, 1.0, 0.0)  # busy a week ago
    h.add(1.0, 1.0, 7 * DAY)  # idle now, same weight: the old one weighs 2^-7 of it
    assert h.share_at_or_above(50.0) == pytest.approx(1 / 129)
    assert h.percentile(0.95) == pytest.approx(2.5)


def test_reference_shift_keeps_numbers_finite_and_shares_equal() -> None:
    h = DecayingHistogram(GPU_COUNT_BUCKETS, 60.0)
    h.add(1, 1.0, 0.0)
    later = (MAX_DECAY_EXPONENT + 5) * 60.0
    h.add(2, 1.0, later)
    assert h.reference == later
    assert h.total < 2.0
    assert h.percentile(0.95) == 3.0  # bucket 2 holds exactly 2 GPUs; upper bound 3


def test_checkpoint_round_trip_keeps_percentiles() -> None:
    h = DecayingHistogram(PERCENT_BUCKETS, DAY)
    for i in range(1000):
        h.add(i % 37, 1.0 + i % 3, i * 60.0)
    checkpoint = h.checkpoint()
    assert max(checkpoint.bucket_weights.values()) == 10_000
    restored = DecayingHistogram.from_checkpoint(checkpoint, PERCENT_BUCKETS, DAY)
    for fraction in (0.5, 0.9, 0.95, 0.99):
        assert restored.percentile(fraction) == h.percentile(fraction)
    assert restored.total == pytest.approx(h.total)


def test_queue_buckets_give_nothing_its_own_bucket_and_double_after() -> None:
    assert [QUEUE_BUCKETS.index(v) for v in (0.0, 0.4, 0.99, 1.0, 1.9, 2.0, 3.5, 4.0, 7.9, 8.0, 1e9)] == [0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 11]
    assert QUEUE_BUCKETS.index(float("nan")) == 0 and QUEUE_BUCKETS.index(float("inf")) == 11
    assert [QUEUE_BUCKETS.upper(i) for i in range(4)] == [1.0, 2.0, 4.0, 8.0]
    h = DecayingHistogram(QUEUE_BUCKETS, DAY)
    for value in [0.0] * 96 + [40.0] * 4:
        h.add(value, 1.0, 0.0)
    assert h.percentile(0.95) == 1.0  # p95: nothing waiting
    assert h.percentile(0.99) == 64.0  # 40 falls in [32, 64)
