"""The host: CPU, memory, swap, disks, network, uptime (psutil over the host's /proc and /sys).

psutil reads `psutil.PROCFS_PATH`, which this collector points at
`--host-proc` (like node_exporter's --path.procfs); what psutil reads from a
fixed /sys is read here from `--host-sys`. Rates come from the difference to
the previous sample, never from a blocking sleep, and are None on the first
sample, for a device seen for the first time, and after a counter reset.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from resource_agent.api.samples import CpuSample, DiskSample, MemorySample, NetworkSample, Sample, SystemSample
from resource_agent.node_agent.collectors.base import Collector, CollectorContext, register_collector

# node_exporter's default diskstats filter: RAM and loop devices, floppies and partitions.
IGNORED_DISKS = re.compile(r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p|mmcblk\d+p)\d+$")
# Loopback and the per-pod virtual interfaces that come and go with every pod.
IGNORED_INTERFACES = re.compile(r"^(lo|veth.*|cali.*|cilium_.*|lxc.*|docker\d+|cni\d+|flannel.*|tunl\d+|kube-ipvs\d+)$")


def rate(current: float, previous: float | None, seconds: float) -> float | None:
    """Per-second increase of a counter; None without a previous value, time, or after a reset/wrap."""
    if previous is None or seconds <= 0 or current < previous:
        return None
    return (current - previous) / seconds


@dataclass(frozen=True)
class _Reading:
    """Raw counters of one sample, kept for the next sample's rates."""

    at: float
    cpu: tuple[float, float, float, float]  # busy, iowait, steal, total (seconds)
    per_core: tuple[tuple[float, float], ...]  # (busy, total) per core
    context_switches: int
    swap_in: int
    swap_out: int
    disks: Mapping[str, tuple[int, int, int, int, int]]  # read bytes, write bytes, reads, writes, busy ms
    networks: Mapping[str, tuple[int, int, int, int, int, int]]  # rx/tx bytes, errors, drops


def _cpu_counters(times: psutil._common.scputimes) -> tuple[float, float, float, float]:  # type: ignore[name-defined]
    # guest time is already counted in user/nice on Linux
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, getattr(times, "iowait", 0.0), getattr(times, "steal", 0.0), total


FLOAT_NOISE_SECONDS = 1e-6  # busy = total - idle of float seconds can step back by rounding alone


def _share(part: float, previous_part: float, total: float, previous_total: float) -> float | None:
    elapsed = total - previous_total
    delta = part - previous_part
    if elapsed <= 0 or delta < -FLOAT_NOISE_SECONDS:  # a counter reset, not an idle interval
        return None
    return min(100.0, max(0.0, 100.0 * delta / elapsed))


