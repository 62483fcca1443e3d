"""Components run in their own process group and leave nothing behind when stopped."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from devtools.devcluster.process import Component, ComponentError, pid_alive


def _wait_for(path: Path, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.02)
    return path.read_text()


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    child_pid = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {child_pid}; echo started; wait"
    component = Component("shell", ["sh", "-c", script], tmp_path / "shell.log")
    component.start()
    grandchild = int(_wait_for(child_pid))
    assert component.running() and pid_alive(grandchild)
    component.stop(timeout=5)
    assert not component.running()
    deadline = time.monotonic() + 5
    while pid_alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(grandchild)
    assert "started" in (tmp_path / "shell.log").read_text()


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    component = Component("stubborn", ["sh", "-c", f"trap '' TERM; echo x > {ready}; sleep 300"], tmp_path / "s.log")
    component.start()
    _wait_for(ready)
    started = time.monotonic()
    component.stop(timeout=0.5)
    assert not component.running()
    assert time.monotonic() - started < 5


def test_a_dead_component_reports_its_log_tail(tmp_path: Path) -> None:
    script = "echo 'flag provided but not defined: -x'; exit 2"
    component = Component("broken", ["sh", "-c", script], tmp_path / "b.log")
    component.start()
    assert component.process is not None
    component.process.wait(5)
    with pytest.raises(ComponentError, match=r"(?s)broken exited with status 2.*flag provided but not defined"):
        component.check()
