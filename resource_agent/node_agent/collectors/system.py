"""The host: CPU, memory, swap, disks, network, uptime (the host's /proc and /sys).

Every figure is read from the host's files: /proc under `--host-proc` (like
node_exporter's --path.procfs), /sys under `--host-sys`, and the host's /dev
and /etc under `--host-root`. Each reader is a few lines (below) and keeps the
kernel's meaning and node_exporter's: /proc/stat (per-core shares keyed by core
id, btime), /proc/meminfo (memory and swap as psutil 7 and free compute them,
Cached alone as node_exporter), /proc/vmstat pswpin/pswpout, /proc/diskstats,
/proc/net/dev, the mount table and statvfs. The agent imported psutil for four
of these; reading them here saves it ~1 MiB of RSS and re-reading meminfo and
all of vmstat every sample. Rates come from the difference to the previous
sample, never from a blocking sleep, and are None on the first sample, for a
device seen for the first time, and after a counter reset. A malformed line is
skipped and named in the status reason; the rest of its file is read.
"""

from __future__ import annotations

import os
import posixpath
import re
import socket
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from resource_agent.api.samples import CpuSample, DiskSample, MemorySample, NetworkSample, Sample, SystemSample
from resource_agent.node_agent.collectors.base import Collector, CollectorContext, register_collector

# node_exporter's default diskstats filter: RAM and loop devices, floppies and partitions.
IGNORED_DISKS = re.compile(r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p|mmcblk\d+p)\d+$")
# Loopback and the per-pod virtual interfaces that come and go with every pod.
IGNORED_INTERFACES = re.compile(r"^(lo|veth.*|cali.*|cilium_.*|lxc.*|docker\d+|cni\d+|flannel.*|tunl\d+|kube-ipvs\d+)$")


# Sectors in /proc/diskstats are 512 bytes whatever the device's block size
# (Documentation/admin-guide/iostats.rst; node_exporter diskstats_linux.go unixSectorSize).
SECTOR_BYTES = 512
# /proc/vmstat pswpin/pswpout count pages (mm/page_io.c counts PSWPIN/PSWPOUT per page);
# psutil multiplies them by a fixed 4 KiB, wrong on 16 KiB/64 KiB-page kernels (arm64, ppc64le).
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SWAP_COUNTERS = frozenset({"pswpin", "pswpout"})  # the /proc/vmstat lines the collector reads (pages swapped in, out)
# /proc/stat CPU times are in USER_HZ ticks (proc(5)).
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Deepest symlink chain followed when resolving a device path under the host root.
MAX_SYMLINKS = 40


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
    per_core: Mapping[int, tuple[float, float]]  # core id -> (busy, total)
    context_switches: int | None
    swap_in: int | None  # bytes (pages x page size)
    swap_out: int | None
    disks: Mapping[str, _DiskCounters]
    networks: Mapping[str, tuple[int, int, int, int, int, int]]  # rx/tx bytes, errors, drops


@dataclass(frozen=True)
class _DiskCounters:
    """The /proc/diskstats fields a sample uses (fields numbered as in iostats.rst, after the name)."""

    read_bytes: int  # field 3, sectors read x 512
    write_bytes: int  # field 7
    reads: int  # field 1, reads completed
    writes: int  # field 5
    busy_ms: int  # field 10, time with I/O in flight
    weighted_ms: int  # field 11, time x requests in flight (node_disk_io_time_weighted_seconds_total)
    read_write_ms: int  # fields 4 + 8, time reads and writes took from issue to completion

    def as_tuple(self) -> tuple[int, ...]:
        return (self.read_bytes, self.write_bytes, self.reads, self.writes, self.busy_ms, self.weighted_ms, self.read_write_ms)


@dataclass(frozen=True)
class _ProcStat:
    """What a sample uses of /proc/stat."""

    cpu: tuple[float, float, float, float]  # busy, iowait, steal, total (seconds)
    per_core: dict[int, tuple[float, float]]  # core id -> (busy, total)
    context_switches: int | None
    boot_time: float | None  # btime, unix seconds


