"""Exponentially decaying histograms with a fixed number of buckets (pure), after VPA's recommender.

An observation at time t is added with weight w * 2^((t - reference) / half_life): newer samples
weigh more, and an observation one half-life old counts half as much as a new one. The reference
moves forward (and every weight is scaled down with it) when the exponent grows large, so the
numbers stay finite however long the operator runs. Memory is fixed by the bucket count: a
histogram is its list of bucket weights, whatever the number of observations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from resource_agent.api.usage import MAX_CHECKPOINT_WEIGHT, HistogramCheckpoint

MAX_DECAY_EXPONENT = 100.0  # shift the reference once weights reach 2^100 (VPA's maxDecayExponent)
EPSILON = 1e-10


class Buckets(Protocol):
    """How values map to a fixed number of buckets."""

    @property
    def count(self) -> int: ...

    def index(self, value: float) -> int: ...

    def upper(self, index: int) -> float: ...


@dataclass(frozen=True)
class LinearBuckets:
    """`count` buckets of `width` from 0: bucket i holds [i*width, (i+1)*width); the last holds the rest."""

    width: float
    count: int

    def index(self, value: float) -> int:
        if value <= 0 or math.isnan(value):
            return 0
        return min(self.count - 1, int(value / self.width))

    def upper(self, index: int) -> float:
        """The upper bound of bucket `index` (what a percentile falling in it reports)."""
        return (index + 1) * self.width

    def lower(self, index: int) -> float:
        return index * self.width


@dataclass(frozen=True)
class GeometricBuckets:
    """Bucket 0 holds [0, first); bucket i >= 1 holds [first * ratio^(i-1), first * ratio^i); the last holds the rest.

    For counts that span orders of magnitude (a serving engine's queue): "nothing" has a bucket of its
    own, and the relative error stays the same from 1 to 1,000."""

    first: float
    ratio: float
    count: int

    def index(self, value: float) -> int:
        if value < self.first or math.isnan(value):
            return 0
        if math.isinf(value):
            return self.count - 1
        return min(self.count - 1, 1 + math.floor(math.log(value / self.first, self.ratio) + 1e-9))

    def upper(self, index: int) -> float:
        return self.first * self.ratio**index

    def lower(self, index: int) -> float:
        return 0.0 if index <= 0 else self.first * self.ratio ** (index - 1)


PERCENT_BUCKETS = LinearBuckets(width=2.5, count=40)  # 0-100 %
GPU_COUNT_BUCKETS = LinearBuckets(width=1.0, count=17)  # 0..16 GPUs per pod (16 and above in the last)
QUEUE_BUCKETS = GeometricBuckets(first=1.0, ratio=2.0, count=12)  # requests: 0, 1, 2-3, 4-7, ... 1024 and above


class DecayingHistogram:
    __slots__ = ("buckets", "half_life", "reference", "total", "weights")

    def __init__(self, buckets: Buckets, half_life_seconds: float, reference: float = 0.0) -> None:
        self.buckets = buckets
        self.half_life = half_life_seconds
        self.reference = reference
        self.weights = [0.0] * buckets.count
        self.total = 0.0

    def add(self, value: float, weight: float, timestamp: float) -> None:
        if weight <= 0:
            return
        exponent = (timestamp - self.reference) / self.half_life
        if exponent > MAX_DECAY_EXPONENT:
            self._shift_reference(timestamp)
            exponent = 0.0
        scaled = weight * 2.0**exponent
        self.weights[self.buckets.index(value)] += scaled
        self.total += scaled

    def _shift_reference(self, new_reference: float) -> None:
        factor = 2.0 ** ((self.reference - new_reference) / self.half_life)
        self.weights = [weight * factor for weight in self.weights]
        self.total *= factor
        self.reference = new_reference

    @property
    def empty(self) -> bool:
        return self.total < EPSILON

    def percentile(self, fraction: float) -> float:
        """The upper bound of the bucket where the cumulative weight reaches `fraction` (0 when empty)."""
        if self.empty:
            return 0.0
        threshold = fraction * self.total
        cumulative = 0.0
        for index, weight in enumerate(self.weights):
            cumulative += weight
            if cumulative >= threshold - EPSILON * self.total and weight > 0:
                return self.buckets.upper(index)
        return self.buckets.upper(self.buckets.count - 1)

    def share_at_or_above(self, value: float) -> float:
        """The (decayed) share of weight in buckets at or above the one holding `value`."""
        if self.empty:
            return 0.0
        start = self.buckets.index(value)
        return sum(self.weights[start:]) / self.total

    # --- checkpoints -----------------------------------------------------------------

    def checkpoint(self) -> HistogramCheckpoint:
        """Sparse weights scaled so the largest is MAX_CHECKPOINT_WEIGHT (as VPA stores them)."""
        largest = max(self.weights, default=0.0)
        if largest <= 0:
            return HistogramCheckpoint(reference_timestamp=self.reference, total_weight=0.0)
        ratio = MAX_CHECKPOINT_WEIGHT / largest
        weights = {str(index): round(weight * ratio) for index, weight in enumerate(self.weights) if round(weight * ratio) > 0}
        return HistogramCheckpoint(reference_timestamp=self.reference, total_weight=self.total, bucket_weights=weights)

    @classmethod
    def from_checkpoint(cls, checkpoint: HistogramCheckpoint, buckets: Buckets, half_life_seconds: float) -> DecayingHistogram:
        histogram = cls(buckets, half_life_seconds, checkpoint.reference_timestamp)
        scaled = {int(index): weight for index, weight in checkpoint.bucket_weights.items() if 0 <= int(index) < buckets.count}
        scaled_total = sum(scaled.values())
        if scaled_total <= 0 or checkpoint.total_weight <= 0:
            return histogram
        ratio = checkpoint.total_weight / scaled_total
        for index, weight in scaled.items():
            histogram.weights[index] = weight * ratio
        histogram.total = checkpoint.total_weight
        return histogram
