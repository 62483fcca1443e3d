from resource_agent.analysis.policy import Policy
from resource_agent.analysis.rules import host as rules
from resource_agent.api.findings import ActionType, Category, Severity
from resource_agent.api.summary import CpuSummary, DiskSummary, MemorySummary, NetworkSummary, PressureSummary
from tests.analysis.analysis_builders import GIB, fired, gpu, node, psi, st

POLICY = Policy()
TOTAL = 2048 * GIB


def cpu(utilization: float = 35, iowait: float = 0.5, steal: float = 0.0) -> CpuSummary:
    return CpuSummary(utilization_percent=st(utilization), iowait_percent=st(iowait), steal_percent=st(steal), load1=st(10))


def memory(available_percent: float, minimum: float | None = None, swap_mib: float = 0.0) -> MemorySummary:
    return MemorySummary(
        total_bytes=TOTAL,
        available_bytes=st(TOTAL * available_percent / 100),
        used_bytes=st(TOTAL * (1 - available_percent / 100)),
        cached_bytes=st(0),
        buffers_bytes=st(0),
        available_percent=st(available_percent, min=minimum),
        swap_in_bytes_per_second=st(swap_mib * 1048576 / 2),
        swap_out_bytes_per_second=st(swap_mib * 1048576 / 2),
    )


def test_cpu_saturated_by_utilization_or_psi():
    waiting = PressureSummary(available=True, cpu=psi(15))
    assert fired(rules.cpu_saturated(node(cpu=cpu(95), pressure=waiting), POLICY)) == [("host-cpu-saturated", "gpu-node-1")]
    stalled = node(pressure=PressureSummary(available=True, cpu=psi(55)))
    finding = rules.cpu_saturated(stalled, POLICY)[0]
    assert "stalled" in finding.summary and finding.category is Category.CPU
    assert rules.cpu_saturated(node(), POLICY) == []
    no_psi = node(pressure=PressureSummary(available=False, reason="no PSI"))
    assert rules.cpu_saturated(no_psi, POLICY) == []
    busy_without_psi = node(cpu=cpu(95), pressure=PressureSummary(available=False, reason="no PSI"))
    assert fired(rules.cpu_saturated(busy_without_psi, POLICY)) == [("host-cpu-saturated", "gpu-node-1")]


def test_busy_cpus_nobody_waits_for_are_not_saturated():
    """A healthy busy serving node: batch work uses the spare CPU, tasks rarely wait (PSI 2%)."""
    assert rules.cpu_saturated(node(cpu=cpu(95)), POLICY) == []


STARVED = [gpu(0, sm_utilization_percent=st(30)), gpu(1, sm_utilization_percent=st(40))]
IDLE_REPLICA = [gpu(0, sm_utilization_percent=st(0.5)), gpu(1, sm_utilization_percent=st(0.0))]


def test_cpu_starving_gpus_needs_gpus_with_work_and_a_busy_cpu():
    findings = rules.cpu_starving_gpus(node(gpus=STARVED, cpu=cpu(92)), POLICY)
    assert fired(findings) == [("host-cpu-starving-gpus", "gpu-node-1")]
    assert [e.metric for e in findings[0].evidence] == ["cpu.utilization_percent", "gpu.sm_utilization_percent"]
    assert findings[0].action.type is ActionType.ADD_CPU_CAPACITY
    stalled = node(gpus=STARVED, cpu=cpu(60), pressure=PressureSummary(available=True, cpu=psi(30)))
    assert next(e.metric for e in rules.cpu_starving_gpus(stalled, POLICY)[0].evidence) == "pressure.cpu.some.avg10"
    assert rules.cpu_starving_gpus(node(gpus=STARVED), POLICY) == []  # calm host
    assert rules.cpu_starving_gpus(node(cpu=cpu(95)), POLICY) == []  # busy GPUs
    unloaded = [gpu(0, sm_utilization_percent=st(1), memory_used_percent=st(1))]
    assert rules.cpu_starving_gpus(node(gpus=unloaded, cpu=cpu(95)), POLICY) == []


def test_an_idle_replica_next_to_a_download_is_not_starving():
    """iowait is no CPU demand: another pod downloads a model (iowait 40%, CPUs 20% busy)."""
    download = node(gpus=STARVED, cpu=cpu(20, iowait=40))
    assert rules.cpu_starving_gpus(download, POLICY) == []
    # an idle replica (no GPU work) next to a CPU-heavy neighbour has no demand to starve
    assert rules.cpu_starving_gpus(node(gpus=IDLE_REPLICA, cpu=cpu(95)), POLICY) == []
    freed = [gpu(0, sm_utilization_percent=st(30), processes=[])]  # no process list visible: memory used counts
    assert fired(rules.cpu_starving_gpus(node(gpus=freed, cpu=cpu(92)), POLICY))