def _cpu_counters(ticks: list[int]) -> tuple[float, float, float, float]:
    """(busy, iowait, steal, total) seconds of one /proc/stat cpu line's ticks.

    Fields: user nice system idle iowait irq softirq steal guest guest_nice (proc(5));
    guest time is already counted in user/nice, so it is left out of the total."""
    user, nice, system, idle, iowait, irq, softirq, steal, _guest, _guest_nice = (ticks + [0] * 10)[:10]
    total = (user + nice + system + idle + iowait + irq + softirq + steal) / CLOCK_TICKS
    iowait_s, steal_s = iowait / CLOCK_TICKS, steal / CLOCK_TICKS
    return total - (idle + iowait) / CLOCK_TICKS, iowait_s, steal_s, total


class ProcFormatError(ValueError):
    """A /proc file with nothing usable in it (a file with some bad lines is read, the bad lines reported)."""


_UNSIGNED = re.compile(r"\A[0-9]+\Z")  # ASCII digits only: str.isdigit() takes "²", int() takes "1_0" and " 1"
_SIGNED = re.compile(r"\A-?[0-9]+\Z")
MAX_PROBLEM_TEXT = 80  # characters of a bad line quoted in a problem
MAX_PROBLEMS_SHOWN = 5  # problems named in the collector's status reason


def _report(problems: list[str] | None, source: str, number: int, line: str, why: str) -> None:
    """Record a skipped line ("<file> line <n>: <why>: '<text>'"); the rest of the file is still read."""
    if problems is not None:
        quoted = line if len(line) <= MAX_PROBLEM_TEXT else line[:MAX_PROBLEM_TEXT] + "..."
        problems.append(f"{source} line {number}: {why}: {quoted!r}")


_DECIMAL = re.compile(r"\A[0-9]+(\.[0-9]+)?\Z")


def _decimal(text: str) -> float | None:
    """A non-negative decimal as the kernel prints it ("12.50"), else None (no "nan", "inf" or "1_0")."""
    text = text.strip()
    return float(text) if _DECIMAL.match(text) else None


def _unsigned(fields: list[str]) -> list[int] | None:
    return [int(field) for field in fields] if all(_UNSIGNED.match(field) for field in fields) else None


def parse_proc_stat(text: str, problems: list[str] | None = None, source: str = "/proc/stat") -> _ProcStat:
    """The aggregate and per-core CPU times (keyed by the N of cpuN: offline cores are absent), ctxt, btime.

    A malformed cpu, ctxt or btime line is skipped and reported in `problems`; without a usable
    aggregate "cpu" line the file is useless and ProcFormatError is raised."""
    cpu: tuple[float, float, float, float] | None = None
    per_core: dict[int, tuple[float, float]] = {}
    context_switches = boot_time = None
    for number, line in enumerate(text.splitlines(), start=1):
        key, _, rest = line.partition(" ")
        if key == "cpu" or (key.startswith("cpu") and _UNSIGNED.match(key[3:])):
            ticks = _unsigned(rest.split())
            if ticks is None:
                _report(problems, source, number, line, "CPU times that are not counters")
            elif key == "cpu":
                cpu = _cpu_counters(ticks)
            else:
                busy, _, _, total = _cpu_counters(ticks)
                per_core[int(key[3:])] = (busy, total)
        elif key == "ctxt":
            if _UNSIGNED.match(rest.strip()):
                context_switches = int(rest)
            else:
                _report(problems, source, number, line, "ctxt is not a counter")
        elif key == "btime":
            if _UNSIGNED.match(rest.strip()):
                boot_time = float(rest)
            else:
                _report(problems, source, number, line, "btime is not a time")
    if cpu is None:
        raise ProcFormatError(f"{source} has no usable 'cpu' line")
    return _ProcStat(cpu=cpu, per_core=per_core, context_switches=context_switches, boot_time=boot_time)


