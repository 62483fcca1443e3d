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
    assert fired(rules.cpu_saturated(node(cpu=cpu(95)), POLICY)) == [("host-cpu-saturated", "gpu-node-1")]
    stalled = node(pressure=PressureSummary(available=True, cpu=psi(55)))
    finding = rules.cpu_saturated(stalled, POLICY)[0]
    assert "stalled" in finding.summary and finding.category is Category.CPU
    assert rules.cpu_saturated(node(), POLICY) == []
    no_psi = node(pressure=PressureSummary(available=False, reason="no PSI"))
    assert rules.cpu_saturated(no_psi, POLICY) == []


STARVED = [gpu(0, sm_utilization_percent=st(30)), gpu(1, sm_utilization_percent=st(40))]


def test_cpu_starving_gpus_needs_both_idle_looking_gpus_and_a_busy_host():
    findings = rules.cpu_starving_gpus(node(gpus=STARVED, cpu=cpu(60, iowait=25)), POLICY)
    assert fired(findings) == [("host-cpu-starving-gpus", "gpu-node-1")]
    assert [e.metric for e in findings[0].evidence] == ["cpu.iowait_percent", "gpu.sm_utilization_percent"]
    assert findings[0].action.type is ActionType.ADD_CPU_CAPACITY
    assert rules.cpu_starving_gpus(node(gpus=STARVED), POLICY) == []  # calm host
    assert rules.cpu_starving_gpus(node(cpu=cpu(95)), POLICY) == []  # busy GPUs
    unloaded = [gpu(0, sm_utilization_percent=st(1), memory_used_percent=st(1))]
    assert rules.cpu_starving_gpus(node(gpus=unloaded, cpu=cpu(95)), POLICY) == []


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


def test_disk_io_saturated():
    disks = [DiskSummary(device="sda", busy_percent=st(97)), DiskSummary(device="sdb", busy_percent=st(50))]
    assert fired(rules.disk_io_saturated(node(disks=disks), POLICY)) == [("host-disk-io-saturated", "sda")]


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
