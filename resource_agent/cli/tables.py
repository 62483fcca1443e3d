"""`collect --format table`: a sample as rich tables."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from resource_agent.api.samples import Sample

GIB = 1024**3


def _number(value: float | int | None, unit: str = "", scale: float = 1.0, digits: int = 1) -> str:
    return "-" if value is None else f"{value / scale:.{digits}f}{unit}"


def print_tables(sample: Sample, console: Console | None = None) -> None:
    """Print every section of the sample; an absent section says why."""
    console = console or Console()
    reasons = {status.name: status.reason for status in sample.collectors}
    if sample.system is not None:
        system, cpu, memory = sample.system, sample.system.cpu, sample.system.memory
        host = Table("host", "cpu %", "iowait %", "steal %", "load1/5/15", "ctx sw/s", "mem used", "mem avail", "swap used", title="System")
        host.add_row(
            f"{system.hostname} ({cpu.logical_cores} cores)",
            _number(cpu.utilization_percent),
            _number(cpu.iowait_percent),
            _number(cpu.steal_percent),
            f"{cpu.load1:.2f}/{cpu.load5:.2f}/{cpu.load15:.2f}",
            _number(cpu.context_switches_per_second, digits=0),
            _number(memory.used_bytes, " GiB", GIB),
            _number(memory.available_bytes, " GiB", GIB),
            _number(memory.swap_used_bytes, " GiB", GIB),
        )
        console.print(host)
        disks = Table("device", "mount", "used", "size", "read MB/s", "write MB/s", "busy %", title="Disks")
        for disk in system.disks:
            disks.add_row(disk.device, disk.mountpoint or "-", _number(disk.used_bytes, " GiB", GIB), _number(disk.total_bytes, " GiB", GIB),
                          _number(disk.read_bytes_per_second, "", 1e6, 2), _number(disk.write_bytes_per_second, "", 1e6, 2), _number(disk.busy_percent))
        console.print(disks)
        nets = Table("interface", "rx MB/s", "tx MB/s", "errors/s", "drops/s", title="Network")
        for net in system.networks:
            errors = (net.rx_errors_per_second or 0) + (net.tx_errors_per_second or 0)
            drops = (net.rx_drops_per_second or 0) + (net.tx_drops_per_second or 0)
            nets.add_row(net.interface, _number(net.rx_bytes_per_second, "", 1e6, 3), _number(net.tx_bytes_per_second, "", 1e6, 3), f"{errors:.1f}", f"{drops:.1f}")
        console.print(nets)
    else:
        console.print(f"[bold]System[/]: not available ({reasons.get('system', 'collector not enabled')})")
    if sample.pressure is not None:
        psi = Table("resource", "some avg10", "some avg60", "full avg10", "full avg60", title="Pressure (PSI, %)")
        for name in ("cpu", "memory", "io"):
            resource = getattr(sample.pressure, name)
            if resource is not None:
                full = resource.full
                psi.add_row(name, f"{resource.some.avg10:.2f}", f"{resource.some.avg60:.2f}", _number(full.avg10 if full else None, digits=2), _number(full.avg60 if full else None, digits=2))
        console.print(psi)
    else:
        console.print(f"[bold]Pressure[/]: not available ({reasons.get('pressure', 'collector not enabled')})")
    if sample.gpu is not None:
        gpus = Table("gpu", "name", "util %", "mem used", "temp C", "power W", "SM MHz", "throttle", "XID", title=f"GPUs (driver {sample.gpu.driver_version or '?'})")
        for device in sample.gpu.devices:
            gpus.add_row(str(device.index), device.name, _number(device.sm_utilization_percent), _number(device.memory_used_bytes, " GiB", GIB),
                         _number(device.temperature_celsius, digits=0), _number(device.power_watts), _number(device.sm_clock_mhz, digits=0),
                         ",".join(device.clock_event_reasons) or "-", ",".join(str(e.xid) for e in device.xid_events) or "-")
        console.print(gpus)
    else:
        console.print(f"[bold]GPU[/]: not available ({reasons.get('gpu', 'collector not enabled')})")
    if sample.lmcache is not None and sample.lmcache.instances:
        caches = Table("instance", "reachable", "requested", "hit", "local cpu GiB", title="LMCache")
        for instance in sample.lmcache.instances:
            caches.add_row(instance.instance, str(instance.reachable), _number(instance.requested_tokens_total, digits=0),
                           _number(instance.hit_tokens_total, digits=0), _number(instance.local_cpu_usage_bytes, "", GIB, 2))
        console.print(caches)
    else:
        console.print(f"[bold]LMCache[/]: not available ({reasons.get('lmcache', 'collector not enabled')})")
    collectors = Table("collector", "state", "seconds", "reason", title="Collectors")
    for status in sample.collectors:
        collectors.add_row(status.name, status.state.value, f"{status.duration_seconds:.4f}", status.reason or "")
    console.print(collectors)