def parse_meminfo(text: str, problems: list[str] | None = None, source: str = "/proc/meminfo") -> dict[str, int]:
    """/proc/meminfo in bytes ("Cached:   2000 kB" -> {"Cached": 2048000}); HugePages_* counts stay counts.

    Lines that are not "Key: N" or "Key: N kB" are skipped and reported in `problems`."""
    values = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, colon, rest = line.partition(":")
        fields = rest.split()
        if colon and key.strip() and fields and _UNSIGNED.match(fields[0]) and fields[1:] in ([], ["kB"]):
            values[key.strip()] = int(fields[0]) * (1024 if fields[1:] == ["kB"] else 1)
        else:
            _report(problems, source, number, line, "not 'Key: N [kB]'")
    return values


def parse_vmstat(text: str, problems: list[str] | None = None, source: str = "/proc/vmstat",
                 keys: Collection[str] | None = None) -> dict[str, int]:
    """/proc/vmstat ("name value" per line); other lines are skipped and reported in `problems`. With `keys`,
    only the lines of those names are read (and checked): the agent needs 2 of ~180."""
    values = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or (keys is not None and line.split(maxsplit=1)[0] not in keys):
            continue
        fields = line.split()
        if len(fields) == 2 and _SIGNED.match(fields[1]):
            values[fields[0]] = int(fields[1])
        else:
            _report(problems, source, number, line, "not 'name value'")
    return values


def parse_diskstats(text: str, problems: list[str] | None = None, source: str = "/proc/diskstats") -> dict[str, _DiskCounters]:
    """/proc/diskstats by device name, as node_exporter reads it (procfs blockdevice, diskstats_linux.go).

    Each line: major minor name, then 11 fields (15 since 4.18, 17 since 5.5); lines with fewer
    (the 4-field partition lines of kernels before 2.6.25) are skipped. A line whose fields are
    not counters is skipped and reported in `problems`; the other devices are kept."""
    disks = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if len(fields) < 14:
            continue
        stats = _unsigned(fields[3:14])
        if stats is None:
            _report(problems, source, number, line, "disk statistics that are not counters")
            continue
        name = fields[2]
        reads, _, sectors_read, read_ms, writes, _, sectors_written, write_ms, _, busy_ms, weighted_ms = stats
        disks[name] = _DiskCounters(
            read_bytes=sectors_read * SECTOR_BYTES,
            write_bytes=sectors_written * SECTOR_BYTES,
            reads=reads,
            writes=writes,
            busy_ms=busy_ms,
            weighted_ms=weighted_ms,
            read_write_ms=read_ms + write_ms,
        )
    return disks


def parse_net_dev(text: str, problems: list[str] | None = None, source: str = "/proc/net/dev") -> dict[str, tuple[int, int, int, int, int, int]]:
    """/proc/net/dev by interface: (rx bytes, tx bytes, rx errors, tx errors, rx drops, tx drops).

    After two header lines, each line is "name: " and 16 counters, 8 received (bytes packets errs drop fifo frame
    compressed multicast), then 8 sent (bytes packets errs drop fifo colls carrier compressed), as
    net/core/net-procfs.c prints them. A line that is not is skipped and reported in `problems`."""
    interfaces = {}
    for number, line in enumerate(text.splitlines()[2:], start=3):
        name, colon, rest = line.rpartition(":")
        counters = _unsigned(rest.split())
        if not colon or not name.strip() or counters is None or len(counters) < 16:
            if line.strip():
                _report(problems, source, number, line, "not 'name: 16 counters'")
            continue
        interfaces[name.strip()] = (counters[0], counters[8], counters[2], counters[10], counters[3], counters[11])
    return interfaces