class SystemCollector(Collector):
    name = "system"

    def __init__(self, context: CollectorContext) -> None:
        self.host_proc = context.host_proc
        self.host_sys = context.host_sys
        self.host_root = context.host_root
        psutil.PROCFS_PATH = str(context.host_proc)
        self.cpu_model = self._cpu_model()
        self._previous: _Reading | None = None

    def update(self, sample: Sample) -> None:
        now = time.monotonic()
        cpu_times = psutil.cpu_times()
        core_times = psutil.cpu_times(percpu=True)
        memory = psutil.virtual_memory()
        swap = psutil.swap_memory()
        disk_io = self._disk_counters()
        net_io = self._network_counters()
        reading = _Reading(
            at=now,
            cpu=_cpu_counters(cpu_times),
            per_core=tuple((busy, total) for busy, _, _, total in map(_cpu_counters, core_times)),
            context_switches=psutil.cpu_stats().ctx_switches,
            swap_in=swap.sin,
            swap_out=swap.sout,
            disks=disk_io,
            networks=net_io,
        )
        previous, self._previous = self._previous, reading
        seconds = now - previous.at if previous else 0.0
        load1, load5, load15 = self._load_average()
        sample.system = SystemSample(
            hostname=self._hostname(),
            boot_id=self._read_text(self.host_proc / "sys/kernel/random/boot_id"),
            uptime_seconds=float((self.host_proc / "uptime").read_text().split()[0]),
            cpu=CpuSample(
                utilization_percent=self._cpu_share(reading, previous, 0),
                per_core_utilization_percent=self._per_core(reading, previous),
                iowait_percent=self._cpu_share(reading, previous, 1),
                steal_percent=self._cpu_share(reading, previous, 2),
                frequency_mhz=self._frequency_mhz(),
                load1=load1,
                load5=load5,
                load15=load15,
                context_switches_per_second=rate(reading.context_switches, previous.context_switches if previous else None, seconds),
                logical_cores=len(core_times),
                model=self.cpu_model,
            ),
            memory=MemorySample(
                total_bytes=memory.total,
                available_bytes=memory.available,
                used_bytes=memory.used,
                cached_bytes=getattr(memory, "cached", 0),
                buffers_bytes=getattr(memory, "buffers", 0),
                swap_total_bytes=swap.total,
                swap_used_bytes=swap.used,
                swap_in_bytes_per_second=rate(swap.sin, previous.swap_in if previous else None, seconds),
                swap_out_bytes_per_second=rate(swap.sout, previous.swap_out if previous else None, seconds),
            ),
            disks=self._disks(reading, previous, seconds),
            networks=self._networks(reading, previous, seconds),
        )

    # --- cpu ---------------------------------------------------------------------

    @staticmethod
    def _cpu_share(reading: _Reading, previous: _Reading | None, part: int) -> float | None:
        if previous is None:
            return None
        return _share(reading.cpu[part], previous.cpu[part], reading.cpu[3], previous.cpu[3])

    @staticmethod
    def _per_core(reading: _Reading, previous: _Reading | None) -> list[float]:
        if previous is None or len(previous.per_core) != len(reading.per_core):
            return []
        shares = [_share(busy, old_busy, total, old_total) for (busy, total), (old_busy, old_total) in zip(reading.per_core, previous.per_core, strict=True)]
        return [share for share in shares if share is not None]

    def _frequency_mhz(self) -> float | None:
        """Mean current frequency over cores (sysfs cpufreq in kHz, else /proc/cpuinfo)."""
        values = []
        for path in (self.host_sys / "devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_cur_freq"):
            text = self._read_text(path)
            if text and text.isdigit():
                values.append(int(text) / 1000)
        if values:
            return sum(values) / len(values)
        cpuinfo = self._read_text(self.host_proc / "cpuinfo") or ""
        mhz = [float(line.split(":", 1)[1]) for line in cpuinfo.splitlines() if line.lower().startswith("cpu mhz")]
        return sum(mhz) / len(mhz) if mhz else None

    def _cpu_model(self) -> str | None:
        cpuinfo = self._read_text(self.host_proc / "cpuinfo") or ""
        for line in cpuinfo.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "cpu model"):
                return value.strip()
        return None

    def _load_average(self) -> tuple[float, float, float]:
        fields = (self.host_proc / "loadavg").read_text().split()
        return float(fields[0]), float(fields[1]), float(fields[2])

    # --- disks -------------------------------------------------------------------

    def _disk_counters(self) -> dict[str, tuple[int, int, int, int, int]]:
        if not (self.host_proc / "diskstats").exists():
            return {}
        counters = psutil.disk_io_counters(perdisk=True, nowrap=False) or {}
        return {
            name: (io.read_bytes, io.write_bytes, io.read_count, io.write_count, io.busy_time)
            for name, io in counters.items()
            if not IGNORED_DISKS.match(name)
        }

    def _mounted_filesystems(self) -> dict[str, tuple[str, int, int]]:
        """Physical filesystems by disk name: (mountpoint, total bytes, used bytes); first mount wins."""
        mounted: dict[str, tuple[str, int, int]] = {}
        try:
            partitions = self._partitions()
        except OSError:
            return mounted
        for device, mountpoint in partitions:
            if not device.startswith("/dev/"):
                continue
            disk = self._parent_disk(Path(device).resolve().name)
            if disk in mounted:
                continue
            try:
                usage = psutil.disk_usage(str(self.host_root / mountpoint.lstrip("/")))
            except OSError:  # not visible from this mount namespace
                continue
            mounted[disk] = (mountpoint, usage.total, usage.used)
        return mounted

    def _partitions(self) -> list[tuple[str, str]]:
        """(device, mountpoint) of physical filesystems: the host's (its init's mounts) under --host-root."""
        if self.host_root == Path("/"):
            return [(p.device, p.mountpoint) for p in psutil.disk_partitions(all=False)]
        lines = (self.host_proc / "1/mounts").read_text().splitlines()
        return [(fields[0], fields[1].replace("\\040", " ")) for fields in (line.split() for line in lines) if len(fields) >= 2]

    def _parent_disk(self, name: str) -> str:
        """The whole disk a partition belongs to (sysfs), else the name itself."""
        entry = self.host_sys / "class/block" / name
        if (entry / "partition").exists():
            return entry.resolve().parent.name
        return name

    def _disks(self, reading: _Reading, previous: _Reading | None, seconds: float) -> list[DiskSample]:
        mounted = self._mounted_filesystems()
        names = list(reading.disks) + [name for name in mounted if name not in reading.disks]
        disks = []
        for name in names:
            mountpoint, total, used = mounted.get(name, (None, None, None))
            current = reading.disks.get(name)
            before = previous.disks.get(name) if previous else None
            rates: list[float | None] = [None] * 5
            if current is not None and before is not None:
                rates = [rate(now, then, seconds) for now, then in zip(current, before, strict=True)]
            busy_ms = rates[4]
            disks.append(
                DiskSample(
                    device=name,
                    mountpoint=mountpoint,
                    total_bytes=total,
                    used_bytes=used,
                    read_bytes_per_second=rates[0],
                    write_bytes_per_second=rates[1],
                    read_iops=rates[2],
                    write_iops=rates[3],
                    busy_percent=None if busy_ms is None else min(100.0, busy_ms / 10.0),  # ms busy per s -> %
                )
            )
        return disks

    # --- network -----------------------------------------------------------------

    def _network_counters(self) -> dict[str, tuple[int, int, int, int, int, int]]:
        if not (self.host_proc / "net/dev").exists():
            return {}
        counters = psutil.net_io_counters(pernic=True, nowrap=False)
        return {
            name: (io.bytes_recv, io.bytes_sent, io.errin, io.errout, io.dropin, io.dropout)
            for name, io in counters.items()
            if not IGNORED_INTERFACES.match(name)
        }

    @staticmethod
    def _networks(reading: _Reading, previous: _Reading | None, seconds: float) -> list[NetworkSample]:
        networks = []
        for name, current in reading.networks.items():
            before = previous.networks.get(name) if previous else None
            rates: list[float | None] = [None] * 6
            if before is not None:
                rates = [rate(now, then, seconds) for now, then in zip(current, before, strict=True)]
            networks.append(
                NetworkSample(
                    interface=name,
                    rx_bytes_per_second=rates[0],
                    tx_bytes_per_second=rates[1],
                    rx_errors_per_second=rates[2],
                    tx_errors_per_second=rates[3],
                    rx_drops_per_second=rates[4],
                    tx_drops_per_second=rates[5],
                )
            )
        return networks

    # --- identity ----------------------------------------------------------------

    def _hostname(self) -> str:
        return self._read_text(self.host_proc / "sys/kernel/hostname") or socket.gethostname()

    @staticmethod
    def _read_text(path: Path) -> str | None:
        try:
            return path.read_text().strip() or None
        except OSError:
            return None


@register_collector("system")
def _system(context: CollectorContext) -> Collector:
    return SystemCollector(context)
