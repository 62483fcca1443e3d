"""System and PSI collectors: this machine's /proc, and crafted /proc trees for the edge cases."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

from resource_agent.api.samples import CollectorState, Sample
from resource_agent.node_agent.collectors import system as system_module
from resource_agent.node_agent.collectors.base import CollectorContext, run_collectors
from resource_agent.node_agent.collectors.pressure import PressureCollector, PressureFormatError, parse_pressure
from resource_agent.node_agent.collectors.system import (
    SystemCollector,
    _memory_from_meminfo,
    parse_meminfo,
    parse_mounts,
    parse_net_dev,
    rate,
)

MEMINFO = """MemTotal:       16000000 kB
MemFree:         4000000 kB
MemAvailable:    8000000 kB
Buffers:          100000 kB
Cached:          2000000 kB
SwapCached:            0 kB
Active:          1000000 kB
Inactive:        1000000 kB
Shmem:             10000 kB
SReclaimable:     100000 kB
SwapTotal:       1000000 kB
SwapFree:         900000 kB
"""


def _diskstats(sectors_read: int, extra_disk: bool = False) -> str:
    line = "   8       0 {name} 100 0 {sectors} 50 200 0 4000 80 0 {io_ms} 130 0 0 0 0\n"
    text = line.format(name="sda", sectors=sectors_read, io_ms=sectors_read // 10) + line.format(name="loop0", sectors=0, io_ms=0)
    if extra_disk:
        text += line.format(name="nvme0n1", sectors=2048, io_ms=0)
    return text


def _net_dev(rx_bytes: int) -> str:
    return (
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs colls\n"
        f"    lo: 999 9 0 0 0 0 0 0 999 9 0 0 0 0 0 0\n"
        f"  eth0: {rx_bytes} 10 1 2 0 0 0 0 5000 20 0 0 0 0 0 0\n"
    )


def _stat(user: int, idle: int) -> str:
    return (
        f"cpu  {user} 0 0 {idle} 0 0 0 0 0 0\n"
        f"cpu0 {user} 0 0 {idle} 0 0 0 0 0 0\n"
        "intr 0\nctxt 1000\nbtime 1700000000\nprocesses 10\nprocs_running 1\nprocs_blocked 0\n"
    )


@pytest.fixture
def fake_proc(tmp_path: Path) -> Path:
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    (proc / "sys/kernel/random").mkdir(parents=True)
    (proc / "stat").write_text(_stat(100, 100))
    (proc / "meminfo").write_text(MEMINFO)
    (proc / "vmstat").write_text("pswpin 10\npswpout 20\n")
    (proc / "loadavg").write_text("1.50 1.00 0.50 1/100 4242\n")
    (proc / "uptime").write_text("12345.67 20000.00\n")
    (proc / "cpuinfo").write_text("processor\t: 0\nmodel name\t: Crafted CPU @ 3.00GHz\ncpu MHz\t\t: 3000.000\n")
    (proc / "diskstats").write_text(_diskstats(1000))
    (proc / "net/dev").write_text(_net_dev(1000))
    (proc / "sys/kernel/random/boot_id").write_text("crafted-boot\n")
    (proc / "sys/kernel/hostname").write_text("crafted-host\n")
    (proc / "filesystems").write_text("nodev\tproc\n\text4\n")
    (proc / "self").mkdir()
    (proc / "self/mounts").write_text("proc /proc proc rw 0 0\n")
    return proc


@pytest.fixture
def system_collector(fake_proc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SystemCollector:
    monkeypatch.delenv("NODE_NAME", raising=False)
    return SystemCollector(CollectorContext(host_proc=fake_proc, host_sys=tmp_path / "sys"))


def test_real_proc_gives_a_full_sample_and_rates_on_the_second() -> None:
    collector = SystemCollector(CollectorContext())
    first, second = Sample(timestamp=0.0), Sample(timestamp=1.0)
    collector.update(first)
    time.sleep(0.3)  # at least a few clock ticks of CPU time
    collector.update(second)
    assert first.system is not None and second.system is not None
    assert first.system.cpu.utilization_percent is None and first.system.cpu.context_switches_per_second is None
    assert second.system.cpu.utilization_percent is not None and 0 <= second.system.cpu.utilization_percent <= 100
    assert second.system.cpu.logical_cores == psutil.cpu_count()
    assert second.system.memory.total_bytes == psutil.virtual_memory().total
    assert second.system.uptime_seconds > 0 and second.system.boot_id
    assert all(not disk.device.startswith("loop") for disk in second.system.disks)


def test_the_readers_agree_with_psutil_on_this_machine() -> None:
    """psutil, a test dependency only, reads the same files independently (the agent no longer imports it)."""
    ours = parse_net_dev(Path("/proc/net/dev").read_text())
    theirs = psutil.net_io_counters(pernic=True, nowrap=False)  # read just after: counters can only have grown
    assert set(ours) == set(theirs)
    for name, io in theirs.items():
        rx, tx, rx_errors, tx_errors, rx_drops, tx_drops = ours[name]
        assert rx <= io.bytes_recv and tx <= io.bytes_sent and rx_errors <= io.errin and tx_errors <= io.errout
        assert rx_drops <= io.dropin and tx_drops <= io.dropout

    memory = _memory_from_meminfo(parse_meminfo(Path("/proc/meminfo").read_text()))
    virtual, swap = psutil.virtual_memory(), psutil.swap_memory()
    assert (memory.total, memory.swap_total) == (virtual.total, swap.total)
    slack = 64 * 2**20  # the two reads are moments apart on a machine running the test suite
    assert abs(memory.available - virtual.available) < slack and abs(memory.used - virtual.used) < slack
    assert abs(memory.swap_used - swap.used) < slack

    mounts = dict(parse_mounts(Path("/proc/self/mounts").read_text()))
    for partition in psutil.disk_partitions(all=False):
        if partition.device.startswith("/dev/"):
            assert partition.mountpoint in mounts.values()
            usage, theirs_usage = os.statvfs(partition.mountpoint), psutil.disk_usage(partition.mountpoint)
            assert usage.f_blocks * usage.f_frsize == theirs_usage.total


def test_net_dev_lines_that_are_not_counters_are_named_and_skipped() -> None:
    problems: list[str] = []
    text = _net_dev(100) + "  bad0: 1 2 3\n  eth1: x 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    assert set(parse_net_dev(text, problems)) == {"lo", "eth0"}
    assert len(problems) == 2 and "bad0" in problems[0] and "eth1" in problems[1]


def test_crafted_proc_values_and_rates(system_collector: SystemCollector, fake_proc: Path) -> None:
    first = Sample(timestamp=0.0)
    system_collector.update(first)
    assert first.system is not None
    assert (first.system.hostname, first.system.boot_id, first.system.uptime_seconds) == ("crafted-host", "crafted-boot", 12345.67)
    assert first.system.cpu.model == "Crafted CPU @ 3.00GHz" and first.system.cpu.frequency_mhz == 3000.0
    assert (first.system.cpu.load1, first.system.memory.total_bytes) == (1.5, 16_000_000 * 1024)
    assert [d.device for d in first.system.disks] == ["sda"]  # loop devices skipped
    assert [n.interface for n in first.system.networks] == ["eth0"]  # loopback skipped
    (fake_proc / "stat").write_text(_stat(175, 125))  # 75 busy of 100 elapsed ticks
    (fake_proc / "diskstats").write_text(_diskstats(3000))
    (fake_proc / "net/dev").write_text(_net_dev(5000))
    second = Sample(timestamp=1.0)
    system_collector.update(second)
    assert second.system is not None
    assert second.system.cpu.utilization_percent == pytest.approx(75.0)
    assert second.system.cpu.per_core_utilization_percent == [pytest.approx(75.0)]
    assert second.system.disks[0].read_bytes_per_second is not None and second.system.disks[0].read_bytes_per_second > 0
    assert second.system.networks[0].rx_bytes_per_second is not None and second.system.networks[0].rx_bytes_per_second > 0


def test_counter_reset_and_disk_that_appears_or_vanishes(system_collector: SystemCollector, fake_proc: Path) -> None:
    system_collector.update(Sample(timestamp=0.0))
    (fake_proc / "net/dev").write_text(_net_dev(10))  # counter went backwards: NIC reset or 32-bit wrap
    (fake_proc / "diskstats").write_text(_diskstats(2000, extra_disk=True))
    second = Sample(timestamp=1.0)
    system_collector.update(second)
    assert second.system is not None
    assert second.system.networks[0].rx_bytes_per_second is None
    by_name = {disk.device: disk for disk in second.system.disks}
    assert by_name["nvme0n1"].read_bytes_per_second is None  # new disk: no rate yet
    assert by_name["sda"].read_bytes_per_second is not None
    (fake_proc / "diskstats").write_text(_diskstats(2500))  # nvme0n1 vanished
    third = Sample(timestamp=2.0)
    system_collector.update(third)
    assert third.system is not None and [disk.device for disk in third.system.disks] == ["sda"]


def test_missing_optional_files_degrade_and_missing_required_fail(system_collector: SystemCollector, fake_proc: Path) -> None:
    (fake_proc / "diskstats").unlink()
    (fake_proc / "net/dev").unlink()
    (fake_proc / "sys/kernel/random/boot_id").unlink()
    sample = Sample(timestamp=0.0)
    system_collector.update(sample)
    assert sample.system is not None and sample.system.disks == [] and sample.system.networks == [] and sample.system.boot_id is None
    (fake_proc / "loadavg").unlink()
    status = run_collectors([system_collector]).collectors[0]
    assert status.state is CollectorState.FAILED and "loadavg" in (status.reason or "")


def test_rate_helper() -> None:
    assert rate(150, 100, 5) == 10
    assert rate(50, 100, 5) is None and rate(1, None, 5) is None and rate(2, 1, 0) is None


# --- PSI ---------------------------------------------------------------------------


def test_real_psi_or_a_clear_reason() -> None:
    sample = run_collectors([PressureCollector(CollectorContext())])
    status = sample.collectors[0]
    if Path("/proc/pressure/cpu").exists():
        assert status.state is CollectorState.OK and sample.pressure is not None and sample.pressure.cpu is not None
    else:
        assert status.state is CollectorState.UNAVAILABLE and (status.reason or "").startswith("PSI not available")


def test_psi_absent_is_unavailable(tmp_path: Path) -> None:
    status = run_collectors([PressureCollector(CollectorContext(host_proc=tmp_path))]).collectors[0]
    assert status.state is CollectorState.UNAVAILABLE and (status.reason or "").startswith("PSI not available: ")


def test_psi_partial_and_old_kernel_cpu_without_full(tmp_path: Path) -> None:
    (tmp_path / "pressure").mkdir()
    (tmp_path / "pressure/cpu").write_text("some avg10=1.50 avg60=0.50 avg300=0.10 total=123456\n")
    sample = run_collectors([PressureCollector(CollectorContext(host_proc=tmp_path))])
    assert sample.pressure is not None and sample.pressure.cpu is not None
    assert sample.pressure.cpu.full is None and sample.pressure.cpu.some.total_microseconds == 123456
    assert sample.pressure.memory is None and sample.pressure.io is None


def test_psi_garbage_is_a_failure_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "pressure").mkdir()
    (tmp_path / "pressure/io").write_text("some avg10=x\n")
    status = run_collectors([PressureCollector(CollectorContext(host_proc=tmp_path))]).collectors[0]
    assert status.state is CollectorState.FAILED and "pressure/io line 1" in (status.reason or "")
    with pytest.raises(PressureFormatError, match="no 'some' line"):
        parse_pressure("full avg10=0 avg60=0 avg300=0 total=0\n")


def test_host_root_reads_the_hosts_mounts_and_usage(fake_proc: Path, tmp_path: Path) -> None:
    host_root = tmp_path / "host-root"
    (host_root / "var/lib/data dir").mkdir(parents=True)
    (fake_proc / "1").mkdir()
    (fake_proc / "1/mounts").write_text(
        "/dev/sda1 / ext4 rw 0 0\n"
        "/dev/sda2 /var/lib/data\\040dir ext4 rw 0 0\n"
        "tmpfs /run tmpfs rw 0 0\n"
    )
    (tmp_path / "sys/class/block/sda1").mkdir(parents=True)  # sda1 is a partition of sda
    (tmp_path / "sys/class/block/sda1/partition").write_text("1\n")
    collector = SystemCollector(CollectorContext(host_proc=fake_proc, host_sys=tmp_path / "sys", host_root=host_root))
    sample = Sample(timestamp=0.0)
    collector.update(sample)
    assert sample.system is not None
    disks = {disk.device: disk for disk in sample.system.disks}
    assert disks["sda2"].mountpoint == "/var/lib/data dir"  # host path, \040 unescaped
    assert disks["sda2"].total_bytes == psutil.disk_usage(str(host_root)).total  # measured under --host-root
    assert "tmpfs" not in disks and "run" not in disks


def test_cpu_share_tolerates_float_rounding_but_not_a_reset() -> None:
    from resource_agent.node_agent.collectors.system import _share

    assert _share(10.0 - 1e-10, 10.0, 102.0, 100.0) == 0.0  # idle interval, rounding made busy step back
    assert _share(11.0, 10.0, 102.0, 100.0) == 50.0
    assert _share(5.0, 10.0, 102.0, 100.0) is None  # counters went back: a reset


# --- host correctness, against what the kernel writes and node_exporter reads (issue 12 item 8) ---------


class FakeClock:
    """Stands in for the collector's `time` module: monotonic seconds set by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return time.time()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(system_module, "time", fake)
    return fake