def parse_mounts(text: str) -> list[tuple[str, str]]:
    """(device, mountpoint) of each line of a mount table (/proc/<pid>/mounts, fstab(5) fields; a space in a
    path is written as \\040)."""
    return [(fields[0], fields[1].replace("\\040", " ")) for fields in (line.split() for line in text.splitlines()) if len(fields) >= 2]


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
        self.node_name = context.node_name  # --node-name, RESOURCE_AGENT_NODE_NAME or $NODE_NAME
        self.cpu_model = self._cpu_model()
        self._previous: _Reading | None = None
        self._problems: list[str] = []  # lines of the last update's /proc files that were skipped

    def status_reason(self) -> str | None:
        """The malformed /proc lines the last update skipped (the rest of each file was read)."""
        if not self._problems:
            return None
        shown = "; ".join(self._problems[:MAX_PROBLEMS_SHOWN])
        more = len(self._problems) - MAX_PROBLEMS_SHOWN
        return f"skipped malformed lines: {shown}" + (f" (and {more} more)" if more > 0 else "")

    def update(self, sample: Sample) -> None:
        now = time.monotonic()
        problems: list[str] = []
        self._problems = problems
        stat = parse_proc_stat((self.host_proc / "stat").read_text(errors="replace"), problems, str(self.host_proc / "stat"))
        meminfo = parse_meminfo((self.host_proc / "meminfo").read_text(errors="replace"), problems, str(self.host_proc / "meminfo"))
        memory = self._memory(meminfo)
        swap_in, swap_out = self._swap_counters()
        disk_io = self._disk_counters()
        net_io = self._network_counters()
        reading = _Reading(
            at=now,
            cpu=stat.cpu,
            per_core=stat.per_core,
            context_switches=stat.context_switches,
            swap_in=swap_in,
            swap_out=swap_out,
            disks=disk_io,
            networks=net_io,
        )
        previous, self._previous = self._previous, reading
        seconds = now - previous.at if previous else 0.0
        load1, load5, load15 = self._load_average()
        sample.system = SystemSample(
            hostname=self._hostname(),
            boot_id=self._read_text(self.host_proc / "sys/kernel/random/boot_id"),
            uptime_seconds=self._uptime(stat.boot_time),
            cpu=CpuSample(
                utilization_percent=self._cpu_share(reading, previous, 0),
                per_core_utilization_percent=self._per_core(reading, previous),
                iowait_percent=self._cpu_share(reading, previous, 1),
                steal_percent=self._cpu_share(reading, previous, 2),
                frequency_mhz=self._frequency_mhz(),
                load1=load1,
                load5=load5,
                load15=load15,
                context_switches_per_second=_counter_rate(reading.context_switches, previous.context_switches if previous else None, seconds),
                logical_cores=len(stat.per_core),
                model=self.cpu_model,
            ),
            memory=MemorySample(
                total_bytes=memory.total,
                available_bytes=memory.available,
                used_bytes=memory.used,
                # the page cache, as node_memory_Cached_bytes; psutil's `cached` adds SReclaimable (slab)
                cached_bytes=meminfo.get("Cached", 0),
                buffers_bytes=memory.buffers,
                swap_total_bytes=memory.swap_total,
                swap_used_bytes=memory.swap_used,
                swap_in_bytes_per_second=_counter_rate(swap_in, previous.swap_in if previous else None, seconds),
                swap_out_bytes_per_second=_counter_rate(swap_out, previous.swap_out if previous else None, seconds),
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
    def _per_core(reading: _Reading, previous: _Reading | None) -> list[float | None]:
        """Shares indexed by core id; None for a core offline now or at the previous sample, or reset."""
        if previous is None or not reading.per_core:
            return []
        shares: list[float | None] = [None] * (max(reading.per_core) + 1)
        for core, (busy, total) in reading.per_core.items():
            before = previous.per_core.get(core)
            if before is not None:
                shares[core] = _share(busy, before[0], total, before[1])
        return shares

    # --- memory ------------------------------------------------------------------

    def _memory(self, meminfo: Mapping[str, int]) -> _Memory:
        if "MemTotal" not in meminfo:
            raise ProcFormatError(f"{self.host_proc / 'meminfo'} has no usable MemTotal line")
        return _memory_from_meminfo(meminfo)

    def _swap_counters(self) -> tuple[int | None, int | None]:
        """Bytes swapped in and out since boot: /proc/vmstat pswpin/pswpout (pages) x the kernel's page size."""
        text = self._read_text(self.host_proc / "vmstat")
        if text is None:
            return None, None
        vmstat = parse_vmstat(text, self._problems, str(self.host_proc / "vmstat"), keys=SWAP_COUNTERS)
        pages_in, pages_out = vmstat.get("pswpin"), vmstat.get("pswpout")
        return (
            None if pages_in is None else pages_in * PAGE_SIZE,
            None if pages_out is None else pages_out * PAGE_SIZE,
        )

    def _frequency_mhz(self) -> float | None:
        """Mean current frequency over cores (sysfs cpufreq in kHz, else /proc/cpuinfo)."""
        values = []
        for path in (self.host_sys / "devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_cur_freq"):
            text = self._read_text(path)
            if text and _UNSIGNED.match(text):
                values.append(int(text) / 1000)
        if values:
            return sum(values) / len(values)
        cpuinfo = self._read_text(self.host_proc / "cpuinfo") or ""
        mhz = [value for line in cpuinfo.splitlines() if line.lower().startswith("cpu mhz") and (value := _decimal(line.partition(":")[2])) is not None]
        return sum(mhz) / len(mhz) if mhz else None

    def _cpu_model(self) -> str | None:
        cpuinfo = self._read_text(self.host_proc / "cpuinfo") or ""
        for line in cpuinfo.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "cpu model"):
                return value.strip()
        return None

    def _uptime(self, boot_time: float | None) -> float:
        """/proc/uptime, else now - btime of /proc/stat (node_exporter's node_boot_time_seconds is btime)."""
        text = self._read_text(self.host_proc / "uptime")
        if text is not None and (uptime := _decimal(text.split()[0])) is not None:
            return uptime
        if text is not None:
            self._problems.append(f"{self.host_proc / 'uptime'}: not a number of seconds: {text[:MAX_PROBLEM_TEXT]!r}")
        if boot_time is None:
            raise FileNotFoundError(f"neither {self.host_proc / 'uptime'} nor btime in {self.host_proc / 'stat'}")
        return max(0.0, time.time() - boot_time)

    def _load_average(self) -> tuple[float, float, float]:
        text = (self.host_proc / "loadavg").read_text(errors="replace")
        loads = [_decimal(field) for field in text.split()[:3]]
        if len(loads) < 3 or None in loads:
            raise ProcFormatError(f"{self.host_proc / 'loadavg'}: no three load averages in {text[:MAX_PROBLEM_TEXT]!r}")
        return loads[0] or 0.0, loads[1] or 0.0, loads[2] or 0.0

    # --- disks -------------------------------------------------------------------

    def _disk_counters(self) -> dict[str, _DiskCounters]:
        text = self._read_text(self.host_proc / "diskstats")
        if text is None:
            return {}
        return {name: counters for name, counters in parse_diskstats(text, self._problems, str(self.host_proc / "diskstats")).items() if not IGNORED_DISKS.match(name)}

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
            disk = self._parent_disk(self._block_device(device))
            if disk in mounted:
                continue
            try:
                usage = os.statvfs(self.host_root / mountpoint.lstrip("/"))
            except OSError:  # not visible from this mount namespace
                continue
            # as df and node_exporter: blocks x fragment size; used = total - free (including root's reserve)
            mounted[disk] = (mountpoint, usage.f_blocks * usage.f_frsize, (usage.f_blocks - usage.f_bfree) * usage.f_frsize)
        return mounted

    def _partitions(self) -> list[tuple[str, str]]:
        """(device, mountpoint) of every mount the host's mount table lists: this process's when it runs on the
        host (--host-root /), else the host's init's; the caller keeps the /dev/ devices."""
        table = "self/mounts" if self.host_root == Path("/") else "1/mounts"
        return parse_mounts((self.host_proc / table).read_text(errors="replace"))

    def _block_device(self, device: str) -> str:
        """The kernel name (as in /proc/diskstats) of a /dev path from the host's mount table.

        Resolved against the host, never the container: /dev/mapper/<name> is the dm-N whose
        <host-sys>/block/dm-N/dm/name is <name>; other paths follow their symlinks under
        <host-root>/dev (/dev/mapper/x -> ../dm-0, /dev/disk/by-uuid/... -> ../../sda1)."""
        if device.startswith("/dev/mapper/"):
            mapped = device.removeprefix("/dev/mapper/")
            for entry in sorted((self.host_sys / "block").glob("dm-*")):
                if self._read_text(entry / "dm/name") == mapped:
                    return entry.name
        return posixpath.basename(self._resolve_in_host(device))

    def _resolve_in_host(self, path: str) -> str:
        """Follow the symlinks of a host path under the host root (absolute targets stay in it)."""
        for _ in range(MAX_SYMLINKS):
            try:
                target = os.readlink(self.host_root / path.lstrip("/"))
            except OSError:  # not a link, or not there
                return path
            path = posixpath.normpath(target if target.startswith("/") else posixpath.join(posixpath.dirname(path), target))
        return path

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
            rates: list[float | None] = [None] * 7
            if current is not None and before is not None:
                rates = [rate(now, then, seconds) for now, then in zip(current.as_tuple(), before.as_tuple(), strict=True)]
            busy_ms, weighted_ms, read_write_ms = rates[4], rates[5], rates[6]
            ios = None if rates[2] is None or rates[3] is None else rates[2] + rates[3]
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
                    # iostat's aqu-sz: rate(node_disk_io_time_weighted_seconds_total)
                    queue_depth=None if weighted_ms is None else weighted_ms / 1000.0,
                    # iostat's await: time per completed read/write; undefined when none completed
                    await_seconds=None if read_write_ms is None or not ios else read_write_ms / ios / 1000.0,
                )
            )
        return disks

    # --- network -----------------------------------------------------------------

    def _network_counters(self) -> dict[str, tuple[int, int, int, int, int, int]]:
        text = self._read_text(self.host_proc / "net/dev")
        if text is None:
            return {}
        counters = parse_net_dev(text, self._problems, str(self.host_proc / "net/dev"))
        return {name: values for name, values in counters.items() if not IGNORED_INTERFACES.match(name)}

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
        """The node's name, not the pod's.

        The configured node name (--node-name, RESOURCE_AGENT_NODE_NAME, or $NODE_NAME, which the
        chart sets from spec.nodeName), else the host's /etc/hostname under
        --host-root, else <host-proc>/sys/kernel/hostname. That last file shows the *reader's* UTS
        namespace (kernel/utsname_sysctl.c), so it is the node's only when the agent shares the
        host's (hostNetwork pods do, and so does a process on the host)."""
        if node_name := (self.node_name or os.environ.get("NODE_NAME", "")).strip():
            return node_name
        if self.host_root != Path("/") and (name := self._read_text(self.host_root / "etc/hostname")):
            return name
        return self._read_text(self.host_proc / "sys/kernel/hostname") or socket.gethostname()

    @staticmethod
    def _read_text(path: Path) -> str | None:
        try:
            return path.read_text(errors="replace").strip() or None
        except OSError:
            return None


