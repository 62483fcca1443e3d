"""The `gpu` collector: NVIDIA GPUs through NVML (`node_agent.nvml_collector`).

pynvml is a large module (about 2.4 MiB resident), so it is imported only where NVIDIA's kernel
driver is loaded (the host's /proc/driver/nvidia exists; NVML needs the driver); elsewhere the
collector reports "NVML not available" and looks again on the next sample (a driver the GPU
operator installs later is found). Where pynvml is already imported (a fake NVML in tests) it is
used as it is.
"""

from __future__ import annotations

import sys

from resource_agent.api.samples import Sample
from resource_agent.node_agent.collectors.base import Collector, CollectorContext, CollectorUnavailable, register_collector


class NvmlGate(Collector):
    """The NVML collector, created once NVIDIA's driver is loaded."""

    name = "gpu"

    def __init__(self, context: CollectorContext) -> None:
        self.context = context
        self._collector: Collector | None = None

    def update(self, sample: Sample) -> None:
        if self._collector is None:
            self._collector = self._load()
        self._collector.update(sample)

    def _load(self) -> Collector:
        driver = self.context.host_proc / "driver" / "nvidia"
        if "pynvml" not in sys.modules and not driver.is_dir():
            raise CollectorUnavailable(f"NVML not available: no NVIDIA driver loaded ({driver} is missing)")
        from resource_agent.node_agent.nvml_collector import GpuCollector  # pynvml from here on

        return GpuCollector(self.context)

    def close(self) -> None:
        if self._collector is not None:
            self._collector.close()

    def status_reason(self) -> str | None:
        return self._collector.status_reason() if self._collector is not None else None


@register_collector("gpu")
def _gpu(context: CollectorContext) -> Collector:
    return NvmlGate(context)