def test_memory_pressure_by_each_signal_and_critical_levels():
    low = rules.memory_pressure(node(memory=memory(8, minimum=6)), POLICY)
    assert [f.severity for f in low] == [Severity.WARNING]
    swapping = rules.memory_pressure(node(memory=memory(40, swap_mib=4)), POLICY)
    assert [e.metric for e in swapping[0].evidence] == ["memory.swap_bytes_per_second"]
    stalled = node(pressure=PressureSummary(available=True, memory=psi(30, 25)))
    assert rules.memory_pressure(stalled, POLICY)[0].severity is Severity.CRITICAL
    assert rules.memory_pressure(node(memory=memory(5, minimum=1.5)), POLICY)[0].severity is Severity.CRITICAL
    assert rules.memory_pressure(node(), POLICY) == []


def test_disk_full_warning_critical_and_sensitive_mountpoint():
    disks = [
        DiskSummary(device="nvme0n1", mountpoint="/", used_percent=st(92)),
        DiskSummary(device="nvme1n1", mountpoint="/var/lib/kubelet", used_percent=st(98.5)),
        DiskSummary(device="nvme2n1", mountpoint="/data", used_percent=st(50)),
        DiskSummary(device="loop0"),
    ]
    findings = {f.target.name: f for f in rules.disk_full(node(disks=disks), POLICY)}
    assert sorted(findings) == ["nvme0n1", "nvme1n1"]
    assert findings["nvme0n1"].severity is Severity.WARNING
    assert findings["nvme1n1"].severity is Severity.CRITICAL
    assert findings["nvme1n1"].action.parameters == {"device": "nvme1n1", "mountpoint": "/var/lib/kubelet"}
    assert "/var/lib/kubelet" in {s.unmasked for s in findings["nvme1n1"].sensitive}


def test_disk_io_saturated_needs_a_deep_queue():
    disks = [
        DiskSummary(device="sda", busy_percent=st(97), queue_depth=st(24), await_seconds=st(0.12)),
        DiskSummary(device="sdb", busy_percent=st(50), queue_depth=st(30), await_seconds=st(0.2)),
        DiskSummary(device="sdc", busy_percent=st(97), queue_depth=st(12)),  # no await: the queue decides
    ]
    findings = rules.disk_io_saturated(node(disks=disks), POLICY)
    assert fired(findings) == [("host-disk-io-saturated", "sda"), ("host-disk-io-saturated", "sdc")]
    assert [e.metric for e in findings[0].evidence] == ["disk.busy_percent", "disk.queue_depth", "disk.await_seconds"]


def test_a_busy_nvme_at_low_queue_depth_is_not_saturated():
    """busy % counts time with any request in flight; NVMe serves many in parallel."""
    nvme = [DiskSummary(device="nvme0n1", busy_percent=st(100), queue_depth=st(1.6), await_seconds=st(0.0003))]
    assert rules.disk_io_saturated(node(disks=nvme), POLICY) == []
    fast_deep = [DiskSummary(device="nvme0n1", busy_percent=st(100), queue_depth=st(32), await_seconds=st(0.001))]
    assert rules.disk_io_saturated(node(disks=fast_deep), POLICY) == []


def test_disk_io_saturated_without_queue_depth_needs_very_high_busy_and_io_pressure():
    busy = [DiskSummary(device="sda", busy_percent=st(97))]
    assert rules.disk_io_saturated(node(disks=busy), POLICY) == []
    pinned = [DiskSummary(device="sda", busy_percent=st(99.5))]
    assert rules.disk_io_saturated(node(disks=pinned), POLICY) == []  # io PSI 0.5%
    stalled = PressureSummary(available=True, io=psi(40, 20))
    findings = rules.disk_io_saturated(node(disks=pinned, pressure=stalled), POLICY)
    assert fired(findings) == [("host-disk-io-saturated", "sda")]
    assert [e.metric for e in findings[0].evidence] == ["disk.busy_percent", "pressure.io.some.avg10"]


def test_network_errors_and_drops_ignore_loopback():
    nics = [
        NetworkSummary(interface="eth0", rx_errors_per_second=st(0.5)),
        NetworkSummary(interface="eth1", rx_drops_per_second=st(30)),
        NetworkSummary(interface="eth2", rx_drops_per_second=st(2)),
        NetworkSummary(interface="lo", rx_errors_per_second=st(5)),
    ]
    findings = rules.network_errors(node(networks=nics), POLICY)
    assert fired(findings) == [("host-network-errors", "eth0"), ("host-network-errors", "eth1")]
    assert findings[0].action.parameters == {"interface": "eth0"}


def test_cpu_steal():
    findings = rules.cpu_steal(node(cpu=cpu(steal=15)), POLICY)
    assert fired(findings) == [("host-cpu-steal", "gpu-node-1")]
    assert findings[0].action.type is ActionType.MIGRATE_WORKLOAD
    assert rules.cpu_steal(node(cpu=cpu(steal=2)), POLICY) == []