def _collect(collector: SystemCollector, timestamp: float = 0.0):  # type: ignore[no-untyped-def]
    sample = Sample(timestamp=timestamp)
    collector.update(sample)
    assert sample.system is not None
    return sample.system


def test_missing_uptime_falls_back_to_btime(system_collector: SystemCollector, fake_proc: Path) -> None:
    (fake_proc / "uptime").unlink()  # gVisor and some sandboxes have no /proc/uptime
    system = _collect(system_collector)
    assert system.uptime_seconds == pytest.approx(time.time() - 1_700_000_000, abs=60)  # now - btime of /proc/stat


def test_cached_is_the_page_cache_without_reclaimable_slab(system_collector: SystemCollector) -> None:
    # node_memory_Cached_bytes is meminfo Cached; psutil (and free) add SReclaimable (100000 kB here)
    assert _collect(system_collector).memory.cached_bytes == 2_000_000 * 1024


def test_swap_rates_use_the_kernels_page_size(system_collector: SystemCollector, fake_proc: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(system_module, "PAGE_SIZE", 65536, raising=False)  # a 64 KiB-page arm64/ppc64le kernel
    _collect(system_collector)
    (fake_proc / "vmstat").write_text("pswpin 30\npswpout 25\n")  # 20 pages in, 5 out
    clock.now += 2.0
    memory = _collect(system_collector, 1.0).memory
    assert memory.swap_in_bytes_per_second == 20 * 65536 / 2.0
    assert memory.swap_out_bytes_per_second == 5 * 65536 / 2.0


def _stat_cores(cores: dict[int, tuple[int, int]]) -> str:
    user = sum(busy for busy, _ in cores.values())
    idle = sum(idle for _, idle in cores.values())
    lines = [f"cpu  {user} 0 0 {idle} 0 0 0 0 0 0"] + [f"cpu{core} {busy} 0 0 {idle} 0 0 0 0 0 0" for core, (busy, idle) in sorted(cores.items())]
    return "\n".join(lines) + "\nctxt 1000\nbtime 1700000000\n"


def test_per_core_shares_keep_core_ids(system_collector: SystemCollector, fake_proc: Path) -> None:
    # cpu1 offline from the start: /proc/stat lists cpu0 and cpu2 only
    (fake_proc / "stat").write_text(_stat_cores({0: (100, 100), 2: (100, 100), 3: (100, 100)}))
    _collect(system_collector)
    # cpu2's counters went back (a reset): unknown, and cpu3 must still be labelled 3
    (fake_proc / "stat").write_text(_stat_cores({0: (150, 150), 2: (50, 50), 3: (190, 110)}))
    cpu = _collect(system_collector, 1.0).cpu
    assert cpu.per_core_utilization_percent == [pytest.approx(50.0), None, None, pytest.approx(90.0)]
    assert cpu.logical_cores == 3
    # cpu1 comes online: no share yet, the others keep theirs
    (fake_proc / "stat").write_text(_stat_cores({0: (160, 240), 1: (5, 5), 2: (60, 60), 3: (200, 200)}))
    cpu = _collect(system_collector, 2.0).cpu
    assert cpu.per_core_utilization_percent == [pytest.approx(10.0), None, pytest.approx(50.0), pytest.approx(10.0)]


def test_per_core_gauges_keep_core_labels() -> None:
    from prometheus_client import generate_latest

    from resource_agent.node_agent.exporter import SampleExporter, build_registry
    from tests.node_agent.agent_samples import sample

    exporter = SampleExporter()
    full = sample(1)
    full.system.cpu.per_core_utilization_percent = [10.0, None, 30.0]
    exporter.observe(full)
    text = generate_latest(build_registry(exporter)).decode()
    cores = [line for line in text.splitlines() if line.startswith("resource_agent_cpu_core_utilization_ratio")]
    assert cores == ['resource_agent_cpu_core_utilization_ratio{core="0"} 0.1', 'resource_agent_cpu_core_utilization_ratio{core="2"} 0.3']
    assert 'resource_agent_pressure_stalled_seconds_total{kind="full",resource="irq"} 0.1' in text
    assert 'kind="some",resource="irq"' not in text


def test_hostname_is_the_nodes_not_the_pods(system_collector: SystemCollector, fake_proc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # <host-proc>/sys/kernel/hostname shows the reader's UTS namespace: in a pod, the pod's name
    (fake_proc / "sys/kernel/hostname").write_text("agent-pod-x7k2q\n")
    monkeypatch.setenv("NODE_NAME", "gpu-node-7")
    assert _collect(system_collector).hostname == "gpu-node-7"
    monkeypatch.delenv("NODE_NAME")
    host_root = tmp_path / "host-root"
    (host_root / "etc").mkdir(parents=True)
    (host_root / "etc/hostname").write_text("gpu-node-7.example\n")
    collector = SystemCollector(CollectorContext(host_proc=fake_proc, host_sys=tmp_path / "sys", host_root=host_root))
    assert _collect(collector).hostname == "gpu-node-7.example"


def test_configured_node_name_wins(fake_proc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--node-name (or RESOURCE_AGENT_NODE_NAME) reaches the system collector, over $NODE_NAME."""
    monkeypatch.setenv("NODE_NAME", "from-env")
    collector = SystemCollector(CollectorContext(host_proc=fake_proc, host_sys=tmp_path / "sys", node_name="from-flag"))
    assert _collect(collector).hostname == "from-flag"


def _host_with_lvm_root(fake_proc: Path, tmp_path: Path) -> Path:
    host_root = tmp_path / "host-root"
    host_root.mkdir()
    (fake_proc / "1").mkdir()
    (fake_proc / "1/mounts").write_text("/dev/mapper/vg0-root / ext4 rw 0 0\n")
    (fake_proc / "diskstats").write_text(
        "   8       0 sda 100 0 2000 50 200 0 4000 80 0 100 130 0 0 0 0\n"
        " 253       0 dm-0 100 0 2000 50 200 0 4000 80 0 100 130 0 0 0 0\n"
    )
    return host_root


def test_device_mapper_maps_to_dm_n_through_the_hosts_sysfs(system_collector: SystemCollector, fake_proc: Path, tmp_path: Path) -> None:
    host_root = _host_with_lvm_root(fake_proc, tmp_path)
    (tmp_path / "sys/block/dm-0/dm").mkdir(parents=True)
    (tmp_path / "sys/block/dm-0/dm/name").write_text("vg0-root\n")
    collector = SystemCollector(CollectorContext(host_proc=fake_proc, host_sys=tmp_path / "sys", host_root=host_root))
    disks = {disk.device: disk for disk in _collect(collector).disks}
    assert sorted(disks) == ["dm-0", "sda"] and disks["dm-0"].mountpoint == "/" and disks["dm-0"].total_bytes


def test_device_mapper_maps_to_dm_n_through_the_hosts_dev(system_collector: SystemCollector, fake_proc: Path, tmp_path: Path) -> None:
    host_root = _host_with_lvm_root(fake_proc, tmp_path)
    (host_root / "dev/mapper").mkdir(parents=True)
    (host_root / "dev/mapper/vg0-root").symlink_to("../dm-0")  # udev's link, relative to the host's /dev
    collector = SystemCollector(CollectorContext(host_proc=fake_proc, host_sys=tmp_path / "sys", host_root=host_root))
    disks = {disk.device: disk for disk in _collect(collector).disks}
    assert sorted(disks) == ["dm-0", "sda"] and disks["dm-0"].mountpoint == "/"


def _diskstats_line(name: str, reads: int, read_ms: int, writes: int, write_ms: int, io_ms: int, weighted_ms: int) -> str:
    return f"   8       0 {name} {reads} 0 {reads * 8} {read_ms} {writes} 0 {writes * 8} {write_ms} 0 {io_ms} {weighted_ms} 0 0 0 0 0 0\n"


def test_disk_queue_depth_and_await_as_node_exporter_and_iostat(system_collector: SystemCollector, fake_proc: Path, clock: FakeClock) -> None:
    (fake_proc / "diskstats").write_text(_diskstats_line("sda", 100, 50, 200, 80, 100, 130))
    first = _collect(system_collector).disks[0]
    assert first.queue_depth is None and first.await_seconds is None
    # 2 s later: 50 reads + 50 writes completed taking 200 + 300 ms; 4000 ms of weighted I/O time
    (fake_proc / "diskstats").write_text(_diskstats_line("sda", 150, 250, 250, 380, 1100, 4130))
    clock.now += 2.0
    second = _collect(system_collector, 1.0).disks[0]
    assert second.queue_depth == pytest.approx(2.0)  # rate(node_disk_io_time_weighted_seconds_total): 4 s per 2 s
    assert second.await_seconds == pytest.approx(0.005)  # 500 ms / 100 I/Os
    assert second.busy_percent == pytest.approx(50.0) and second.read_iops == pytest.approx(25.0)
    # an idle interval: nothing in flight, await undefined (iostat prints 0.00; we leave it out)
    clock.now += 2.0
    idle = _collect(system_collector, 2.0).disks[0]
    assert idle.queue_depth == 0.0 and idle.await_seconds is None
    # a counter reset (device re-attached): no rates
    (fake_proc / "diskstats").write_text(_diskstats_line("sda", 1, 1, 1, 1, 1, 1))
    clock.now += 2.0
    reset = _collect(system_collector, 3.0).disks[0]
    assert reset.queue_depth is None and reset.await_seconds is None


def test_diskstats_parser_reads_every_kernel_format() -> None:
    text = (
        "   8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n"  # before 4.18: 11 fields
        "   8      16 sdb 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n"  # 5.5+: 17 fields
        "   8       1 sda1 1 2 3 4\n"  # partitions before 2.6.25: 4 fields, skipped
    )
    disks = system_module.parse_diskstats(text)
    assert sorted(disks) == ["sda", "sdb"]
    assert disks["sda"].as_tuple() == (3 * 512, 7 * 512, 1, 5, 10, 11, 4 + 8)


def test_irq_pressure_has_only_a_full_line(tmp_path: Path) -> None:
    (tmp_path / "pressure").mkdir()
    (tmp_path / "pressure/cpu").write_text("some avg10=1.00 avg60=0.50 avg300=0.10 total=100\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
    (tmp_path / "pressure/irq").write_text("full avg10=0.25 avg60=0.10 avg300=0.05 total=4242\n")
    sample = run_collectors([PressureCollector(CollectorContext(host_proc=tmp_path))])
    assert sample.collectors[0].state is CollectorState.OK
    assert sample.pressure is not None and sample.pressure.irq is not None
    assert sample.pressure.irq.full.total_microseconds == 4242 and sample.pressure.irq.full.avg10 == 0.25


def test_irq_pressure_absent_or_garbled(tmp_path: Path) -> None:
    from resource_agent.node_agent.collectors.pressure import parse_irq_pressure

    (tmp_path / "pressure").mkdir()
    (tmp_path / "pressure/cpu").write_text("some avg10=1.00 avg60=0.50 avg300=0.10 total=100\n")
    sample = run_collectors([PressureCollector(CollectorContext(host_proc=tmp_path))])  # kernel < 6.1: no irq file
    assert sample.collectors[0].state is CollectorState.OK and sample.pressure is not None and sample.pressure.irq is None
    with pytest.raises(PressureFormatError, match="no 'full' line"):
        parse_irq_pressure("some avg10=0 avg60=0 avg300=0 total=0\n")