@dataclass(frozen=True)
class _Memory:
    total: int
    available: int
    used: int
    buffers: int
    swap_total: int
    swap_used: int


def _memory_from_meminfo(meminfo: Mapping[str, int]) -> _Memory:
    """Memory and swap as psutil 7 and procps-ng 4 `free` compute them (psutil/_pslinux.py virtual_memory,
    swap_memory): available = MemAvailable (kernel 3.14+; without it MemFree + Buffers + Cached + SReclaimable),
    used = total - available; swap used = SwapTotal - SwapFree."""
    total, free = meminfo["MemTotal"], meminfo.get("MemFree", 0)
    buffers = meminfo.get("Buffers", 0)
    available = meminfo.get("MemAvailable") or free + buffers + meminfo.get("Cached", 0) + meminfo.get("SReclaimable", 0)
    if available > total:  # psutil's guard against a bogus MemAvailable
        available = free
    swap_total = meminfo.get("SwapTotal", 0)
    return _Memory(total, available, total - available, buffers, swap_total, max(0, swap_total - meminfo.get("SwapFree", swap_total)))


def _counter_rate(current: int | None, previous: int | None, seconds: float) -> float | None:
    return None if current is None else rate(current, previous, seconds)


@register_collector("system")
def _system(context: CollectorContext) -> Collector:
    return SystemCollector(context)
