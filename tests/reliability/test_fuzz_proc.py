"""Fuzzing the /proc readers (system and pressure collectors): a bad line is reported, the rest is kept.

Each parser gets arbitrary text and real files (tests/fixtures/proc) with lines broken. It may
raise only its documented error (ProcFormatError when /proc/stat has no usable cpu line,
PressureFormatError when a PSI file has no usable line of the kind it needs); otherwise every
line the mutation did not touch is still read, and every skipped line is named in `problems`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resource_agent.api.samples import CollectorState
from resource_agent.node_agent.collectors import pressure, system
from resource_agent.node_agent.collectors.base import CollectorContext, run_collectors
from tests.reliability.fuzzing import FUZZ, mutated

PROC = Path(__file__).resolve().parents[1] / "fixtures" / "proc"
STAT, MEMINFO, VMSTAT, DISKSTATS = ((PROC / name).read_text() for name in ("stat", "meminfo", "vmstat", "diskstats"))
NET_DEV = (PROC / "net" / "dev").read_text()
PSI = {name: (PROC / "pressure" / name).read_text() for name in ("cpu", "memory", "io", "irq")}


def _untouched(original: str, broken: str) -> set[str]:
    """Lines of the original that are still in the broken file (unchanged)."""
    return set(original.splitlines()) & set(broken.splitlines())


@FUZZ
@given(st.one_of(st.text(max_size=1500), mutated(STAT)))
def test_proc_stat(text: str) -> None:
    problems: list[str] = []
    try:
        stat = system.parse_proc_stat(text, problems)
    except system.ProcFormatError:
        return
    assert stat.cpu[3] >= 0
    kept = _untouched(STAT, text)
    for core in range(2):
        line = next(line for line in STAT.splitlines() if line.startswith(f"cpu{core} "))
        if line in kept and sum(1 for other in text.splitlines() if other.startswith(f"cpu{core} ")) == 1:
            assert core in stat.per_core


@FUZZ
@given(st.one_of(st.text(max_size=1500), mutated(MEMINFO)))
def test_meminfo(text: str) -> None:
    problems: list[str] = []
    values = system.parse_meminfo(text, problems)
    assert all(isinstance(value, int) and value >= 0 for value in values.values())
    for line in _untouched(MEMINFO, text):
        assert line.partition(":")[0].strip() in values
    bad = [line for line in text.splitlines() if line.strip() and line.partition(":")[0].strip() not in values]
    assert len(problems) >= len(set(bad)) > 0 or not bad


@FUZZ
@given(st.one_of(st.text(max_size=1500), mutated(VMSTAT)))
def test_vmstat(text: str) -> None:
    problems: list[str] = []
    values = system.parse_vmstat(text, problems)
    for line in _untouched(VMSTAT, text):
        assert line.split()[0] in values
    assert all(isinstance(value, int) for value in values.values())
    wanted = system.SWAP_COUNTERS
    assert system.parse_vmstat(text, [], keys=wanted) == {key: value for key, value in values.items() if key in wanted}


@FUZZ
@given(st.one_of(st.text(max_size=1500), mutated(NET_DEV)))
def test_net_dev(text: str) -> None:
    problems: list[str] = []
    interfaces = system.parse_net_dev(text, problems)
    for line in set(text.splitlines()[2:]) & set(NET_DEV.splitlines()[2:]):  # data lines kept below the header
        assert line.rpartition(":")[0].strip() in interfaces
    assert all(len(counters) == 6 and min(counters) >= 0 for counters in interfaces.values())
    bad = [line for line in text.splitlines()[2:] if line.strip() and line.rpartition(":")[0].strip() not in interfaces]
    assert len(problems) >= len(set(bad)) or not bad


@FUZZ
@given(st.one_of(st.text(max_size=1500), mutated(DISKSTATS)))
def test_diskstats(text: str) -> None:
    problems: list[str] = []
    disks = system.parse_diskstats(text, problems)
    for line in _untouched(DISKSTATS, text):
        assert line.split()[2] in disks
    assert all(min(counters.as_tuple()) >= 0 for counters in disks.values())


@FUZZ
@given(st.sampled_from(sorted(PSI)).flatmap(lambda name: st.tuples(st.just(name), st.one_of(st.text(max_size=300), mutated(PSI[name])))))
def test_pressure_file(case: tuple[str, str]) -> None:
    name, text = case
    problems: list[str] = []
    parse = pressure.parse_irq_pressure if name == "irq" else pressure.parse_pressure
    try:
        parsed = parse(text, name, problems)
    except pressure.PressureFormatError:
        return
    for line in parsed.model_dump().values():
        if line is not None:
            assert all(0.0 <= line[avg] <= 100.0 for avg in ("avg10", "avg60", "avg300"))
            assert line["total_microseconds"] >= 0


# --- regressions found by fuzzing, and the collectors reporting the bad part ---------------------


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (system.parse_meminfo, "MemTotal: ² kB\n"),  # str.isdigit() is True for "²", int("²") raises
        (system.parse_vmstat, "pswpin ²\n"),
        (system.parse_diskstats, "   8 0 sda 1 2 3 4 5 6 7 8 9 x 11\n"),  # ValueError from int() escaped
        (system.parse_meminfo, "MemTotal: 1_000 kB\n"),  # int() takes "1_000"
    ],
)
def test_malformed_line_is_reported_not_raised(parse, text: str) -> None:
    problems: list[str] = []
    assert parse(text, problems) == {}
    assert len(problems) == 1 and "line 1" in problems[0]


def test_proc_stat_bad_core_line_keeps_the_others() -> None:
    """Regression: a garbled cpuN or ctxt line raised ValueError and failed the whole collector."""
    problems: list[str] = []
    text = STAT.replace("cpu1 ", "cpu1 x", 1).replace("ctxt ", "ctxt ?", 1)
    stat = system.parse_proc_stat(text, problems)
    assert list(stat.per_core) == [0] and stat.context_switches is None
    assert [p.split(": ")[1] for p in problems] == ["CPU times that are not counters", "ctxt is not a counter"]
    with pytest.raises(system.ProcFormatError, match="no usable 'cpu' line"):
        system.parse_proc_stat("cpu  1 2 x\n")


def test_pressure_nan_and_negative_are_rejected() -> None:
    """Regression: float() took "nan" and "inf" and int() took "-5" into the report."""
    problems: list[str] = []
    lines = pressure.parse_pressure_lines("some avg10=nan avg60=0 avg300=0 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=-5\n", "cpu", problems)
    assert lines == {} and len(problems) == 2


def _proc_tree(tmp_path: Path) -> Path:
    proc = tmp_path / "proc"
    shutil.copytree(PROC, proc)
    (proc / "sys/kernel/random").mkdir(parents=True)
    (proc / "sys/kernel/random/boot_id").write_text("fuzz-boot\n")
    (proc / "1").mkdir()
    (proc / "1/mounts").write_text("")
    return proc


def test_system_collector_reports_bad_lines_and_keeps_the_rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = _proc_tree(tmp_path)
    (proc / "diskstats").write_text(DISKSTATS.replace(" vda 320653", " vda 3206?3"))
    (proc / "meminfo").write_text(MEMINFO + "Garbage: lots\n")
    monkeypatch.setenv("NODE_NAME", "fuzz-node")
    collector = system.SystemCollector(CollectorContext(host_proc=proc, host_sys=tmp_path / "sys", host_root=tmp_path))
    sample = run_collectors([collector])
    (status,) = sample.collectors
    assert status.state == CollectorState.OK, status.reason
    assert status.reason and "diskstats line" in status.reason and "meminfo line" in status.reason and "Garbage" in status.reason
    assert sample.system is not None
    assert sample.system.memory.cached_bytes > 0  # the rest of meminfo was read
    assert "vda" not in {disk.device for disk in sample.system.disks}


def test_pressure_collector_keeps_good_files_when_one_is_garbage(tmp_path: Path) -> None:
    proc = _proc_tree(tmp_path)
    (proc / "pressure/memory").write_text("\x00\x00 garbage\n")
    sample = run_collectors([pressure.PressureCollector(CollectorContext(host_proc=proc))])
    (status,) = sample.collectors
    assert status.state == CollectorState.OK
    assert status.reason and "memory" in status.reason
    assert sample.pressure is not None and sample.pressure.cpu is not None and sample.pressure.memory is None
